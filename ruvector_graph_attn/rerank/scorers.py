"""Scorer objects: how :class:`~ruvector_graph_attn.GraphReranker` turns a candidate's graph
neighbourhood into a score.

The protocol (:class:`Scorer`) is small::

    class MyScorer:
        hops_needed = 1                     # minimum expansion radius the scorer needs
        uses_graph = True                   # optional (default True); False: no expansion,
                                            # score() gets subgraph=None
        def score(self, queries, candidates, subgraph) -> Scores: ...

``queries`` is ``[B, D]``; ``candidates`` a :class:`Candidates` (ids and vector scores
``[B, C]``, and the "present pairs": each (query, candidate) whose candidate is in the graph,
with the candidate's position in ``subgraph``); ``subgraph`` the
:class:`~ruvector_graph_attn.connectors.Subgraph` expanded once around the union of every
query's candidates. The scorer returns :class:`Scores`: ``scores [B, C]`` (larger is better),
``context [B, C]`` (the graph term it blended in, NaN where none) and an optional
:class:`~ruvector_graph_attn.rerank.explanations.Explanation`. Candidates missing from the graph
always keep their vector score (the re-ranker enforces it), so a scorer only needs to fill the
present pairs -- :meth:`Candidates.to_matrix` does the scatter.

Built-in scorers (``sim`` is the index space's similarity: ``cos`` for ``"cosine"``, ``<q, x>``
for ``"ip"``, ``-||q - x||^2`` for ``"l2"``; ``v_c`` the candidate's vector score; ``N(c)`` the
candidate and every node within ``hops`` of it; ``beta`` the blend)::

    VectorScorer()                       score = v_c (the retriever's order)
    AttentionScorer(temperature, blend)  a_j = softmax_{j in N(c)}(sim(q, x_j) / T),
                                         h = sum_j a_j x_j, ctx = sim(q, h),
                                         score = (1 - beta) v_c + beta ctx
    SparseTopKScorer(k, ...)             as AttentionScorer, but only the k largest
                                         logits of N(c) get attention
    GeometricScorer(manifold, ...)       a_j = softmax_j(-d(u_q, u_j)^2 / T) with u = the points
                                         mapped onto the manifold (see the class); ctx, score
                                         as AttentionScorer
    MultiHeadScorer(mha, blend)          h = MultiHeadAttention(q; keys = values = x_{N(c)}),
                                         ctx = sim(q, h)
    LayerScorer(layer, blend)            h = layer(x, edge_index) on the subgraph,
                                         ctx = sim(q, h_c)
    PersonalizedPageRankScorer(alpha, iterations, temperature, blend)
                                         personalised PageRank over the query's expanded
                                         subgraph, restart distribution p_c = softmax(v_c / T)
                                         over the query's candidates; ctx = PageRank mass of c
    VoteScorer(temperature, voters, blend)
                                         neighbour vote: s_c = T log(exp(sim(q, x_c)/T) +
                                         sum over the query's best hits h that reach c of
                                         exp(sim(q, x_h)/T)); score = (1 - beta) v_c + beta s_c
                                         (rerank/vote.py)
    EnsembleScorer(scorers, weights)     score = sum_i w_i score_i (weights normalised to
                                         sum 1), e.g. a trained LayerScorer with the
                                         AttentionScorer context

For ``"cosine"`` the features and queries enter every scorer as unit vectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np

from ..connectors.base import Subgraph
from ..errors import ConfigError, DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.rerank import (
    build_csr, neighbourhood_attention, neighbourhoods, pair_similarity, pooled_context,
    segment_softmax_pool,
)
from ..graph.dirgnn import reads_out_edges as _reads_out_edges
from ..validation import check_float, check_positive_int
from .explanations import (
    AggregationExplanation, AttentionExplanation, Explanation, PageRankExplanation, VoteExplanation,
)

__all__ = [
    "Scorer", "Scores", "Candidates", "Neighbourhoods", "VectorScorer", "AttentionScorer",
    "GeometricScorer", "LayerScorer", "MultiHeadScorer", "SparseTopKScorer",
    "PersonalizedPageRankScorer", "EnsembleScorer", "VoteScorer", "resolve_scorer", "ALIASES", "graph_depth",
    "Explanation", "AttentionExplanation", "AggregationExplanation", "PageRankExplanation", "VoteExplanation",
    "DEFAULT_TEMPERATURE", "DEFAULT_BLEND", "HYPERBOLIC_RADIUS",
]

#: defaults of the attention scorers, chosen on the tuning split of
#: ``benchmarks/rerank_quality.py`` (see docs/rerank.md)
DEFAULT_TEMPERATURE = 0.2
DEFAULT_BLEND = 0.8
#: context terms of AttentionScorer: "pooled" (sim(q, h) of the attention-pooled neighbourhood
#: vector h) or "mean" (the attention-weighted mean of sim(q, x_j))
CONTEXTS = ("pooled", "mean")
#: Poincare-ball radius the features are scaled to (fraction of the ball) by GeometricScorer
HYPERBOLIC_RADIUS = 0.9
#: GeometricScorer maps the points of whole pairs in blocks of about this many bytes per
#: [entries, D] array (hubs with thousands of neighbours would otherwise need gigabytes)
GEOMETRIC_BLOCK_BYTES = 1 << 25


# ---------------------------------------------------------------------------- helpers
def _metric(space: str) -> int:
    return 1 if space == "l2" else 0


def _context_metric(space: str) -> int:
    """Metric code of neighbourhood_attention (2 = cosine: renormalise the pooled vector)."""
    return {"ip": 0, "l2": 1, "cosine": 2}[space]


def _unit_rows(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return np.ascontiguousarray(a / n, dtype=a.dtype)


def pair_similarity_rows(Q: np.ndarray, X: np.ndarray, qrow: np.ndarray, space: str) -> np.ndarray:
    """Index-space similarity (float64) of query ``Q[qrow[t]]`` and feature row ``X[t]`` for
    every ``t``: cosine, inner product, or ``-squared distance`` for ``"l2"``."""
    Qd, Xd = Q.astype(np.float64), X.astype(np.float64)
    if space == "cosine":
        Qd, Xd = _unit_rows(Qd), _unit_rows(Xd)
    dot = np.einsum("ij,ij->i", Qd[qrow], Xd)
    if space == "l2":
        return -(np.einsum("ij,ij->i", Qd, Qd)[qrow] - 2.0 * dot + np.einsum("ij,ij->i", Xd, Xd))
    return dot


#: range check of a float parameter (finite, in the given interval)
_number = check_float


def graph_depth(layer: Any) -> int:
    """How many message-passing steps ``layer`` performs: 1 for a graph layer, the number of
    graph layers for a :class:`~ruvector_graph_attn.graph.GraphSequential` (or anything with
    ``children()``), or an explicit ``depth`` attribute; 0 when it is not a graph layer."""
    from ..graph.sequential import GraphSequential, is_graph_layer

    if layer is None:
        return 0
    explicit = getattr(layer, "depth", None)
    if isinstance(explicit, (int, np.integer)) and not isinstance(explicit, bool):
        return int(explicit)
    if isinstance(layer, GraphSequential):
        return sum(graph_depth(m) for m in layer.children())
    return 1 if is_graph_layer(layer) else 0


def traversed_pairs(sg: Subgraph, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)``: ``a -> b`` for every "expanding ``a`` reaches ``b``" of the subgraph in
    ``direction`` (exact per-node neighbourhoods when the source records ``edge_origin``)."""
    src, dst = sg.edge_index[0], sg.edge_index[1]
    org = sg.edge_origin
    if org is not None:
        # exact: each edge leads from the node that traversed it to its other endpoint
        # (both ways when both endpoints traversed it)
        two = org < 0
        one = ~two
        a = np.concatenate([org[one], src[two], dst[two]])
        b = np.concatenate([np.where(org[one] == src[one], dst[one], src[one]), dst[two], src[two]])
    elif direction == "out":
        a, b = src, dst
    elif direction == "in":
        a, b = dst, src
    else:
        a, b = np.concatenate([src, dst]), np.concatenate([dst, src])
    return a, b


