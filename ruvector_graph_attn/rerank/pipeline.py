"""The main job: HNSW candidates -> graph expansion -> attention scoring -> ranked neighbours.

Scorers (``q`` the query, ``c`` a candidate, ``N(c)`` the candidate plus every node within
``hops`` of it in ``direction``, ``sim`` the index space's similarity -- ``cos`` for
``"cosine"``, ``<q, x>`` for ``"ip"``, ``-||q - x||^2`` for ``"l2"`` -- and ``v_c`` the
index's own similarity of ``c``):

``"vector"``      ``score = v_c`` (the index order; the baseline).
``"attention"``   ``a_j = softmax_{j in N(c)}(sim(q, x_j) / T)``, the attended context
                  vector ``h_c = sum_j a_j x_j`` (unit ``x_j`` for cosine),
                  ``ctx_c = sim(q, h_c)``, ``score = (1 - beta) v_c + beta ctx_c``.
``"hyperbolic"``  as ``"attention"`` but the weights come from geodesic distances on the
                  Poincare ball: ``u = expmap0(t x / s)`` for the query and the features
                  (``s`` the largest norm among the query and the neighbourhood), ``a_j = softmax_j(-d_c(u_q, u_j)^2 / T)``; context and score
                  as for ``"attention"``.
``"gat"``, ``"sage"``, ``"gin"``  a trained graph layer ``f`` is run once on the expanded
                  subgraph (``x``, ``edge_index`` as the connector returns them, messages
                  ``edge_index[0] -> edge_index[1]``; with ``direction="both"`` every edge is
                  given in both orientations): ``h = f(x, edge_index)``,
                  ``score = (1 - beta) v_c + beta sim(q, h_c)``.

Candidates missing from the graph keep ``score = v_c`` and are flagged ``in_graph=False``.
Everything after the index search is batched across queries: one expansion for the union
of all candidates, one Numba segment-softmax pass over every (query, candidate) pair.
"""
from __future__ import annotations

import time
from typing import Any, Hashable, Optional, Sequence

import numpy as np

from ..connectors.base import GraphSource, Subgraph, check_direction, check_hops
from ..errors import (
    ConfigError, DimensionMismatchError, InvalidInputError, NotFittedError, UnknownIdError,
)
from ..kernels.rerank import (
    build_csr, neighbourhood_attention, neighbourhoods, pair_similarity, pooled_context,
    segment_softmax_pool,
)
from ..validation import DEFAULT_MAX_KEYS, as_float_array, check_float, check_int, check_positive_int, check_size
from .results import RankedNeighbour

__all__ = ["GraphReranker", "SCORERS", "DEFAULT_TEMPERATURE", "DEFAULT_BLEND"]

SCORERS = ("vector", "attention", "hyperbolic", "gat", "sage", "gin")
_LAYER_SCORERS = ("gat", "sage", "gin")

#: defaults of the "attention" scorer, chosen on the tuning split of
#: ``benchmarks/rerank_quality.py`` (see docs/rerank.md)
DEFAULT_TEMPERATURE = 0.2
DEFAULT_BLEND = 0.8
#: Poincare-ball radius the features are scaled to (fraction of the ball) for "hyperbolic"
HYPERBOLIC_RADIUS = 0.9


def _metric(space: str) -> int:
    return 1 if space == "l2" else 0


def _context_metric(space: str) -> int:
    """Metric code of neighbourhood_attention (2 = cosine: renormalise the pooled vector)."""
    return {"ip": 0, "l2": 1, "cosine": 2}[space]


