"""The fused re-ranking path for array-snapshot graphs (used by :class:`GraphReranker` on its own).

When the graph is a :class:`~ruvector_graph_attn.connectors.NetworkXGraph` or a
:class:`~ruvector_graph_attn.connectors.neo4j.Neo4jProjection` (their ``expand`` not
overridden by a subclass) and the radius is 0 or 1, two scorers skip the subgraph: exactly
:class:`~ruvector_graph_attn.rerank.vote.VoteScorer` (its voters' neighbours are read from the
snapshot CSR by one Numba kernel, then the vote is scored as on the general path) and exactly
:class:`AttentionScorer` with the default ``context="pooled"``, whose
expansion and scoring of every (query, candidate) pair run as one Numba kernel
(:func:`~ruvector_graph_attn.kernels.rerank.snapshot_attention`) on the snapshot's arrays: the
neighbourhood of each candidate is read from the snapshot CSR, the feature rows are read in
place (no subgraph, no gathered feature copy). The equations, the neighbourhoods (the
candidate, then its neighbours in ``direction``, capped by ``max_neighbors`` with the
expansion's own sample) and the explanations are those of the general path; only the
summation order inside a neighbourhood can differ, so scores agree to float rounding.
Anything else -- other scorers (including subclasses), larger radii, other graph sources --
takes the general path (``GraphSource.expand`` + ``scorer.score``).
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Optional

import numpy as np

from ..connectors.networkx import NetworkXGraph, snapshot_positions
from ..kernels.rerank import graph_candidate_rows, snapshot_attention, snapshot_vote_terms
from ..errors import InvalidInputError
from ..validation import DEFAULT_MAX_KEYS
from .explanations import AttentionExplanation, VoteExplanation
from .results import RankedNeighbour
from .scorers import AttentionScorer, _context_metric, _unit_rows, pair_similarity_rows
from .vote import VoteScorer, mapped_queries, vote_scores, with_own_terms

__all__ = ["ENABLED", "snapshot_of", "applies", "applies_vote", "rank", "results", "graph_candidates"]

#: set to ``False`` to send every call down the general path (for comparisons)
ENABLED = True

_PROJECTION_MODULE = "ruvector_graph_attn.connectors.neo4j.projection"


def snapshot_of(graph: Any) -> Optional[Any]:
    """The current array snapshot of ``graph`` when its expansion is the snapshot expansion
    (``NetworkXGraph.expand`` or ``Neo4jProjection.expand``), else ``None``. Errors taking
    the snapshot (an empty graph, ...) also give ``None``: the general path reports them."""
    if not isinstance(graph, NetworkXGraph):
        return None
    expand = type(graph).expand
    if expand is not NetworkXGraph.expand:
        mod = sys.modules.get(_PROJECTION_MODULE)
        proj = getattr(mod, "Neo4jProjection", None) if mod is not None else None
        if proj is None or expand is not proj.expand:
            return None
    try:
        return graph._snapshot()
    except Exception:  # noqa: BLE001 - the general path raises the same error with its message
        return None


def applies(reranker: Any) -> bool:
    """Whether ``reranker``'s scorer and radius are ones the fused attention path computes."""
    return (ENABLED and type(reranker.scorer) is AttentionScorer and reranker.hops <= 1
            and getattr(reranker.scorer, "context", "pooled") == "pooled")


def applies_vote(reranker: Any) -> bool:
    """Whether the snapshot vote path computes ``reranker``'s scorer: exactly
    :class:`~ruvector_graph_attn.rerank.vote.VoteScorer` at a radius of 0 or 1."""
    return ENABLED and type(reranker.scorer) is VoteScorer and reranker.hops <= 1


_EMPTY = np.empty(0, np.int64)
_IDENTITY = np.full(1, -2, np.int64)


def _squared_norms(reranker: Any, snap: Any, dtype: Any) -> np.ndarray:
    """``[N]`` squared norms of the snapshot's feature rows in ``dtype``, computed once per
    snapshot (kept on the re-ranker until the snapshot changes)."""
    state = reranker.__dict__.get("_fast_norms")
    if state is not None and state[0] is snap and state[1] == dtype:
        return state[2]
    X = snap.x
    xsq = np.empty(X.shape[0], dtype)
    for lo in range(0, X.shape[0], 65536):  # in blocks: no full-size float64 copy
        blk = X[lo:lo + 65536].astype(dtype, copy=False)
        xsq[lo:lo + blk.shape[0]] = np.einsum("ij,ij->i", blk, blk)
    reranker.__dict__["_fast_norms"] = (snap, dtype, xsq)
    return xsq