# ---------------------------------------------------------------------------- data types
@dataclass
class Neighbourhoods:
    """Each present pair's neighbourhood ``N(c)``, shared by the pairs with the same candidate.

    Pair ``p`` uses segment ``s = seg_of[p]``: members ``members[seg_ptr[s]:seg_ptr[s+1]]``
    (the candidate first, then BFS order). ``entry_ptr`` [P+1] lays the pairs' entries out
    flat (pair ``p`` owns ``entry_ptr[p]:entry_ptr[p+1]``). :meth:`entries` gives, per entry, its
    pair and member.
    """

    seg_of: np.ndarray
    seg_ptr: np.ndarray
    members: np.ndarray
    entry_ptr: np.ndarray
    _entries: Optional[tuple] = field(default=None, repr=False)

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """``(entry_pair [E], entry_member [E])``."""
        if self._entries is None:
            P = self.seg_of.shape[0]
            counts = self.entry_ptr[1:] - self.entry_ptr[:-1]
            pair_of = np.repeat(np.arange(P, dtype=np.int64), counts)
            offs = np.arange(self.entry_ptr[-1], dtype=np.int64) - self.entry_ptr[pair_of]
            self._entries = (pair_of, self.members[self.seg_ptr[self.seg_of[pair_of]] + offs])
        return self._entries


@dataclass
class Candidates:
    """The candidates of a batch of queries, as a scorer sees them.

    Attributes:
        ids: ``[B, C]`` candidate ids (columns past a query's own list are padding, never present).
        vector_scores: ``[B, C]`` float64 similarity of each candidate from the retriever.
        present: ``[B, C]`` bool: the candidate is in the graph (padding: False).
        pair_query: ``[P]`` int64 query row of each present pair (row-major order).
        pair_node: ``[P]`` int64 position of the pair's candidate in the subgraph.
        pair_vector_score: ``[P]`` the pair's vector score.
        pair_index: ``[B * C]`` int64: present-pair number of each entry, -1 if not present.
        space: the index space, ``"cosine"``, ``"ip"`` or ``"l2"``.
        direction: ``"both"``, ``"out"`` or ``"in"``: which edges make neighbours.
        hops: neighbourhood radius.
    """

    ids: np.ndarray
    vector_scores: np.ndarray
    present: np.ndarray
    pair_query: np.ndarray
    pair_node: np.ndarray
    pair_vector_score: np.ndarray
    pair_index: np.ndarray
    space: str = "cosine"
    direction: str = "both"
    hops: int = 1
    _nbh: Optional[Neighbourhoods] = field(default=None, repr=False)
    _adj: Optional[tuple] = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.ids.shape)  # type: ignore[return-value]

    @property
    def num_pairs(self) -> int:
        return int(self.pair_query.shape[0])

    def to_matrix(self, pair_values: np.ndarray, fill: Any = None) -> np.ndarray:
        """Scatter per-pair values into ``[B, C]``; other entries get ``fill`` (default: the
        vector scores)."""
        if fill is None:
            out = self.vector_scores.astype(np.float64, copy=True).reshape(-1)
        else:
            out = np.full(self.ids.size, fill, dtype=np.float64)
        out[self.present.reshape(-1)] = pair_values
        return out.reshape(self.ids.shape)

    def traversal_adjacency(self, sg: Subgraph) -> tuple[np.ndarray, np.ndarray]:
        """CSR ``(indptr, indices)`` of ``u -> v`` meaning "expanding ``u`` reaches ``v``" in
        this ``direction`` (exact per-node neighbourhoods when the source records
        ``edge_origin``)."""
        if self._adj is None:
            a, b = traversed_pairs(sg, self.direction)
            indptr, indices, _ = build_csr(np.ascontiguousarray(a), np.ascontiguousarray(b), sg.num_nodes)
            self._adj = (indptr, indices)
        return self._adj

    def neighbourhoods(self, sg: Subgraph) -> Neighbourhoods:
        """``N(c)`` of every present pair (computed once per batch and cached)."""
        if self._nbh is None:
            centres, seg_of = np.unique(self.pair_node, return_inverse=True)
            indptr, indices = self.traversal_adjacency(sg)
            seg_ptr, members, _ = neighbourhoods(indptr, indices, centres.astype(np.int64), self.hops)
            seg_of = seg_of.astype(np.int64).reshape(-1)
            sizes = (seg_ptr[1:] - seg_ptr[:-1])[seg_of]
            entry_ptr = np.zeros(sizes.shape[0] + 1, np.int64)
            np.cumsum(sizes, out=entry_ptr[1:])
            self._nbh = Neighbourhoods(seg_of, seg_ptr, members, entry_ptr)
        return self._nbh


