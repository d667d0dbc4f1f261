"""Numba kernels of the re-ranking pipeline: segment-softmax neighbourhood attention, pooled
context and pair similarities.

Plain functions on arrays; no classes, no I/O. Positions are dense int64 indices. The graph
primitives they build on live in ``csr.py`` (CSR), ``bfs.py`` (neighbourhoods, expansion),
``segment.py`` (segment softmax), ``hashing.py`` and ``threads.py``; the old names
(``build_csr``, ``neighbourhoods``, ``csr_expand``, ``pair_hash``, ``splitmix64``) are
re-exported here.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bfs import csr_expand, neighbourhoods  # noqa: F401  (re-exported: old import path)
from .csr import csr_of_pairs
from .hashing import pair_hash, splitmix64  # noqa: F401  (re-exported: old import path)
from .segment import softmax_segment
from .threads import compile_twice, pick

@njit(inline="always")
def _context_score(Q, b, h, qsq, own_p, blend, metric):
    """``context = sim(Q[b], h)`` for the pooled vector ``h`` (metric as in
    neighbourhood_attention) and ``score = (1 - blend) * own_p + blend * context``."""
    dot = 0.0
    hh = 0.0
    for d in range(Q.shape[1]):
        dot += Q[b, d] * h[d]
        hh += h[d] * h[d]
    if metric == 1:
        ctx = -(qsq[b] - 2.0 * dot + hh)
    elif metric == 2:
        ctx = dot / np.sqrt(hh) if hh > 0.0 else 0.0
    else:
        ctx = dot
    return ctx, (1.0 - blend) * own_p + blend * ctx


#: the CSR of directed pairs (``kernels.csr.csr_of_pairs``) under its old name
build_csr = csr_of_pairs


@njit(cache=True, fastmath=True)
def _attend_pair(p, Q, X, qsq, xsq, pair_query, pair_seg, own, seg_ptr, members,
                 temperature, blend, metric, out_ptr, score, context, weights):
    D = Q.shape[1]
    b = pair_query[p]
    s = pair_seg[p]
    lo = seg_ptr[s]
    hi = seg_ptr[s + 1]
    o = out_ptr[p]
    for t in range(hi - lo):
        j = members[lo + t]
        acc = Q.dtype.type(0.0)
        for d in range(D):
            acc += Q[b, d] * X[j, d]
        if metric == 1:
            acc = -(qsq[b] - 2.0 * acc + xsq[j])
        elif metric == 2:
            acc = acc / np.sqrt(xsq[j]) if xsq[j] > 0.0 else 0.0
        weights[o + t] = acc
    softmax_segment(weights, weights, o, o + hi - lo, members, True, 1.0 / temperature)
    h = np.zeros(D, Q.dtype)
    for t in range(hi - lo):
        a = weights[o + t]
        j = members[lo + t]
        if metric == 2:  # pool unit vectors
            a = a / np.sqrt(xsq[j]) if xsq[j] > 0.0 else 0.0
        for d in range(D):
            h[d] += a * X[j, d]
    context[p], score[p] = _context_score(Q, b, h, qsq, own[p], blend, metric)


def _attend_all(Q, X, qsq, xsq, pair_query, pair_seg, own, seg_ptr, members,
                temperature, blend, metric, out_ptr, score, context, weights):
    for p in prange(pair_query.shape[0]):
        _attend_pair(p, Q, X, qsq, xsq, pair_query, pair_seg, own, seg_ptr, members,
                     temperature, blend, metric, out_ptr, score, context, weights)


_attend_parallel, _attend_serial = compile_twice(_attend_all, cache=True, fastmath=True)

#: below this many multiply-adds a kernel runs on one thread (thread start-up costs more)
PARALLEL_MIN_WORK = 2_000_000


def neighbourhood_attention(Q, X, qsq, xsq, pair_query, pair_seg, own, seg_ptr, members,
                            temperature, blend, metric, out_ptr):
    """Query-conditioned attention of every (query, candidate) pair over the candidate's
    neighbourhood (segment softmax), pooled into a context vector.

    For pair ``p`` with query ``q = Q[pair_query[p]]`` and neighbourhood segment
    ``j in members[seg_ptr[s]:seg_ptr[s+1]]`` (``s = pair_seg[p]``):
    ``s_j = sim(q, X[j])``, ``a_j = softmax_j(s_j / temperature)``,
    ``h = sum_j a_j X[j]``, ``context = sim(q, h)`` and
    ``score = (1 - blend) * own[p] + blend * context``.
    ``sim`` by ``metric``: 0 dot product (``ip``); 2 cosine (rows of ``Q`` must be unit
    vectors, ``X`` rows are divided by ``sqrt(xsq)``, so ``h`` pools unit vectors and is
    renormalised); 1 negative squared distance ``-||q - x||^2`` (``qsq``/``xsq`` hold the
    squared norms).

    Returns ``(score [P], context [P], weights [out_ptr[-1]])``; the weights of pair ``p``
    sit at ``out_ptr[p]:out_ptr[p+1]`` in segment order. Runs on all Numba threads when
    the work (entries x D) exceeds ``PARALLEL_MIN_WORK``, else on one.
    """
    P = pair_query.shape[0]
    score = np.empty(P, Q.dtype)
    context = np.empty(P, Q.dtype)
    weights = np.empty(int(out_ptr[P]), Q.dtype)
    fn = pick(_attend_parallel, _attend_serial, int(out_ptr[P]) * Q.shape[1] * 2, PARALLEL_MIN_WORK)
    fn(Q, X, qsq, xsq, pair_query, pair_seg, own, seg_ptr, members, float(temperature), float(blend),
       int(metric), out_ptr, score, context, weights)
    return score, context, weights


@njit(cache=True, parallel=True)
def pooled_context(Q, X, qsq, pair_query, entry_member, weights, out_ptr, own, blend, metric):
    """``h_p = sum_t weights[t] X[entry_member[t]]`` over ``t in out_ptr[p]:out_ptr[p+1]``,
    ``context_p = sim(Q[pair_query[p]], h_p)`` (metric as in neighbourhood_attention) and
    ``score_p = (1 - blend) own[p] + blend context_p``. Returns ``(score, context)``."""
    P = pair_query.shape[0]
    D = Q.shape[1]
    score = np.empty(P, Q.dtype)
    context = np.empty(P, Q.dtype)
    for p in prange(P):
        b = pair_query[p]
        h = np.zeros(D, np.float64)
        for t in range(out_ptr[p], out_ptr[p + 1]):
            j = entry_member[t]
            a = weights[t]
            for d in range(D):
                h[d] += a * X[j, d]
        context[p], score[p] = _context_score(Q, b, h, qsq, own[p], blend, metric)
    return score, context


@njit(cache=True, parallel=True)
def pair_similarity(Q, H, qsq, hsq, pair_query, pair_node, metric):
    """``sim(Q[pair_query[p]], H[pair_node[p]])`` per pair (metric as in neighbourhood_attention)."""
    P = pair_query.shape[0]
    D = Q.shape[1]
    out = np.empty(P, Q.dtype)
    for p in prange(P):
        b = pair_query[p]
        j = pair_node[p]
        acc = 0.0
        for d in range(D):
            acc += Q[b, d] * H[j, d]
        if metric == 1:
            acc = -(qsq[b] - 2.0 * acc + hsq[j])
        out[p] = acc
    return out


@njit(cache=True, parallel=True)
def segment_softmax_pool(logits, values, ptr):
    """Per segment ``ptr[p]:ptr[p+1]``: ``a = softmax(logits)`` and ``sum a * values``.

    Returns ``(weights [len(logits)], pooled [P])``; an empty segment pools to 0.
    """
    P = ptr.shape[0] - 1
    weights = np.empty(logits.shape[0], values.dtype)
    pooled = np.zeros(P, values.dtype)
    for p in prange(P):
        softmax_segment(logits, weights, ptr[p], ptr[p + 1], ptr, True, 1.0)
        acc = 0.0
        for t in range(ptr[p], ptr[p + 1]):
            acc += weights[t] * values[t]
        pooled[p] = acc
    return weights, pooled