def _positions(reranker: Any, snap: Any, flat: np.ndarray) -> np.ndarray:
    """Snapshot positions of the flat ids (-1: not in the graph)."""
    if snap.int_sorted is not None and flat.dtype == np.int64:
        lut = _id_table(reranker, snap)
        if lut is _IDENTITY:
            return np.where((flat >= 0) & (flat < snap.num_nodes), flat, -1)
        if lut.size:
            ok = (flat >= 0) & (flat < lut.size)
            return np.where(ok, lut[np.where(ok, flat, 0)], -1)
    return snapshot_positions(snap, flat)


def graph_candidates(reranker: Any, Q: np.ndarray, ids: np.ndarray, own: np.ndarray,
                     valid: Optional[np.ndarray], filter: Any):
    """``GraphReranker._add_graph_candidates`` on the snapshot arrays (the same candidates in
    the same columns, the same vector scores), or ``None`` when the graph is not a snapshot
    source."""
    if not ENABLED:
        return None
    snap = snapshot_of(reranker.graph)
    if snap is None or ids.size > DEFAULT_MAX_KEYS:
        return None
    m = reranker.graph_candidates
    B, C = ids.shape
    pos = _positions(reranker, snap, ids.reshape(-1))
    flat_valid = np.ones(B * C, dtype=bool) if valid is None else np.ascontiguousarray(valid.reshape(-1))
    top = ids[:, :m] if valid is None else ids[:, :m][valid[:, :m]]
    if top.size == 0:
        return ids, own, valid
    d = reranker.graph_candidate_direction
    indptr, nbr, _, _ = snap.csr[d]
    cap = -1 if reranker.max_neighbors is None else int(reranker.max_neighbors)
    row_ptr, extra = graph_candidate_rows(pos, flat_valid, B, C, m, indptr, nbr, snap.keys, cap, reranker.seed)
    if extra.size == 0:
        return ids, own, valid
    node_ids = snap.node_arr if snap.node_int is None else snap.node_int
    rows = [node_ids[extra[row_ptr[b]:row_ptr[b + 1]]].tolist() for b in range(B)]

    def scores(pad, vext):
        return pair_similarity_rows(Q, snap.x[_positions(reranker, snap, pad[vext])], np.nonzero(vext)[0],
                                    reranker.space)

    return reranker._append_candidates(Q, ids, own, valid, rows, filter, scores)


def _id_table(reranker: Any, snap: Any) -> np.ndarray:
    """A dense integer id -> position table (-1: no node) when the snapshot's integer ids
    lie in ``[0, 2 N + 1024)`` (ids numbered from 0, the usual case), else empty (a binary
    search then); computed once per snapshot."""
    state = reranker.__dict__.get("_fast_ids")
    if state is not None and state[0] is snap:
        return state[1]
    ints = snap.int_sorted
    lut = _EMPTY
    if ints.size and ints[0] == 0 and ints[-1] == ints.size - 1 and \
            np.array_equal(snap.int_order, np.arange(ints.size)):
        lut = _IDENTITY                    # node i has id i: no table to read
    elif ints.size and ints[0] >= 0 and ints[-1] < 2 * ints.size + 1024:
        lut = np.full(int(ints[-1]) + 1, -1, np.int64)
        lut[ints] = snap.int_order
    reranker.__dict__["_fast_ids"] = (snap, lut)
    return lut