@dataclass
class Scores:
    """What a scorer returns.

    Attributes:
        scores: ``[B, C]`` final scores (larger is better).
        context: ``[B, C]`` the graph term blended in (NaN where none), or ``None``.
        explanation: an :class:`Explanation` (``None``: hits get an empty ``attention``).
    """

    scores: np.ndarray
    context: Optional[np.ndarray] = None
    explanation: Optional[Explanation] = None


@runtime_checkable
class Scorer(Protocol):
    """What :class:`~ruvector_graph_attn.GraphReranker` needs from a scorer (module docstring)."""

    hops_needed: int

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        ...


# ---------------------------------------------------------------------------- shared pieces
def _check_feature_dim(Q: np.ndarray, sg: Subgraph) -> None:
    if sg.x.shape[0] and sg.x.shape[1] != Q.shape[1]:
        raise DimensionMismatchError(Q.shape[1], sg.x.shape[1], "graph feature dimension (query dimension)")


def _prepared(Q: np.ndarray, X: np.ndarray, space: str, unit_x: bool = True):
    """Common dtype; unit rows for cosine (queries always, features when ``unit_x``); squared norms."""
    dtype = np.result_type(Q.dtype, X.dtype)
    Qd = Q.astype(dtype, copy=False)
    Xd = X.astype(dtype, copy=False)
    if space == "cosine":
        Qd = _unit_rows(Qd)
        if unit_x:
            Xd = _unit_rows(Xd)
    qsq = np.einsum("ij,ij->i", Qd, Qd)
    xsq = np.einsum("ij,ij->i", Xd, Xd)
    return Qd, Xd, qsq, xsq


def _entry_similarity(Qd, Xd, qsq, xsq, entry_query, entry_member, space) -> np.ndarray:
    """``sim(q, x_j)`` per entry (cosine: rows already unit)."""
    dot = np.einsum("ij,ij->i", Qd[entry_query], Xd[entry_member])
    if space == "l2":
        return -(qsq[entry_query] - 2.0 * dot + xsq[entry_member])
    return dot


def _pooled_scores(Qd, Xd, qsq, cand: Candidates, entry_member, weights, entry_ptr, blend, dtype):
    s, ctx = pooled_context(Qd, Xd, qsq, cand.pair_query, entry_member, weights, entry_ptr,
                            cand.pair_vector_score.astype(dtype), blend, _context_metric(cand.space))
    return s, ctx


def _finish(cand: Candidates, s: np.ndarray, ctx: np.ndarray, explanation: Optional[Explanation]) -> Scores:
    return Scores(cand.to_matrix(s), cand.to_matrix(ctx, fill=np.nan), explanation)


class _Blended:
    """Temperature / blend validation shared by the attention-like scorers (they read whatever
    radius the re-ranker expands: ``hops_needed = 0``, default radius 1)."""

    hops_needed = 0
    uses_graph = True

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE, blend: float = DEFAULT_BLEND) -> None:
        self.temperature = _number(temperature, "temperature", lo=0.0, lo_open=True)
        self.blend = _number(blend, "blend", lo=0.0, hi=1.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(temperature={self.temperature}, blend={self.blend})"


# ---------------------------------------------------------------------------- scorers
class VectorScorer:
    """``score = v_c``: the retriever's own order (the baseline); the graph is not expanded."""

    hops_needed = 0
    uses_graph = False

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        return Scores(candidates.vector_scores.astype(np.float64, copy=True), None, None)

    def __repr__(self) -> str:
        return "VectorScorer()"


class AttentionScorer(_Blended):
    """Query-conditioned attention over each candidate's neighbourhood (the default scorer):
    ``a_j = softmax_{j in N(c)}(sim(q, x_j) / T)``, ``h = sum_j a_j x_j`` (unit ``x_j`` for
    cosine), ``ctx = sim(q, h)``, ``score = (1 - blend) v_c + blend ctx``. One fused Numba
    segment-softmax pass over every (query, candidate) pair."""

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE, blend: float = DEFAULT_BLEND,
                 context: str = "pooled") -> None:
        super().__init__(temperature, blend)
        if context not in CONTEXTS:
            raise ConfigError(f"context must be one of {', '.join(CONTEXTS)}; got {context!r}")
        self.context = context

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(temperature={self.temperature}, blend={self.blend}, "
                f"context={self.context!r})")

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        sg = subgraph
        _check_feature_dim(queries, sg)
        nb = candidates.neighbourhoods(sg)
        if self.context == "mean":
            return self._score_mean(queries, candidates, sg, nb)
        # (the kernel divides by the feature norms itself: no normalised copy of X)
        Qd, Xd, qsq, xsq = _prepared(queries, sg.x, candidates.space, unit_x=False)
        pown = candidates.pair_vector_score.astype(Qd.dtype)
        s, ctx, w = neighbourhood_attention(Qd, Xd, qsq, xsq, candidates.pair_query, nb.seg_of, pown,
                                            nb.seg_ptr, nb.members, self.temperature, self.blend,
                                            _context_metric(candidates.space), nb.entry_ptr)
        expl = AttentionExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], nb.entry_ptr, w,
                                    seg_of=nb.seg_of, seg_ptr=nb.seg_ptr, members=nb.members)
        return _finish(candidates, s, ctx, expl)

    def _score_mean(self, queries, candidates: Candidates, sg: Subgraph, nb: Neighbourhoods) -> Scores:
        """``ctx = sum_j a_j sim(q, x_j)``: the attention-weighted mean similarity."""
        if candidates.space == "l2":
            Qd, Xd, qsq, xsq = _prepared(queries, sg.x, candidates.space)
            pair_of, mem = nb.entries()
            sim = np.asarray(_entry_similarity(Qd, Xd, qsq, xsq, candidates.pair_query[pair_of], mem, "l2"),
                             dtype=np.float64)
            w, _ = segment_softmax_pool(np.ascontiguousarray(sim / self.temperature), np.zeros_like(sim),
                                        nb.entry_ptr)
            ctx = np.add.reduceat(w * sim, nb.entry_ptr[:-1]) if sim.size else np.zeros(0)
            ctx = np.where(np.diff(nb.entry_ptr) > 0, ctx, 0.0)
            s = (1.0 - self.blend) * candidates.pair_vector_score + self.blend * ctx
        else:
            # unit rows (cosine) or raw rows (ip) with the dot-product metric: the pooled vector
            # h = sum_j a_j x_j gives <q, h> = sum_j a_j sim(q, x_j) exactly
            Qd, Xd, qsq, xsq = _prepared(queries, sg.x, candidates.space, unit_x=True)
            pown = candidates.pair_vector_score.astype(Qd.dtype)
            s, ctx, w = neighbourhood_attention(Qd, Xd, qsq, xsq, candidates.pair_query, nb.seg_of, pown,
                                                nb.seg_ptr, nb.members, self.temperature, self.blend, 0,
                                                nb.entry_ptr)
        expl = AttentionExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], nb.entry_ptr, w,
                                    seg_of=nb.seg_of, seg_ptr=nb.seg_ptr, members=nb.members)
        return _finish(candidates, s, ctx, expl)