def _unit_rows(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return np.ascontiguousarray(a / n, dtype=a.dtype)


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


class GraphReranker:
    """Re-rank vector-search candidates with the graph around them.

    Args:
        index: an :class:`~ruvector_graph_attn.HNSWIndex` (anything with ``search(queries,
            k, ef=...)`` returning ``(ids, dists)`` hnswlib-style, ``to_similarity`` and ``dim``).
        graph: a :class:`~ruvector_graph_attn.connectors.GraphSource` whose node ids are the
            index's ids and whose features live in the query space.
        scorer: one of ``"vector"``, ``"attention"`` (default), ``"hyperbolic"``, ``"gat"``,
            ``"sage"``, ``"gin"`` (the last three need ``layer=``).
        hops: neighbourhood radius (0..8). Default (``None``): 1, or for the layer scorers the
            number of graph layers in ``layer`` (an L-layer model reads L hops around each
            candidate; a smaller radius would truncate its receptive field by what else is in
            the batch, so ``search_batch`` would differ from ``search``: that is refused).
        candidates: how many index hits are re-ranked per query (at least ``k`` are fetched).
        temperature: softmax temperature ``T`` of the attention scorers (> 0).
        blend: ``beta`` in ``[0, 1]``: weight of the graph context against the candidate's own
            vector similarity.
        direction: ``"both"`` (default: any edge counts as a neighbour), ``"out"`` or ``"in"``.
        max_neighbors: cap on each expanded node's neighbours (deterministic sample).
        layer: a trained graph layer (``GATConv``/``GATv2Conv``, ``SAGEConv``, ``GINConv``...)
            for the layer scorers; its output dimension must equal the query dimension.
        ef: HNSW beam width for the candidate search (default: ``max(index.ef, candidates)``).
        seed: sampling seed for ``max_neighbors``.
        curvature: Poincare-ball curvature ``c`` of the ``"hyperbolic"`` scorer.
    """

    def __init__(self, index: Any, graph: Any, scorer: str = "attention", hops: Optional[int] = None,
                 candidates: int = 100, temperature: float = DEFAULT_TEMPERATURE,
                 blend: float = DEFAULT_BLEND, direction: str = "both",
                 max_neighbors: Optional[int] = None, layer: Any = None, ef: Optional[int] = None,
                 seed: int = 0, curvature: float = 1.0) -> None:
        if not hasattr(index, "search") or not callable(index.search):
            raise InvalidInputError(f"index must have a search(queries, k) method, got {type(index).__name__}")
        if not isinstance(graph, GraphSource):
            raise InvalidInputError(
                f"graph must implement the GraphSource protocol (expand, features, contains, dim), "
                f"got {type(graph).__name__}")
        if scorer not in SCORERS:
            raise ConfigError(f"scorer must be one of {', '.join(SCORERS)}; got {scorer!r}")
        if scorer in _LAYER_SCORERS:
            if layer is None:
                raise NotFittedError(
                    f"scorer {scorer!r} needs a trained or loaded graph layer: pass layer=... "
                    f"(e.g. rga.graph.{ {'gat': 'GATConv', 'sage': 'SAGEConv', 'gin': 'GINConv'}[scorer]}"
                    f" with load_state_dict); random initialisation is not a useful scorer")
            if not callable(layer):
                raise InvalidInputError(f"layer must be callable as layer(x, edge_index), got {type(layer).__name__}")
        self.index = index
        self.graph = graph
        self.scorer = scorer
        self.layer = layer
        depth = graph_depth(layer) if scorer in _LAYER_SCORERS else 0
        self.hops = max(1, depth) if hops is None else check_hops(hops)
        if self.hops < depth:
            raise ConfigError(
                f"the {scorer!r} layer has {depth} graph layers, so it reads {depth} hops around each "
                f"candidate; hops={self.hops} would make scores depend on the rest of the batch. "
                f"Use hops>={depth} (or leave hops unset)")
        self.candidates = check_positive_int(candidates, "candidates")
        check_size(self.candidates, DEFAULT_MAX_KEYS, "candidates")
        self.temperature = self._check_float(temperature, "temperature", lo=0.0, lo_open=True)
        self.blend = self._check_float(blend, "blend", lo=0.0, hi=1.0)
        self.direction = check_direction(direction)
        if max_neighbors is not None:
            max_neighbors = check_positive_int(max_neighbors, "max_neighbors", allow_zero=True)
        self.max_neighbors = max_neighbors
        self.ef = None if ef is None else check_positive_int(ef, "ef")
        self.seed = check_int(seed, "seed", lo=0)
        self.curvature = self._check_float(curvature, "curvature", lo=0.0, lo_open=True)
        self.space = getattr(index, "space", "cosine")
        #: wall time (seconds) of each stage of the last search: index, expand, score, results
        self.last_timings: dict = {}
        if self.space not in ("cosine", "ip", "l2"):
            raise InvalidInputError(f"index.space must be 'cosine', 'ip' or 'l2', got {self.space!r}")

    @staticmethod
    def _check_float(v: Any, name: str, lo: float | None = None, hi: float | None = None,
                     lo_open: bool = False) -> float:
        return check_float(v, name, lo=lo, hi=hi, lo_open=lo_open)

    def __repr__(self) -> str:
        return (f"GraphReranker(scorer={self.scorer!r}, hops={self.hops}, candidates={self.candidates}, "
                f"temperature={self.temperature}, blend={self.blend}, direction={self.direction!r}, "
                f"max_neighbors={self.max_neighbors})")

    # ------------------------------------------------------------------ search
    def search(self, q: Any, k: int = 10) -> list[RankedNeighbour]:
        """The ``k`` best re-ranked hits for one query ``[D]``."""
        qa = as_float_array(q, "query", ndim=1)
        return self.search_batch(qa.reshape(1, -1), k)[0]

    def search_batch(self, Q: Any, k: int = 10) -> list[list[RankedNeighbour]]:
        """Re-ranked hits for queries ``[B, D]``: one index search, one graph expansion for
        the union of all candidates, one batched scoring pass."""
        Qa = as_float_array(Q, "queries", ndim=2)
        k = check_positive_int(k, "k")
        dim = getattr(self.index, "dim", None)
        if dim is not None and Qa.shape[1] != dim:
            raise DimensionMismatchError(dim, Qa.shape[1], "query dimension (index dim)")
        check_size(Qa.shape[0], DEFAULT_MAX_KEYS, "number of queries")
        ranked = self._rank(Qa, k)
        t0 = time.perf_counter()
        out = self._results(*ranked, k=k)
        self.last_timings["results"] = time.perf_counter() - t0
        return out

    def _candidates(self, Q: np.ndarray, k: int):
        n_cand = max(self.candidates, k)
        ef = self.ef if self.ef is not None else max(int(getattr(self.index, "ef", n_cand)), n_cand)
        ids, dists = self.index.search(Q, n_cand, ef=ef)
        ids = np.asarray(ids)
        dists = np.asarray(dists, dtype=np.float64)
        if ids.ndim == 1:
            ids, dists = ids.reshape(1, -1), dists.reshape(1, -1)
        if hasattr(self.index, "to_similarity"):
            own = np.asarray(self.index.to_similarity(dists), dtype=np.float64)
        else:
            own = (1.0 - dists) if self.space in ("cosine", "ip") else -dists
        return ids, own

    def _rank(self, Q: np.ndarray, k: int):
        """Scores of every candidate of every query; returns what _results needs.

        Wall time of each stage goes to ``self.last_timings`` (seconds): ``index``,
        ``expand`` (graph expansion), ``score`` (scoring and ordering).
        """
        t0 = time.perf_counter()
        timings = {"index": 0.0, "expand": 0.0, "score": 0.0, "results": 0.0}
        self.last_timings = timings
        ids, own = self._candidates(Q, k)
        t1 = time.perf_counter()
        timings["index"] = t1 - t0
        B, C = ids.shape
        if C == 0:
            return ids, own, own, np.zeros((B, 0), np.int64), None
        flat = ids.reshape(-1)
        uniq, inverse = np.unique(flat, return_inverse=True)
        inverse = inverse.reshape(-1)
        if self.scorer == "vector":
            present = np.asarray(self.graph.contains(uniq), dtype=bool)
            order = np.tile(np.arange(C), (B, 1))
            info = {"present": present[inverse].reshape(B, C), "kind": "vector"}
            timings["expand"] = time.perf_counter() - t1
            return ids, own, own.copy(), order, info

        sg = self.graph.expand(uniq, hops=self.hops, direction=self.direction,
                               max_neighbors=self.max_neighbors, seed=self.seed)
        t2 = time.perf_counter()
        timings["expand"] = t2 - t1
        if sg.x.shape[0] and sg.x.shape[1] != Q.shape[1] and self.scorer not in _LAYER_SCORERS:
            raise DimensionMismatchError(Q.shape[1], sg.x.shape[1], "graph feature dimension (query dimension)")
        # map unique candidate -> seed position in the subgraph (-1: missing from the graph)
        seed_of = np.full(uniq.shape[0], -1, np.int64)
        if sg.missing:
            miss = set(sg.missing)
            present_u = np.fromiter((u not in miss for u in uniq.tolist()), dtype=bool, count=uniq.shape[0])
        else:
            present_u = np.ones(uniq.shape[0], dtype=bool)
        seed_of[present_u] = sg.seeds
        pair_seed = seed_of[inverse]                       # [B*C] seed position or -1
        present = pair_seed >= 0
        score = own.reshape(-1).copy()
        context = np.full(B * C, np.nan)
        info: dict = {"present": present.reshape(B, C), "sg": sg, "kind": self.scorer}
        if present.any():
            pq = np.repeat(np.arange(B, dtype=np.int64), C)[present]
            ps = pair_seed[present]
            pown = own.reshape(-1)[present]
            if self.scorer in ("attention", "hyperbolic"):
                s, ctx, expl = self._attention_scores(Q, sg, pq, ps, pown)
            else:
                s, ctx, expl = self._layer_scores(Q, sg, pq, ps, pown)
            score[present] = s
            context[present] = ctx
            info["explain"] = expl
            info["pair_index"] = np.cumsum(present) - 1   # flat pair -> present-pair index
        score = score.reshape(B, C)
        order = np.argsort(-score, axis=1, kind="stable")
        info["context"] = context.reshape(B, C)
        timings["score"] = time.perf_counter() - t2
        return ids, own, score, order, info

    # ------------------------------------------------------------------ scorers
    def _neighbourhoods(self, sg: Subgraph, centres: np.ndarray):
        n = sg.num_nodes
        src, dst = sg.edge_index[0], sg.edge_index[1]
        org = sg.edge_origin
        if org is not None:
            # exact: each edge leads from the node that traversed it to its other endpoint
            # (both ways when both endpoints traversed it)
            two = org < 0
            one = ~two
            a = np.concatenate([org[one], src[two], dst[two]])
            b = np.concatenate([np.where(org[one] == src[one], dst[one], src[one]), dst[two], src[two]])
        elif self.direction == "out":
            a, b = src, dst
        elif self.direction == "in":
            a, b = dst, src
        else:
            a, b = np.concatenate([src, dst]), np.concatenate([dst, src])
        indptr, indices, _ = build_csr(np.ascontiguousarray(a), np.ascontiguousarray(b), n)
        return neighbourhoods(indptr, indices, centres, self.hops)

    def _attention_scores(self, Q, sg, pq, ps, pown):
        # segments: one per distinct seed used by a pair
        centres, seg_of = np.unique(ps, return_inverse=True)
        seg_ptr, members, _ = self._neighbourhoods(sg, centres.astype(np.int64))
        X = sg.x
        dtype = np.result_type(Q.dtype, X.dtype)
        Qd = Q.astype(dtype, copy=False)
        Xd = X.astype(dtype, copy=False)
        metric = _metric(self.space)
        if self.space == "cosine":
            Qd = _unit_rows(Qd)
            if self.scorer != "attention":
                Xd = _unit_rows(Xd)
            # (the attention kernel divides by the norms itself: no normalised copy of X)
        qsq = np.einsum("ij,ij->i", Qd, Qd)
        xsq = np.einsum("ij,ij->i", Xd, Xd)
        seg_of = seg_of.astype(np.int64).reshape(-1)
        sizes = (seg_ptr[1:] - seg_ptr[:-1])[seg_of]
        out_ptr = np.zeros(sizes.shape[0] + 1, np.int64)
        np.cumsum(sizes, out=out_ptr[1:])
        pown_d = pown.astype(dtype)
        if self.scorer == "attention":
            s, ctx, w = neighbourhood_attention(Qd, Xd, qsq, xsq, pq, seg_of, pown_d, seg_ptr, members,
                                                self.temperature, self.blend, _context_metric(self.space),
                                                out_ptr)
        else:
            s, ctx, w = self._hyperbolic(Qd, Xd, qsq, xsq, pq, seg_of, seg_ptr, members, out_ptr, pown_d, metric)
        return s, ctx, (w, out_ptr, seg_of, seg_ptr, members)

    def _hyperbolic(self, Qd, Xd, qsq, xsq, pq, seg_of, seg_ptr, members, out_ptr, pown, metric):
        from ..manifold.poincare import PoincareBall

        ball = PoincareBall(c=self.curvature)
        # entry t of pair p: member j = members[seg_ptr[seg_of[p]] + (t - out_ptr[p])]
        P = pq.shape[0]
        counts = out_ptr[1:] - out_ptr[:-1]
        pair_of = np.repeat(np.arange(P, dtype=np.int64), counts)
        offs = np.arange(out_ptr[-1], dtype=np.int64) - out_ptr[pair_of]
        mem = members[seg_ptr[seg_of[pair_of]] + offs]
        qb = pq[pair_of]
        # per pair, scale the query and the neighbourhood by one common factor so the largest of
        # them lands at HYPERBOLIC_RADIUS of the ball radius 1 / sqrt(c) (expmap0 maps tangent
        # norm t to ball norm tanh(sqrt(c) t) / sqrt(c)); per pair, so batch == single
        t = np.arctanh(HYPERBOLIC_RADIUS) / np.sqrt(self.curvature)
        nx_ = np.sqrt(np.maximum(xsq, 0.0))[mem]
        seg_max = np.maximum.reduceat(nx_, out_ptr[:-1]) if nx_.size else np.zeros(P)
        pair_scale = np.maximum(np.maximum(seg_max, np.sqrt(np.maximum(qsq, 0.0))[pq]), 1e-12)
        f = (t / pair_scale)[pair_of].astype(Qd.dtype)[:, None]
        uq = ball.expmap0(Qd[qb] * f)
        ux = ball.expmap0(Xd[mem] * f)
        d = np.asarray(ball.dist(uq, ux), dtype=Qd.dtype).reshape(-1)
        # -d^2 / T as GeometricAttention (attention/geometric.py, seed section 2.3)
        w, _ = segment_softmax_pool(np.ascontiguousarray(-(d * d) / self.temperature), np.zeros_like(d), out_ptr)
        s, ctx = pooled_context(Qd, Xd, qsq, pq, mem, w, out_ptr, pown, self.blend, _context_metric(self.space))
        return s, ctx, w

    def _layer_scores(self, Q, sg, pq, ps, pown):
        layer = self.layer
        ea = sg.edge_attr
        weights = None
        eidx = sg.edge_index
        if self.direction == "both" and eidx.shape[1]:
            # "both" treats the graph as undirected: the layer sees every traversed edge in
            # both orientations (each (source, target) pair once), like PyG's to_undirected
            both = np.concatenate([eidx, eidx[::-1]], axis=1)
            key = both[0] * np.int64(sg.num_nodes) + both[1]
            _, first = np.unique(key, return_index=True)
            eidx = np.ascontiguousarray(both[:, first])
            if ea is not None:
                ea = np.ascontiguousarray(np.concatenate([ea, ea], axis=0)[first])
        try:
            if self.scorer == "gat":
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
        if self.space == "cosine":
            Qd, Hd = _unit_rows(Qd), _unit_rows(Hd)
        qsq = np.einsum("ij,ij->i", Qd, Qd)
        hsq = np.einsum("ij,ij->i", Hd, Hd)
        sim = pair_similarity(Qd, Hd, qsq, hsq, pq, ps.astype(np.int64), _metric(self.space))
        s = (1.0 - self.blend) * pown.astype(dtype) + self.blend * sim
        # explanation: aggregation weights of edges into each centre
        eidx = np.asarray(eidx, dtype=np.int64)
        if weights is None:
            deg = np.bincount(eidx[1], minlength=sg.num_nodes).astype(np.float64)
            if self.scorer == "gin":
                eps = float(np.asarray(getattr(getattr(layer, "eps", 0.0), "data", getattr(layer, "eps", 0.0))).reshape(-1)[0])
                weights = 1.0 / (1.0 + eps + deg[eidx[1]])
            else:
                weights = 1.0 / np.maximum(deg[eidx[1]], 1.0)
        indptr, nbr, order = build_csr(np.ascontiguousarray(eidx[1]), np.ascontiguousarray(eidx[0]), sg.num_nodes)
        return s, sim, ("layer", indptr, nbr, np.asarray(weights, dtype=np.float64)[order], ps)

    # ------------------------------------------------------------------ results
    def _results(self, ids, own, score, order, info, k: int) -> list[list[RankedNeighbour]]:
        B = ids.shape[0]
        k_eff = min(k, order.shape[1])
        out: list[list[RankedNeighbour]] = []
        if info is None:
            return [[] for _ in range(B)]
        present = info["present"]
        sg = info.get("sg")
        expl = info.get("explain")
        node_ids = sg.node_ids if sg is not None else None
        C = ids.shape[1]
        for b in range(B):
            row = []
            for r, c in enumerate(order[b, :k_eff].tolist()):
                att: dict = {}
                ctx = None
                if sg is not None and present[b, c] and expl is not None:
                    p = int(info["pair_index"][b * C + c])
                    ctx = float(info["context"][b, c])
                    if isinstance(expl[0], str):
                        _, indptr, nbr, w, ps = expl
                        centre = int(ps[p])
                        lo, hi = indptr[centre], indptr[centre + 1]
                        for j, wt in zip(nbr[lo:hi].tolist(), w[lo:hi].tolist()):
                            key = node_ids[j]
                            att[key] = att.get(key, 0.0) + wt
                    else:
                        w, out_ptr, seg_of, seg_ptr, members = expl
                        s0 = seg_ptr[seg_of[p]]
                        lo, hi = out_ptr[p], out_ptr[p + 1]
                        att = dict(zip([node_ids[j] for j in members[s0:s0 + (hi - lo)].tolist()],
                                       w[lo:hi].tolist()))
                row.append(RankedNeighbour(
                    id=ids[b, c].item() if hasattr(ids[b, c], "item") else ids[b, c],
                    score=float(score[b, c]), vector_score=float(own[b, c]), rank=r,
                    attention=att, in_graph=bool(present[b, c]), vector_rank=int(c),
                    context_score=ctx))
            out.append(row)
        return out

    def rerank_arrays(self, Q: Any, k: int = 10):
        """Array form of :meth:`search_batch`: ``(ids [B, k], scores [B, k])`` without
        building result objects (used by the benchmarks)."""
        Qa = as_float_array(Q, "queries", ndim=2)
        k = check_positive_int(k, "k")
        ids, own, score, order, info = self._rank(Qa, k)
        kk = min(k, order.shape[1])
        sel = order[:, :kk]
        return np.take_along_axis(ids, sel, 1), np.take_along_axis(score, sel, 1)

    # ------------------------------------------------------------------ embeddings
    def embed_subgraph(self, node_ids: Sequence[Hashable], method: str = "attention",
                       query: Any = None, hops: Optional[int] = None) -> np.ndarray:
        """One vector for the subgraph around ``node_ids`` (within ``hops``, default the
        reranker's).

        ``method``: ``"attention"`` -- ``a_j = softmax_j(sim(m, x_j) / T)``, ``sum_j a_j x_j``
        with ``m`` the ``query`` if given, else the mean feature of ``node_ids``;
        ``"mean"``, ``"sum"``, ``"max"`` -- plain readouts over the subgraph's nodes.
        Ids not in the graph raise :class:`UnknownIdError`.
        """
        if method not in ("attention", "mean", "sum", "max"):
            raise InvalidInputError(f"method must be 'attention', 'mean', 'sum' or 'max', got {method!r}")
        if isinstance(node_ids, (str, bytes)) or not hasattr(node_ids, "__len__"):
            raise InvalidInputError("node_ids must be a sequence of node ids")
        if len(node_ids) == 0:
            raise InvalidInputError("node_ids is empty; expected at least one node id")
        h = self.hops if hops is None else check_hops(hops)
        sg = self.graph.expand(node_ids, hops=h, direction=self.direction,
                               max_neighbors=self.max_neighbors, seed=self.seed)
        if sg.missing:
            raise UnknownIdError(sg.missing, "graph")
        X = sg.x
        if method == "mean":
            return X.mean(axis=0)
        if method == "sum":
            return X.sum(axis=0)
        if method == "max":
            return X.max(axis=0)
        if query is None:
            m = X[sg.seeds].mean(axis=0)
        else:
            m = as_float_array(query, "query", ndim=1)
            if m.shape[0] != X.shape[1]:
                raise DimensionMismatchError(X.shape[1], m.shape[0], "query dimension")
        dtype = np.result_type(m.dtype, X.dtype)
        m = m.astype(dtype)
        Xd = X.astype(dtype, copy=False)
        if self.space == "cosine":
            mn = m / max(float(np.linalg.norm(m)), 1e-12)
            sims = _unit_rows(Xd) @ mn
        elif self.space == "ip":
            sims = Xd @ m
        else:
            sims = -((Xd - m) ** 2).sum(axis=1)
        z = sims / self.temperature
        z = np.exp(z - z.max())
        a = z / z.sum()
        return (a[:, None] * Xd).sum(axis=0).astype(dtype)