def rank(reranker: Any, Q: np.ndarray, ids: np.ndarray, own: np.ndarray, valid: Optional[np.ndarray],
         timings: dict, t_start: float):
    """``GraphReranker._rank`` on the fused kernel, or ``None`` when it does not apply."""
    if ids.size > DEFAULT_MAX_KEYS:
        return None
    if applies_vote(reranker):
        return _vote_rank(reranker, Q, ids, own, valid, timings, t_start)
    if not applies(reranker):
        return None
    snap = snapshot_of(reranker.graph)
    if snap is None or snap.dim != Q.shape[1]:
        return None
    B, C = ids.shape
    indptr, nbr, _, _ = snap.csr[reranker.direction]
    flat = ids.reshape(-1)
    lut = _EMPTY
    if snap.int_sorted is not None and flat.dtype == np.int64:
        cand, int_sorted, int_order = flat, snap.int_sorted, snap.int_order
        lut = _id_table(reranker, snap)
    else:
        cand, int_sorted, int_order = snapshot_positions(snap, flat), _EMPTY, _EMPTY
    flat_valid = np.ones(B * C, dtype=bool) if valid is None else np.ascontiguousarray(valid.reshape(-1))
    scorer = reranker.scorer
    space = reranker.space
    X = snap.x
    dtype = np.result_type(Q.dtype, X.dtype)
    xsq = _squared_norms(reranker, snap, dtype)
    Qd = Q.astype(dtype, copy=False)
    if space == "cosine":
        Qd = _unit_rows(Qd)
    qsq = np.einsum("ij,ij->i", Qd, Qd)
    cap = -1 if reranker.max_neighbors is None else int(reranker.max_neighbors)
    t2 = time.perf_counter()
    timings["expand"] = t2 - t_start
    pair_index, pair_flat, s, ctx, entry_ptr, entry_node, w = snapshot_attention(
        np.ascontiguousarray(Qd), X, qsq, xsq, cand, flat_valid, own.reshape(-1), C, lut, int_sorted, int_order,
        indptr, nbr, snap.keys, reranker.hops, cap, reranker.seed, scorer.temperature, scorer.blend,
        _context_metric(space))
    present = pair_index >= 0
    score = own.astype(np.float64, copy=True)
    context = None
    fast = expl = None
    if pair_flat.shape[0]:
        if not np.isfinite(s).all():
            raise InvalidInputError(f"scorer {reranker.scorer_name!r} returned NaN or Inf scores")
        score.reshape(-1)[pair_flat] = s
        context = np.full(B * C, np.nan)
        context[pair_flat] = ctx
        context = context.reshape(B, C)
        fast = (snap, pair_index, entry_ptr, entry_node, w)
        expl = AttentionExplanation(snap.nodes, pair_index, C, entry_ptr, w, entry_node=entry_node)
    order = np.argsort(-score, axis=1, kind="stable")
    info = {"present": present.reshape(B, C), "explain": expl, "context": context,
            "graph_used": True, "fast": fast}
    timings["score"] = time.perf_counter() - t2
    return ids, own, score, order, info, valid