class SparseTopKScorer(_Blended):
    """:class:`AttentionScorer` where only the ``k`` largest logits ``sim(q, x_j) / T`` of each
    neighbourhood get attention (ties: BFS order, the candidate first); the others get weight 0
    and are left out of the explanation. With ``k >= |N(c)|`` it equals AttentionScorer."""

    def __init__(self, k: int = 8, temperature: float = DEFAULT_TEMPERATURE, blend: float = DEFAULT_BLEND) -> None:
        super().__init__(temperature, blend)
        self.k = check_positive_int(k, "k")

    def __repr__(self) -> str:
        return f"SparseTopKScorer(k={self.k}, temperature={self.temperature}, blend={self.blend})"

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        sg = subgraph
        _check_feature_dim(queries, sg)
        nb = candidates.neighbourhoods(sg)
        Qd, Xd, qsq, xsq = _prepared(queries, sg.x, candidates.space)
        pair_of, mem = nb.entries()
        logits = _entry_similarity(Qd, Xd, qsq, xsq, candidates.pair_query[pair_of], mem, candidates.space)
        logits = np.asarray(logits, dtype=np.float64) / self.temperature
        # rank within each pair: by logit descending, stable (BFS order breaks ties)
        order = np.lexsort((np.arange(logits.shape[0]), -logits, pair_of))
        rank = np.empty(logits.shape[0], np.int64)
        rank[order] = np.arange(logits.shape[0]) - nb.entry_ptr[pair_of[order]]
        keep = np.flatnonzero(rank < self.k)             # increasing: pairs stay in order
        kept_pair = pair_of[keep]
        ptr = np.zeros(nb.entry_ptr.shape[0], np.int64)
        np.cumsum(np.bincount(kept_pair, minlength=ptr.shape[0] - 1), out=ptr[1:])
        w, _ = segment_softmax_pool(np.ascontiguousarray(logits[keep]), np.zeros(keep.shape[0]), ptr)
        kept_mem = np.ascontiguousarray(mem[keep])
        s, ctx = _pooled_scores(Qd, Xd, qsq, candidates, kept_mem, w.astype(Qd.dtype), ptr, self.blend, Qd.dtype)
        expl = AttentionExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], ptr, w,
                                    entry_node=kept_mem)
        return _finish(candidates, s, ctx, expl)


def _ball_points(ball: Any, Qe: np.ndarray, Xe: np.ndarray, qnorm_pair: np.ndarray, xnorm: np.ndarray,
                 pair_of: np.ndarray, entry_ptr: np.ndarray, dtype: Any):
    """Per pair, scale the query and the neighbourhood by one common factor so the largest of
    them lands at HYPERBOLIC_RADIUS of the ball radius ``1 / sqrt(c)`` (expmap0 maps tangent
    norm t to ball norm ``tanh(sqrt(c) t) / sqrt(c)``); per pair, so batch == single."""
    c = float(ball.c)
    P = qnorm_pair.shape[0]
    t = np.arctanh(HYPERBOLIC_RADIUS) / np.sqrt(c)
    seg_max = np.maximum.reduceat(xnorm, entry_ptr[:-1]) if xnorm.size else np.zeros(P)
    pair_scale = np.maximum(np.maximum(seg_max, qnorm_pair), 1e-12)
    f = (t / pair_scale)[pair_of].astype(dtype)[:, None]
    return ball.expmap0(Qe * f), ball.expmap0(Xe * f)


def _manifold_points(manifold: Any, Qe, Xe, pair_of, entry_ptr, dtype):
    """Map query rows ``Qe`` and feature rows ``Xe`` (one pair entry each) onto ``manifold``."""
    from ..manifold import Euclidean, PoincareBall, Product, Sphere

    if isinstance(manifold, PoincareBall):
        qn = np.sqrt(np.maximum(np.einsum("ij,ij->i", Qe, Qe), 0.0))
        xn = np.sqrt(np.maximum(np.einsum("ij,ij->i", Xe, Xe), 0.0))
        return _ball_points(manifold, Qe, Xe, qn[entry_ptr[:-1]] if qn.size else qn, xn, pair_of, entry_ptr, dtype)
    if isinstance(manifold, Sphere):
        def on(a):
            n = np.linalg.norm(a, axis=1, keepdims=True)
            out = a / np.where(n > 0, n, 1.0)
            out[n[:, 0] == 0, 0] = 1.0        # a zero row maps to the pole
            return np.ascontiguousarray(manifold.radius * out, dtype=dtype)
        return on(Qe), on(Xe)
    if isinstance(manifold, Euclidean):
        return Qe, Xe
    if isinstance(manifold, Product):
        qs, xs = [], []
        for m, lo, hi in zip(manifold.manifolds, manifold._bounds[:-1], manifold._bounds[1:]):
            uq, ux = _manifold_points(m, np.ascontiguousarray(Qe[:, lo:hi]), np.ascontiguousarray(Xe[:, lo:hi]),
                                      pair_of, entry_ptr, dtype)
            qs.append(uq)
            xs.append(ux)
        return np.concatenate(qs, axis=1), np.concatenate(xs, axis=1)
    raise ConfigError(f"GeometricScorer supports PoincareBall, Sphere, Euclidean and Product manifolds, "
                      f"got {type(manifold).__name__}")


