"""Numba kernels of the re-ranking pipeline: CSR frontier expansion, per-candidate
neighbourhoods and segment-softmax neighbourhood attention.

Plain functions on arrays; no classes, no I/O. Positions are dense int64 indices.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .hashing import pair_hash, splitmix64  # noqa: F401  (re-exported: old import path)
from .threads import compile_twice, pick

@njit(inline="always")
def _grown(arr, count, size):
    """A new array of length ``size`` holding ``arr[:count]`` (growth of a scratch buffer)."""
    out = np.empty(size, arr.dtype)
    out[:count] = arr[:count]
    return out


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


@njit(cache=True)
def csr_expand(indptr, nbr, e_fwd, e_bwd, seeds, hops, cap, salt, local, node_key):
    """Breadth-first frontier expansion over a CSR adjacency.

    ``indptr``/``nbr`` list each node's distinct neighbours in the expansion direction;
    ``e_fwd[k]`` is the id of the graph edge ``u -> nbr[k]`` (or -1) and ``e_bwd[k]`` the id
    of ``nbr[k] -> u`` (or -1), so traversed edges are emitted in the graph's orientation.
    ``seeds`` are global positions (distinct). ``local`` is a scratch array of length
    ``num_nodes`` filled with -1; it is used for global -> local positions and restored to
    all -1 before returning (so callers can keep and reuse it). A node reached at hop ``h < hops`` is
    expanded; when it has more than ``cap`` neighbours (``cap < 0``: no cap) the ``cap``
    neighbours with the smallest ``pair_hash(salt, node_key[u], node_key[v])`` are kept
    (``node_key``: an int64 key per node derived from its database id), so the sample of a
    node depends only on (salt, node) and never on the other seeds.

    Returns ``(nodes, hop, src, dst, eid, org)``: global positions in discovery order
    (seeds first), the hop at which each was reached, and the traversed edges as *local*
    positions into ``nodes`` with their graph edge ids and the local position of the node
    whose expansion traversed them (may contain duplicates when two expanded nodes
    sampled each other; the caller merges them).
    """
    n_seeds = seeds.shape[0]
    size = max(16, n_seeds * 4)
    nodes = np.empty(size, np.int64)
    hop = np.empty(size, np.int64)
    count = 0
    for i in range(n_seeds):
        s = seeds[i]
        if local[s] < 0:
            local[s] = count
            nodes[count] = s
            hop[count] = 0
            count += 1
    esize = max(16, n_seeds * 8)
    src = np.empty(esize, np.int64)
    dst = np.empty(esize, np.int64)
    eid = np.empty(esize, np.int64)
    org = np.empty(esize, np.int64)
    ecount = 0
    start = 0
    for h in range(hops):
        stop = count
        if start == stop:
            break
        for f in range(start, stop):
            u = nodes[f]
            lo = indptr[u]
            hi = indptr[u + 1]
            deg = hi - lo
            if cap >= 0 and deg > cap:
                keys = np.empty(deg, np.uint64)
                for k in range(deg):
                    keys[k] = pair_hash(salt, node_key[u], node_key[nbr[lo + k]])
                order = np.argsort(keys)[:cap]
                picks = np.sort(order) + lo
            else:
                picks = np.arange(lo, hi)
            for t in range(picks.shape[0]):
                k = picks[t]
                v = nbr[k]
                lv = local[v]
                if lv < 0:
                    if count == size:
                        size *= 2
                        nodes = _grown(nodes, count, size)
                        hop = _grown(hop, count, size)
                    lv = count
                    local[v] = lv
                    nodes[count] = v
                    hop[count] = h + 1
                    count += 1
                if ecount + 2 > esize:
                    esize *= 2
                    src = _grown(src, ecount, esize)
                    dst = _grown(dst, ecount, esize)
                    eid = _grown(eid, ecount, esize)
                    org = _grown(org, ecount, esize)
                lu = f
                if e_fwd[k] >= 0:
                    src[ecount] = lu
                    dst[ecount] = lv
                    eid[ecount] = e_fwd[k]
                    org[ecount] = lu
                    ecount += 1
                if e_bwd[k] >= 0:
                    src[ecount] = lv
                    dst[ecount] = lu
                    eid[ecount] = e_bwd[k]
                    org[ecount] = lu
                    ecount += 1
        start = stop
    for i in range(count):
        local[nodes[i]] = -1
    return (nodes[:count].copy(), hop[:count].copy(), src[:ecount].copy(), dst[:ecount].copy(),
            eid[:ecount].copy(), org[:ecount].copy())


@njit(cache=True)
def build_csr(src, dst, num_nodes):
    """CSR of directed pairs ``src -> dst`` by a stable counting sort on ``src``.

    Returns ``(indptr [num_nodes + 1], indices [E], order [E])`` where ``indices[t] =
    dst[order[t]]`` and row ``u`` is ``indptr[u]:indptr[u+1]`` (pairs in input order).
    """
    E = src.shape[0]
    indptr = np.zeros(num_nodes + 1, np.int64)
    for e in range(E):
        indptr[src[e] + 1] += 1
    for i in range(num_nodes):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    order = np.empty(E, np.int64)
    indices = np.empty(E, np.int64)
    for e in range(E):
        t = fill[src[e]]
        fill[src[e]] += 1
        order[t] = e
        indices[t] = dst[e]
    return indptr, indices, order


@njit(cache=True)
def neighbourhoods(indptr, indices, centres, hops):
    """Members of each centre's neighbourhood within ``hops`` in a CSR adjacency.

    Returns ``(ptr, members, member_hop)``: segment ``ptr[i]:ptr[i+1]`` lists centre ``i``
    first (hop 0), then every node within ``hops`` steps in BFS order, each once.
    """
    n = indptr.shape[0] - 1
    stamp = np.full(n, -1, np.int64)
    c = centres.shape[0]
    ptr = np.zeros(c + 1, np.int64)
    size = max(16, c * 8)
    members = np.empty(size, np.int64)
    mhop = np.empty(size, np.int64)
    count = 0
    for i in range(c):
        ctr = centres[i]
        if count + 1 > size:
            size *= 2
            members = _grown(members, count, size)
            mhop = _grown(mhop, count, size)
        stamp[ctr] = i
        members[count] = ctr
        mhop[count] = 0
        count += 1
        start = count - 1
        for h in range(hops):
            stop = count
            if start == stop:
                break
            for f in range(start, stop):
                u = members[f]
                for k in range(indptr[u], indptr[u + 1]):
                    v = indices[k]
                    if stamp[v] != i:
                        stamp[v] = i
                        if count == size:
                            size *= 2
                            members = _grown(members, count, size)
                            mhop = _grown(mhop, count, size)
                        members[count] = v
                        mhop[count] = h + 1
                        count += 1
            start = stop
        ptr[i + 1] = count
    return ptr, members[:count].copy(), mhop[:count].copy()


@njit(cache=True, fastmath=True)
def _attend_pair(p, Q, X, qsq, xsq, pair_query, pair_seg, own, seg_ptr, members,
                 temperature, blend, metric, out_ptr, score, context, weights):
    D = Q.shape[1]
    b = pair_query[p]
    s = pair_seg[p]
    lo = seg_ptr[s]
    hi = seg_ptr[s + 1]
    o = out_ptr[p]
    smax = -np.inf
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
        if acc > smax:
            smax = acc
    total = 0.0
    for t in range(hi - lo):
        e = np.exp((weights[o + t] - smax) / temperature)
        weights[o + t] = e
        total += e
    h = np.zeros(D, Q.dtype)
    for t in range(hi - lo):
        a = weights[o + t] / total
        weights[o + t] = a
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
        lo = ptr[p]
        hi = ptr[p + 1]
        if hi == lo:
            continue
        m = -np.inf
        for t in range(lo, hi):
            if logits[t] > m:
                m = logits[t]
        total = 0.0
        for t in range(lo, hi):
            e = np.exp(logits[t] - m)
            weights[t] = e
            total += e
        acc = 0.0
        for t in range(lo, hi):
            weights[t] = weights[t] / total
            acc += weights[t] * values[t]
        pooled[p] = acc
    return weights, pooled