def _vote_rank(reranker: Any, Q: np.ndarray, ids: np.ndarray, own: np.ndarray, valid: Optional[np.ndarray],
               timings: dict, t_start: float):
    """The neighbour vote on the snapshot arrays: each row's voters' neighbours are read from
    the snapshot CSR (with the expansion's sample), no subgraph is built; the terms, scores and
    explanation are those of :meth:`VoteScorer.score` on the general path."""
    snap = snapshot_of(reranker.graph)
    scorer = reranker.scorer
    qm = scorer.query_map
    if snap is None or snap.dim != Q.shape[1] or (qm is not None and (qm.in_features != Q.shape[1]
                                                                      or qm.out_features != snap.dim)):
        return None           # (the general path reports a dimension mismatch with its message)
    B, C = ids.shape
    pos = _positions(reranker, snap, ids.reshape(-1))
    flat_valid = np.ones(B * C, dtype=bool) if valid is None else np.ascontiguousarray(valid.reshape(-1))
    indptr, nbr, _, _ = snap.csr[reranker.direction]
    cap = 0 if reranker.hops == 0 else (-1 if reranker.max_neighbors is None else int(reranker.max_neighbors))
    own_flat = np.ascontiguousarray(own.reshape(-1), dtype=np.float64)
    t2 = time.perf_counter()
    timings["expand"] = t2 - t_start
    pair_index, pair_flat, tgt, src = snapshot_vote_terms(pos, flat_valid, own_flat, B, C, scorer.voters, indptr,
                                                          nbr, snap.keys, cap, reranker.seed, snap.num_nodes)
    P = pair_flat.shape[0]
    own_p = own_flat[pair_flat]
    if qm is None:
        sim = own_p
    else:
        sim = pair_similarity_rows(mapped_queries(qm, Q), snap.x[pos[pair_flat]], pair_flat // C, reranker.space)
    t_all, s_all = with_own_terms(P, tgt, src)
    s, _, share = vote_scores(sim, t_all, s_all, scorer.temperature)
    total = (1.0 - scorer.blend) * own_p + scorer.blend * s
    if not np.isfinite(total).all():
        raise InvalidInputError(f"scorer {reranker.scorer_name!r} returned NaN or Inf scores")
    score = own.astype(np.float64, copy=True)
    score.reshape(-1)[pair_flat] = total
    context = None
    fast = expl = None
    if P:
        context = np.full(B * C, np.nan)
        context[pair_flat] = s
        context = context.reshape(B, C)
        entry_ptr = np.searchsorted(t_all, np.arange(P + 1)).astype(np.int64)
        entry_node = pos[pair_flat][s_all]
        fast = (snap, pair_index, entry_ptr, entry_node, share)
        expl = VoteExplanation(snap.nodes, pair_index, C, entry_ptr, share, entry_node=entry_node)
    order = np.argsort(-score, axis=1, kind="stable")
    info = {"present": (pair_index >= 0).reshape(B, C), "explain": expl, "context": context,
            "graph_used": True, "fast": fast}
    timings["score"] = time.perf_counter() - t2
    return ids, own, score, order, info, valid


def results(ids: np.ndarray, own: np.ndarray, score: np.ndarray, order: np.ndarray, info: dict,
            valid: Optional[np.ndarray], k: int) -> list:
    """``GraphReranker._results`` for a fused call: the same hits, built without per-hit
    explanation calls (one gather of every returned hit's weights per query)."""
    B, C = ids.shape
    present = info["present"]
    context = info["context"]
    fast = info["fast"]
    if fast is not None:
        snap, pair_index, entry_ptr, entry_node, w = fast
        node_ids = snap.node_arr if snap.node_int is None else snap.node_int
    counts = None if valid is None else valid.sum(axis=1)
    make = _make_hit
    out = []
    for b in range(B):
        top = order[b, :min(k, C if counts is None else int(counts[b]))]
        id_row = ids[b, top].tolist()
        score_row = score[b, top].tolist()
        own_row = own[b, top].astype(np.float64, copy=False).tolist()
        present_row = present[b, top].tolist()
        ctx_row = None if context is None else context[b, top].tolist()
        atts = None
        if fast is not None:
            p = pair_index[b * C + top]
            p = p[p >= 0]
            lo = entry_ptr[p]
            n = entry_ptr[p + 1] - lo
            cum = np.zeros(n.shape[0] + 1, np.int64)
            np.cumsum(n, out=cum[1:])
            idx = np.repeat(lo - cum[:-1], n) + np.arange(cum[-1], dtype=np.int64)
            keys = node_ids[entry_node[idx]].tolist()
            vals = w[idx].tolist()
            bounds = cum.tolist()
            atts = iter([dict(zip(keys[bounds[t]:bounds[t + 1]], vals[bounds[t]:bounds[t + 1]]))
                         for t in range(len(bounds) - 1)])
        row = []
        for r, c in enumerate(top.tolist()):
            att: dict = {}
            ctx = None
            if present_row[r]:
                if atts is not None:
                    att = next(atts)
                if ctx_row is not None and not math.isnan(ctx_row[r]):
                    ctx = ctx_row[r]
            row.append(make(id_row[r], score_row[r], own_row[r], r, att, present_row[r], c, ctx))
        out.append(row)
    return out


def _make_hit(id, score, vector_score, rank, attention, in_graph, vector_rank, context_score):
    """A :class:`RankedNeighbour` (what its ``__init__`` stores, without the frozen-dataclass
    per-field ``object.__setattr__`` calls)."""
    hit = _new(RankedNeighbour)
    hit.__dict__.update(id=id, score=score, vector_score=vector_score, rank=rank, attention=attention,
                        in_graph=in_graph, vector_rank=vector_rank, context_score=context_score)
    return hit


_new = object.__new__
if "__slots__" in RankedNeighbour.__dict__ or \
        tuple(RankedNeighbour.__dataclass_fields__) != ("id", "score", "vector_score", "rank", "attention",
                                                        "in_graph", "vector_rank", "context_score"):
    def _make_hit(id, score, vector_score, rank, attention, in_graph, vector_rank, context_score):  # noqa: F811
        return RankedNeighbour(id=id, score=score, vector_score=vector_score, rank=rank, attention=attention,
                               in_graph=in_graph, vector_rank=vector_rank, context_score=context_score)