class GeometricScorer(_Blended):
    """Attention from geodesic distances on a manifold: ``a_j = softmax_j(-d(u_q, u_j)^2 / T)``
    over ``N(c)``; the context and score are pooled as :class:`AttentionScorer` does (Euclidean
    features, unit rows for cosine).

    Points on the manifold (query and features of the pair's neighbourhood):

    * :class:`~ruvector_graph_attn.manifold.PoincareBall` ``(c)``: ``u = expmap0(t x / s)``, with
      ``s`` the largest norm among the query and the neighbourhood and ``t = artanh(0.9) /
      sqrt(c)`` (the largest point lands at 0.9 of the ball radius);
    * :class:`~ruvector_graph_attn.manifold.Sphere` ``(r)``: ``u = r x / |x|`` (a zero row: the pole);
    * :class:`~ruvector_graph_attn.manifold.Euclidean`: ``u = x``;
    * :class:`~ruvector_graph_attn.manifold.Product`: each block by its component's rule;
      ``d^2`` is the sum of the component ``d_i^2``.

    ``GeometricScorer(PoincareBall(c))`` is the ``"hyperbolic"`` scorer.
    """

    def __init__(self, manifold: Any = None, temperature: float = DEFAULT_TEMPERATURE,
                 blend: float = DEFAULT_BLEND) -> None:
        from ..manifold import Euclidean, Manifold, PoincareBall, Product, Sphere

        super().__init__(temperature, blend)
        if manifold is None:
            manifold = PoincareBall(1.0)
        if not isinstance(manifold, Manifold):
            raise ConfigError(f"manifold must be a rga.manifold.Manifold, got {type(manifold).__name__}")

        def ok(m):
            if isinstance(m, Product):
                return all(ok(x) for x in m.manifolds)
            return isinstance(m, (PoincareBall, Sphere, Euclidean))
        if not ok(manifold):
            raise ConfigError(f"GeometricScorer supports PoincareBall, Sphere, Euclidean and Product "
                              f"manifolds, got {manifold!r}")
        self.manifold = manifold

    def __repr__(self) -> str:
        return f"GeometricScorer({self.manifold!r}, temperature={self.temperature}, blend={self.blend})"

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        from ..manifold import PoincareBall

        sg = subgraph
        _check_feature_dim(queries, sg)
        if getattr(self.manifold, "dim", None) is not None and self.manifold.dim != queries.shape[1]:
            raise DimensionMismatchError(self.manifold.dim, queries.shape[1], "manifold dimension (query dimension)")
        nb = candidates.neighbourhoods(sg)
        Qd, Xd, qsq, xsq = _prepared(queries, sg.x, candidates.space)
        pair_of, mem = nb.entries()
        pq = candidates.pair_query
        qb = pq[pair_of]
        ball = isinstance(self.manifold, PoincareBall)
        qn = np.sqrt(np.maximum(qsq, 0.0))
        xn = np.sqrt(np.maximum(xsq, 0.0))
        ptr = nb.entry_ptr
        P = pq.shape[0]
        d = np.empty(pair_of.shape[0], dtype=Qd.dtype)
        # the points of a block of whole pairs at a time: [entries, D] copies stay bounded when
        # hubs make neighbourhoods large (a pair's points depend on that pair's entries only)
        budget = max(1, GEOMETRIC_BLOCK_BYTES // max(1, Qd.shape[1] * Qd.dtype.itemsize))
        p0 = 0
        while p0 < P:
            e0 = int(ptr[p0])
            p1 = min(P, max(p0 + 1, int(np.searchsorted(ptr, e0 + budget, side="right")) - 1))
            e1 = int(ptr[p1])
            loc_ptr = ptr[p0:p1 + 1] - e0
            loc_pair = pair_of[e0:e1] - p0
            Qe, Xe = Qd[qb[e0:e1]], Xd[mem[e0:e1]]
            if ball:
                uq, ux = _ball_points(self.manifold, Qe, Xe, qn[pq[p0:p1]], xn[mem[e0:e1]], loc_pair, loc_ptr,
                                      Qd.dtype)
            else:
                uq, ux = _manifold_points(self.manifold, Qe, Xe, loc_pair, loc_ptr, Qd.dtype)
            d[e0:e1] = np.asarray(self.manifold.dist(uq, ux), dtype=Qd.dtype).reshape(-1)
            p0 = p1
        w, _ = segment_softmax_pool(np.ascontiguousarray(-(d * d) / self.temperature), np.zeros_like(d), nb.entry_ptr)
        s, ctx = _pooled_scores(Qd, Xd, qsq, candidates, mem, w, nb.entry_ptr, self.blend, Qd.dtype)
        expl = AttentionExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], nb.entry_ptr, w,
                                    seg_of=nb.seg_of, seg_ptr=nb.seg_ptr, members=nb.members)
        return _finish(candidates, s, ctx, expl)


class MultiHeadScorer(_Blended):
    """A :class:`~ruvector_graph_attn.MultiHeadAttention` (torch ``nn.MultiheadAttention``
    weights load unchanged) attends from the query over each candidate's neighbourhood:
    ``h = mha(q, K = V = x_{N(c)})`` (one query token), ``ctx = sim(q, h)``,
    ``score = (1 - blend) v_c + blend ctx``. The explanation holds the attention weights
    averaged over heads. ``embed_dim`` (and ``kdim``/``vdim``) must equal the query dimension.
    """

    def __init__(self, mha: Any, blend: float = DEFAULT_BLEND) -> None:
        from ..attention.multihead import MultiHeadAttention

        if not isinstance(mha, MultiHeadAttention):
            raise NotFittedError(f"MultiHeadScorer needs a rga.MultiHeadAttention with loaded weights, "
                                 f"got {type(mha).__name__}")
        super().__init__(DEFAULT_TEMPERATURE, blend)
        self.mha = mha

    def __repr__(self) -> str:
        return f"MultiHeadScorer(embed_dim={self.mha.embed_dim}, num_heads={self.mha.num_heads}, blend={self.blend})"

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        sg = subgraph
        _check_feature_dim(queries, sg)
        mha = self.mha
        E, H = mha.embed_dim, mha.num_heads
        if E != queries.shape[1] or mha.kdim != E or mha.vdim != E:
            raise DimensionMismatchError(queries.shape[1], (E, mha.kdim, mha.vdim),
                                         "MultiHeadAttention embed_dim/kdim/vdim (query dimension)")
        hd = E // H
        nb = candidates.neighbourhoods(sg)
        Qd, Xd, qsq, xsq = _prepared(queries, sg.x, candidates.space)
        dtype = np.result_type(Qd.dtype, mha.out_proj.weight.data.dtype)
        Wq, Wk, Wv = (w.astype(dtype) for w in mha._proj_weights())
        bq, bk, bv = mha._proj_biases()
        Qp = Qd.astype(dtype) @ Wq.T
        Kp = Xd.astype(dtype) @ Wk.T
        Vp = Xd.astype(dtype) @ Wv.T
        if bq is not None:
            Qp, Kp, Vp = Qp + bq, Kp + bk, Vp + bv
        Qp = Qp * dtype.type(1.0 / np.sqrt(hd))
        pair_of, mem = nb.entries()
        qe = candidates.pair_query[pair_of]
        Ent = pair_of.shape[0]
        logits = np.einsum("ehd,ehd->eh", Qp[qe].reshape(Ent, H, hd), Kp[mem].reshape(Ent, H, hd))
        starts = nb.entry_ptr[:-1]
        seg = pair_of
        mx = np.maximum.reduceat(logits, starts, axis=0)
        ex = np.exp(logits - mx[seg])
        w = ex / np.add.reduceat(ex, starts, axis=0)[seg]                        # [E, H]
        pooled = np.add.reduceat(w[:, :, None] * Vp[mem].reshape(Ent, H, hd), starts, axis=0)
        out = pooled.reshape(-1, E) @ mha.out_proj.weight.data.astype(dtype).T
        if mha.out_proj.bias is not None:
            out = out + mha.out_proj.bias.data.astype(dtype)
        out = np.ascontiguousarray(out, dtype=Qd.dtype)
        osq = np.einsum("ij,ij->i", out, out)
        if candidates.space == "cosine":
            out = _unit_rows(out)
            osq = np.einsum("ij,ij->i", out, out)
        sim = pair_similarity(Qd, out, qsq, osq, candidates.pair_query,
                              np.arange(out.shape[0], dtype=np.int64), _metric(candidates.space))
        s = (1.0 - self.blend) * candidates.pair_vector_score + self.blend * sim
        expl = AttentionExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], nb.entry_ptr,
                                    w.mean(axis=1), seg_of=nb.seg_of, seg_ptr=nb.seg_ptr, members=nb.members)
        return _finish(candidates, s, sim, expl)


_LAYER_EXPLAIN = ("auto", "attention", "gin", "mean")


class LayerScorer:
    """A trained graph layer (GAT/GATv2, SAGE, GIN/GINE, or a ``GraphSequential`` of them) run
    once on the expanded subgraph: ``h = layer(x, edge_index[, edge_attr])`` (messages
    ``edge_index[0] -> edge_index[1]``; with ``direction="both"`` each traversed edge is given in
    both orientations, once, except to a direction-aware layer -- one with
    ``reads_out_edges = True`` such as :class:`~ruvector_graph_attn.graph.DirGNNConv` -- which
    gets the edges in their stored orientation and tells in- from out-neighbours itself), ``ctx = sim(q, h_c)``, ``score = (1 - blend) v_c + blend ctx``.
    The layer's output dimension must equal the query dimension. ``hops_needed`` is the
    layer's number of message-passing steps.

    ``explain``: the aggregation shares reported per hit -- ``"attention"`` (the layer's
    attention coefficients, averaged over heads: GAT-style layers accepting
    ``return_attention_weights=True``), ``"gin"`` (``1 / (1 + eps + deg)``), ``"mean"``
    (``1 / deg``) or ``"auto"`` (from the layer's type).
    """

    uses_graph = True

    def __init__(self, layer: Any, blend: float = DEFAULT_BLEND, explain: str = "auto") -> None:
        if layer is None:
            raise NotFittedError("LayerScorer needs a trained or loaded graph layer (e.g. rga.graph.GATConv "
                                 "with load_state_dict); random initialisation is not a useful scorer")
        if not callable(layer):
            raise InvalidInputError(f"layer must be callable as layer(x, edge_index), got {type(layer).__name__}")
        if explain not in _LAYER_EXPLAIN:
            raise ConfigError(f"explain must be one of {', '.join(_LAYER_EXPLAIN)}; got {explain!r}")
        if explain == "auto":
            name = type(layer).__name__
            explain = "attention" if name in ("GATConv", "GATv2Conv") else \
                "gin" if name in ("GINConv", "GINEConv") else "mean"
        self.layer = layer
        self.explain = explain
        self.blend = _number(blend, "blend", lo=0.0, hi=1.0)
        self.hops_needed = graph_depth(layer)

    def __repr__(self) -> str:
        return f"LayerScorer({type(self.layer).__name__}, blend={self.blend}, explain={self.explain!r})"

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        sg = subgraph
        Q = queries
        layer = self.layer
        ea = sg.edge_attr
        weights = None
        eidx = sg.edge_index
        if candidates.direction == "both" and eidx.shape[1] and not _reads_out_edges(layer):
            # "both" treats the graph as undirected: the layer sees every traversed edge in
            # both orientations (each (source, target) pair once), like PyG's to_undirected
            both = np.concatenate([eidx, eidx[::-1]], axis=1)
            key = both[0] * np.int64(sg.num_nodes) + both[1]
            _, first = np.unique(key, return_index=True)
            eidx = np.ascontiguousarray(both[:, first])
            if ea is not None:
                ea = np.ascontiguousarray(np.concatenate([ea, ea], axis=0)[first])
        try:
            if self.explain == "attention":
                out = layer(sg.x, eidx, edge_attr=ea, return_attention_weights=True) if ea is not None \
                    else layer(sg.x, eidx, return_attention_weights=True)
                H, (eidx, alpha) = out
                alpha = np.asarray(alpha)
                weights = alpha.mean(axis=1) if alpha.ndim == 2 else alpha.reshape(-1)
            else:
                H = layer(sg.x, eidx, edge_attr=ea) if ea is not None else layer(sg.x, eidx)
        except TypeError as exc:
            raise InvalidInputError(f"layer could not be applied as layer(x, edge_index): {exc}") from exc
        H = np.ascontiguousarray(np.asarray(H))
        if H.ndim != 2 or H.shape[0] != sg.num_nodes:
            raise DimensionMismatchError((sg.num_nodes, Q.shape[1]), H.shape, "layer output shape")
        if H.shape[1] != Q.shape[1]:
            raise DimensionMismatchError(Q.shape[1], H.shape[1],
                                         "layer output dimension (must equal the query dimension)")
        dtype = np.result_type(Q.dtype, H.dtype)
        Qd, Hd = Q.astype(dtype, copy=False), H.astype(dtype, copy=False)
        if candidates.space == "cosine":
            Qd, Hd = _unit_rows(Qd), _unit_rows(Hd)
        qsq = np.einsum("ij,ij->i", Qd, Qd)
        hsq = np.einsum("ij,ij->i", Hd, Hd)
        ps = candidates.pair_node
        sim = pair_similarity(Qd, Hd, qsq, hsq, candidates.pair_query, ps.astype(np.int64),
                              _metric(candidates.space))
        s = (1.0 - self.blend) * candidates.pair_vector_score.astype(dtype) + self.blend * sim
        # explanation: aggregation weights of edges into each centre
        eidx = np.asarray(eidx, dtype=np.int64)
        if weights is None:
            deg = np.bincount(eidx[1], minlength=sg.num_nodes).astype(np.float64)
            if self.explain == "gin":
                eps = float(np.asarray(getattr(getattr(layer, "eps", 0.0), "data", getattr(layer, "eps", 0.0))).reshape(-1)[0])
                weights = 1.0 / (1.0 + eps + deg[eidx[1]])
            else:
                weights = 1.0 / np.maximum(deg[eidx[1]], 1.0)
        indptr, nbr, order = build_csr(np.ascontiguousarray(eidx[1]), np.ascontiguousarray(eidx[0]), sg.num_nodes)
        expl = AggregationExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], ps,
                                      indptr, nbr, np.asarray(weights, dtype=np.float64)[order])
        return _finish(candidates, s, sim, expl)


class PersonalizedPageRankScorer:
    """Personalised PageRank over each query's expanded subgraph, seeded by its candidates'
    vector similarities (graph re-ranking in the style of HippoRAG).

    For query ``q``: restart distribution ``p_c = softmax_c(v_c / T)`` over its candidates that
    are in the graph; walk graph = the nodes within ``hops`` of those candidates and the edges
    the expansion traversed from nodes closer than ``hops`` (walked both ways with
    ``direction="both"``); ``alpha`` the probability of following an edge (``1 - alpha``: jump
    back to ``p``; a node without out-edges jumps back to ``p``), ``iterations`` steps of power
    iteration from ``p`` (a Numba CSR kernel, one query per thread). ``ctx = pi_c`` (the
    candidate's PageRank mass), ``score = (1 - blend) v_c + blend pi_c``; the default blend 1
    ranks by PageRank mass alone. The explanation holds the mass of every node of ``N(c)``.
    """

    uses_graph = True
    hops_needed = 0

    def __init__(self, alpha: float = 0.5, iterations: int = 30, temperature: float = DEFAULT_TEMPERATURE,
                 blend: float = 1.0) -> None:
        self.alpha = _number(alpha, "alpha", lo=0.0, hi=1.0)
        if self.alpha >= 1.0:
            raise InvalidInputError(f"alpha must be in [0, 1) (1 never restarts), got {alpha!r}")
        self.iterations = check_positive_int(iterations, "iterations", allow_zero=True)
        if self.iterations > 10_000:
            raise InvalidInputError(f"iterations={iterations} is over the limit of 10000")
        self.temperature = _number(temperature, "temperature", lo=0.0, lo_open=True)
        self.blend = _number(blend, "blend", lo=0.0, hi=1.0)

    def __repr__(self) -> str:
        return (f"PersonalizedPageRankScorer(alpha={self.alpha}, iterations={self.iterations}, "
                f"temperature={self.temperature}, blend={self.blend})")

    def personalization(self, candidates: Candidates) -> np.ndarray:
        """``[P]`` restart weights of the present pairs (softmax of ``v / T`` per query)."""
        v = candidates.pair_vector_score.astype(np.float64) / self.temperature
        pq = candidates.pair_query
        if v.size == 0:
            return v
        starts = np.flatnonzero(np.r_[True, pq[1:] != pq[:-1]])
        grp = np.cumsum(np.r_[False, pq[1:] != pq[:-1]])
        e = np.exp(v - np.maximum.reduceat(v, starts)[grp])
        return e / np.add.reduceat(e, starts)[grp]

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        from ..kernels.ppr import personalized_pagerank, walk_sizes

        sg = subgraph
        B = candidates.ids.shape[0]
        indptr, indices = candidates.traversal_adjacency(sg)
        n = sg.num_nodes
        # reverse adjacency (for undirected walks)
        deg = indptr[1:] - indptr[:-1]
        src = np.repeat(np.arange(n, dtype=np.int64), deg)
        rindptr, rindices, _ = build_csr(np.ascontiguousarray(indices), src, n)
        qptr = np.zeros(B + 1, np.int64)
        np.cumsum(np.bincount(candidates.pair_query, minlength=B), out=qptr[1:])
        seeds = np.ascontiguousarray(candidates.pair_node, dtype=np.int64)
        pw = self.personalization(candidates)
        hops = int(candidates.hops)
        sizes = walk_sizes(indptr, indices, qptr, seeds, hops)
        node_ptr = np.zeros(B + 1, np.int64)
        np.cumsum(sizes, out=node_ptr[1:])
        mass, nodes, node_mass = personalized_pagerank(indptr, indices, rindptr, rindices,
                                                       candidates.direction == "both", qptr, seeds, pw, hops,
                                                       self.alpha, self.iterations, node_ptr)
        s = (1.0 - self.blend) * candidates.pair_vector_score + self.blend * mass
        # explanation: mass of each member of N(c) under the pair's query
        nb = candidates.neighbourhoods(sg)
        pair_of, mem = nb.entries()
        qe = candidates.pair_query[pair_of]
        # look the (query, node) keys up in the per-query node lists
        node_q = np.repeat(np.arange(B, dtype=np.int64), sizes)
        key_nodes = node_q * np.int64(n) + nodes
        srt = np.argsort(key_nodes, kind="stable")
        key_e = qe * np.int64(n) + mem
        pos = np.searchsorted(key_nodes[srt], key_e)
        pos = np.minimum(pos, max(srt.shape[0] - 1, 0))
        hit = key_nodes[srt][pos] == key_e if srt.size else np.zeros(key_e.shape[0], bool)
        entry_mass = np.where(hit, node_mass[srt][pos] if srt.size else 0.0, 0.0)
        expl = PageRankExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], nb.entry_ptr,
                                   entry_mass, seg_of=nb.seg_of, seg_ptr=nb.seg_ptr, members=nb.members)
        return _finish(candidates, s, mass, expl)


class EnsembleScorer:
    """A weighted sum of other scorers' final scores on the same candidates and subgraph:
    ``score = sum_i w_i score_i`` with the weights normalised to sum to 1 (each part already
    blends in the vector score ``v_c`` by its own ``blend``), ``ctx = sum_i w_i ctx_i`` (NaN where
    a part has no context). The typical use combines a trained layer with the attention
    context, the weight chosen on held-out tuning queries::

        EnsembleScorer([LayerScorer(layer, blend=0.8), AttentionScorer(0.1, 0.5)], [0.5, 0.5])

    ``hops_needed`` is the largest of the parts'; the subgraph is expanded when any part reads
    the graph (parts that do not, such as VectorScorer, get ``subgraph=None``). The explanation
    is the first part's (the parts' weights of a hit's neighbours are not comparable).
    """

    def __init__(self, scorers: Any, weights: Any = None) -> None:
        parts = list(scorers) if isinstance(scorers, (list, tuple)) else None
        if not parts:
            raise ConfigError("EnsembleScorer needs a non-empty list of scorer objects")
        for p in parts:
            if not (callable(getattr(p, "score", None)) and hasattr(p, "hops_needed")):
                raise ConfigError(f"EnsembleScorer parts must be scorer objects, got {type(p).__name__}")
        if weights is None:
            w = np.full(len(parts), 1.0 / len(parts))
        else:
            try:
                w = np.asarray(weights, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"weights must be numbers, got {weights!r}") from exc
            if w.shape[0] != len(parts):
                raise InvalidInputError(f"{len(parts)} scorers but {w.shape[0]} weights")
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise InvalidInputError(f"weights must be finite, non-negative and not all 0; got {weights!r}")
            w = w / w.sum()
        self.scorers = parts
        self.weights = w
        self.hops_needed = max(int(p.hops_needed) for p in parts)
        self.uses_graph = any(bool(getattr(p, "uses_graph", True)) for p in parts)

    def __repr__(self) -> str:
        inner = ", ".join(f"{w:.3g} * {p!r}" for p, w in zip(self.scorers, self.weights))
        return f"EnsembleScorer({inner})"

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Subgraph]) -> Scores:
        # only the present pairs are combined; the others keep their vector score (padding
        # columns may hold -inf there, which a zero weight must not turn into NaN)
        mask = np.asarray(candidates.present, dtype=bool)
        total = np.zeros(int(mask.sum()))
        ctx = np.zeros(total.shape[0])
        expl = None
        for i, (p, w) in enumerate(zip(self.scorers, self.weights)):
            sg = subgraph if getattr(p, "uses_graph", True) else None
            out = p.score(queries, candidates, sg)
            s = np.asarray(out.scores, dtype=np.float64)
            if s.shape != mask.shape:
                raise InvalidInputError(f"EnsembleScorer part {p!r} returned scores of shape {s.shape}, "
                                        f"expected {mask.shape}")
            total += w * s[mask]
            ctx += w * (np.nan if out.context is None else np.asarray(out.context, dtype=np.float64)[mask])
            if i == 0:
                expl = out.explanation
        scores = candidates.vector_scores.astype(np.float64, copy=True)
        scores[mask] = total
        context = np.full(mask.shape, np.nan)
        context[mask] = ctx
        return Scores(scores, context, expl)


from .vote import VOTE_VOTERS, VoteScorer  # noqa: E402  (vote.py imports this module lazily)

# ---------------------------------------------------------------------------- aliases
#: string aliases accepted by ``GraphReranker(scorer=...)``
ALIASES = ("vector", "attention", "hyperbolic", "gat", "sage", "gin", "sphere", "euclidean", "multihead",
           "sparse_topk", "ppr", "vote")
_LAYER_ALIASES = {"gat": "attention", "sage": "mean", "gin": "gin"}
_LAYER_CLASS = {"gat": "GATConv", "sage": "SAGEConv", "gin": "GINConv"}


def resolve_scorer(scorer: Any, layer: Any = None, temperature: float = DEFAULT_TEMPERATURE,
                   blend: float = DEFAULT_BLEND, curvature: float = 1.0) -> Any:
    """A scorer object from an alias string (using ``layer``, ``temperature``, ``blend``,
    ``curvature``) or a scorer object (returned as is after a protocol check).

    Aliases: ``"vector"``, ``"attention"``, ``"hyperbolic"`` (PoincareBall(curvature)),
    ``"sphere"``, ``"euclidean"``, ``"sparse_topk"`` (k = 8), ``"ppr"`` (alpha 0.5, 30 iterations,
    the given temperature, blend 1), ``"vote"`` (VoteScorer: the given temperature and blend,
    ``VOTE_VOTERS`` voters, ``layer=`` an optional trained query map), ``"gat"``/``"sage"``/``"gin"`` (``layer=`` a graph layer),
    ``"multihead"`` (``layer=`` a MultiHeadAttention).
    """
    from ..manifold import Euclidean, PoincareBall, Sphere

    if isinstance(scorer, str):
        if scorer not in ALIASES:
            raise ConfigError(f"scorer must be one of {', '.join(ALIASES)} or a Scorer object; got {scorer!r}")
        if scorer == "vector":
            return VectorScorer()
        if scorer == "attention":
            return AttentionScorer(temperature, blend)
        if scorer == "hyperbolic":
            return GeometricScorer(PoincareBall(_number(curvature, "curvature", lo=0.0, lo_open=True)),
                                   temperature, blend)
        if scorer == "sphere":
            return GeometricScorer(Sphere(1.0), temperature, blend)
        if scorer == "euclidean":
            return GeometricScorer(Euclidean(), temperature, blend)
        if scorer == "sparse_topk":
            return SparseTopKScorer(8, temperature, blend)
        if scorer == "ppr":
            return PersonalizedPageRankScorer(temperature=temperature)
        if scorer == "vote":
            return VoteScorer(temperature, VOTE_VOTERS, blend, query_map=layer)
        if scorer == "multihead":
            if layer is None:
                raise NotFittedError("scorer 'multihead' needs a rga.MultiHeadAttention with loaded weights: "
                                     "pass layer=mha (e.g. after mha.load_state_dict(torch_state_dict))")
            return MultiHeadScorer(layer, blend)
        if layer is None:
            raise NotFittedError(
                f"scorer {scorer!r} needs a trained or loaded graph layer: pass layer=... "
                f"(e.g. rga.graph.{_LAYER_CLASS[scorer]} with load_state_dict); random initialisation is "
                f"not a useful scorer")
        if not callable(layer):
            raise InvalidInputError(f"layer must be callable as layer(x, edge_index), got {type(layer).__name__}")
        return LayerScorer(layer, blend, explain=_LAYER_ALIASES[scorer])
    if not (callable(getattr(scorer, "score", None)) and hasattr(scorer, "hops_needed")):
        raise ConfigError(f"scorer must be one of {', '.join(ALIASES)} or an object with hops_needed and "
                          f"score(queries, candidates, subgraph); got {type(scorer).__name__}")
    hn = scorer.hops_needed
    if isinstance(hn, bool) or not isinstance(hn, (int, np.integer)) or not 0 <= hn <= 8:
        raise ConfigError(f"scorer.hops_needed must be an integer in 0..8, got {hn!r}")
    return scorer
