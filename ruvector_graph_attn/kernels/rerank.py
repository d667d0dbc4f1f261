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

from .bfs import _grown, csr_expand, neighbourhoods  # noqa: F401  (re-exported: old import path)
from .csr import csr_of_pairs
from .hashing import pair_hash, splitmix64  # noqa: F401  (re-exported: old import path)
from .segment import _AHEAD, _prefetch_line, softmax_segment
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


@njit(cache=True)
def _picks(indptr, nbr, node_key, u, cap, salt):
    """CSR positions of ``u``'s expanded neighbours: all of them, or the ``cap`` with the
    smallest ``pair_hash`` (in CSR order) when it has more (``csr_expand``'s sample)."""
    lo = indptr[u]
    hi = indptr[u + 1]
    deg = hi - lo
    if cap >= 0 and deg > cap:
        keys = np.empty(deg, np.uint64)
        for k in range(deg):
            keys[k] = pair_hash(salt, node_key[u], node_key[nbr[lo + k]])
        return np.sort(np.argsort(keys)[:cap]) + lo
    return np.arange(lo, hi)


@njit(cache=True)
def _one_hop_members(indptr, nbr, node_key, c, hops, cap, salt, entry_node, o):
    """Write ``N(c)`` for a radius of 0 or 1 at ``entry_node[o:]``: ``c`` first, then its
    neighbours in CSR order (the ``cap`` with the smallest ``pair_hash`` when it has more;
    ``cap < 0``: no cap), itself left out -- the members the snapshot expansion followed by
    ``khop_neighbourhoods`` gives one seed. Returns how many were written."""
    entry_node[o] = c
    count = 1
    if hops == 0:
        return count
    lo = indptr[c]
    hi = indptr[c + 1]
    if cap >= 0 and hi - lo > cap:
        picks = _picks(indptr, nbr, node_key, c, cap, salt)
        for t in range(picks.shape[0]):
            v = nbr[picks[t]]
            if v != c:
                entry_node[o + count] = v
                count += 1
    else:
        for k in range(lo, hi):
            v = nbr[k]
            if v != c:
                entry_node[o + count] = v
                count += 1
    return count


@njit(inline="always")
def _prefetch_whole_row(arr, row):
    """Prefetch every 64-byte line of row ``row`` (rows of up to 1 KiB; the rest streams)."""
    nbytes = arr.strides[0]
    off = 0
    while off < nbytes and off < 1024:
        _prefetch_line(arr, row, off)
        off += 64


@njit(cache=True, fastmath=True)
def _snapshot_pair(p, Q, X, qsq, xsq, pair_query, own, temperature, blend, metric, entry_ptr, entry_node,
                   weights, score, context):
    D = Q.shape[1]
    b = pair_query[p]
    lo = entry_ptr[p]
    hi = entry_ptr[p + 1]
    E = entry_node.shape[0]
    for t in range(lo, hi):
        if t + _AHEAD < E:
            _prefetch_whole_row(X, entry_node[t + _AHEAD])
            _prefetch_line(xsq, entry_node[t + _AHEAD], 0)
        j = entry_node[t]
        acc = Q.dtype.type(0.0)
        for d in range(D):
            acc += Q[b, d] * X[j, d]
        sq = xsq[j]
        if metric == 1:
            acc = -(qsq[b] - 2.0 * acc + sq)
        elif metric == 2:
            acc = acc / np.sqrt(sq) if sq > 0.0 else 0.0
        weights[t] = acc
    softmax_segment(weights, weights, lo, hi, entry_node, True, 1.0 / temperature)
    h = np.zeros(D, Q.dtype)
    for t in range(lo, hi):
        a = weights[t]
        j = entry_node[t]
        if metric == 2:  # pool unit vectors
            a = a / np.sqrt(xsq[j]) if xsq[j] > 0.0 else 0.0
        for d in range(D):
            h[d] += a * X[j, d]
    context[p], score[p] = _context_score(Q, b, h, qsq, own[p], blend, metric)


def _snapshot_all(Q, X, qsq, xsq, pair_query, own, temperature, blend, metric, entry_ptr, entry_node,
                  weights, score, context):
    for t in range(min(_AHEAD, entry_node.shape[0])):  # the rows the first pairs read
        _prefetch_whole_row(X, entry_node[t])
        _prefetch_line(xsq, entry_node[t], 0)
    for p in prange(pair_query.shape[0]):
        _snapshot_pair(p, Q, X, qsq, xsq, pair_query, own, temperature, blend, metric, entry_ptr, entry_node,
                       weights, score, context)


_snapshot_parallel, _snapshot_serial = compile_twice(_snapshot_all, cache=True, fastmath=True)


@njit(cache=True)
def _snapshot_members(cand, valid, C, lut, int_sorted, int_order, indptr, nbr, node_key, hops, cap, salt):
    """The present pairs of the flat candidates (row-major) and their neighbourhoods, laid
    out flat (``entry_ptr``). ``cand`` are integer ids looked up in ``lut`` (id -> position,
    -1 for none; the one entry -2: ids are positions) when it is not empty, else in ``int_sorted`` (the snapshot's sorted ids,
    ``int_order`` their positions) when that is not empty; otherwise they are positions
    already (-1: not in the graph)."""
    m = cand.shape[0]
    cand_pos = np.empty(m, np.int64)
    n_sorted = int_sorted.shape[0]
    n_lut = lut.shape[0]
    n_nodes = indptr.shape[0] - 1
    for i in range(m):
        c = cand[i]
        if n_lut == 1 and lut[0] == -2:   # ids are the positions 0..N-1
            cand_pos[i] = c if 0 <= c < n_nodes else -1
        elif n_lut > 0:
            cand_pos[i] = lut[c] if 0 <= c < n_lut else -1
        elif n_sorted == 0:
            cand_pos[i] = c
        else:
            j = np.searchsorted(int_sorted, c)
            cand_pos[i] = int_order[j] if j < n_sorted and int_sorted[j] == c else -1
    pair_index = np.full(m, -1, np.int64)
    P = 0
    U = 0
    for i in range(m):
        c = cand_pos[i]
        if c >= 0 and valid[i]:
            pair_index[i] = P
            P += 1
            U += 1
            if hops > 0:
                deg = indptr[c + 1] - indptr[c]
                U += deg if cap < 0 or deg <= cap else cap
    pair_query = np.empty(P, np.int64)
    pair_flat = np.empty(P, np.int64)
    entry_ptr = np.zeros(P + 1, np.int64)
    entry_node = np.empty(U, np.int64)
    p = 0
    for i in range(m):
        if pair_index[i] >= 0:
            pair_query[p] = i // C
            pair_flat[p] = i
            n = _one_hop_members(indptr, nbr, node_key, cand_pos[i], hops, cap, salt, entry_node, entry_ptr[p])
            entry_ptr[p + 1] = entry_ptr[p] + n
            p += 1
    return pair_index, pair_query, pair_flat, entry_ptr, entry_node[:entry_ptr[P]]


def snapshot_attention(Q, X, qsq, xsq, cand, valid, own, C, lut, int_sorted, int_order, indptr, nbr, node_key,
                       hops, cap, salt, temperature, blend, metric):
    """Expansion and neighbourhood attention in one pass over an array snapshot (the fused
    form of ``csr_expand`` + ``khop_neighbourhoods`` + :func:`neighbourhood_attention` for a
    radius of 0 or 1).

    ``cand`` ``[M]`` (flat ``[B, C]``, row-major) are the candidates' integer ids, looked up in
    ``lut`` (a dense id -> position table, -1 for no node) or, when that is empty, in
    ``int_sorted`` / ``int_order`` (the snapshot's sorted integer ids and their positions),
    or their snapshot positions (-1: not in the graph) when both are empty; ``valid``
    ``[M]`` bool, ``own`` ``[M]`` their vector scores; ``xsq`` ``[N]`` the squared norms of
    the rows of ``X``;
    ``indptr``/``nbr`` the snapshot CSR of the expansion direction, ``node_key`` the per-node
    sampling keys, ``cap`` the neighbour cap (-1: none), ``salt`` the sampling seed. Pair
    ``p`` (each present, valid entry, row-major) attends over ``N(c)`` = the candidate and its
    (capped) neighbours, reading ``X`` rows in place (prefetched ``_AHEAD`` entries ahead);
    ``Q`` rows must be unit vectors for ``metric`` 2, as in :func:`neighbourhood_attention`
    (same equations).

    Returns ``(pair_index [M], pair_flat [P], score [P], context [P], entry_ptr [P+1],
    entry_node [E], weights [E])``: entries of pair ``p`` at ``entry_ptr[p]:entry_ptr[p+1]``
    with the snapshot positions of the members (the candidate first) and their weights.
    """
    pair_index, pair_query, pair_flat, entry_ptr, entry_node = _snapshot_members(
        cand, valid, int(C), lut, int_sorted, int_order, indptr, nbr, node_key, int(hops), int(cap), int(salt))
    P = pair_query.shape[0]
    E = int(entry_ptr[P])
    score = np.empty(P, Q.dtype)
    context = np.empty(P, Q.dtype)
    weights = np.empty(E, Q.dtype)
    own_p = own[pair_flat].astype(Q.dtype)
    fn = pick(_snapshot_parallel, _snapshot_serial, E * Q.shape[1] * 2, PARALLEL_MIN_WORK)
    fn(Q, X, qsq, xsq, pair_query, own_p, float(temperature), float(blend), int(metric), entry_ptr, entry_node,
       weights, score, context)
    return pair_index, pair_flat, score, context, entry_ptr, entry_node, weights


@njit(cache=True)
def graph_candidate_rows(cand_pos, valid, B, C, m, indptr, nbr, node_key, cap, salt):
    """New candidates from the graph for each of ``B`` rows of ``C`` candidates (flat
    ``cand_pos``: snapshot positions, -1 for none; ``valid`` flat bool): the neighbours (CSR
    ``indptr``/``nbr`` of the traversal direction; at most ``cap`` per node, the expansion's
    ``pair_hash`` sample) of each row's first ``m`` valid candidates that are not in the row
    yet -- each seed's own neighbour list, as ``GraphReranker._add_graph_candidates`` takes it.

    Returns ``(row_ptr [B+1], extra [X])``: row ``b``'s new candidates (snapshot positions,
    each once, in discovery order) at ``extra[row_ptr[b]:row_ptr[b+1]]``."""
    row_ptr = np.zeros(B + 1, np.int64)
    extra = np.empty(16, np.int64)
    x = 0
    for b in range(B):
        have = set()
        for c in range(C):
            if cand_pos[b * C + c] >= 0:
                have.add(cand_pos[b * C + c])
        for c in range(min(m, C)):
            t = cand_pos[b * C + c]
            if t < 0 or not valid[b * C + c]:
                continue
            picks = _picks(indptr, nbr, node_key, t, cap, salt)
            for i in range(picks.shape[0]):
                v = nbr[picks[i]]
                if v not in have:
                    have.add(v)
                    if x == extra.shape[0]:
                        extra = _grown(extra, x, 2 * x)
                    extra[x] = v
                    x += 1
        row_ptr[b + 1] = x
    return row_ptr, extra[:x].copy()


@njit(cache=True)
def snapshot_vote_terms(cand_pos, valid, own, B, C, voters, indptr, nbr, node_key, cap, salt, num_nodes):
    """The neighbour vote's terms on a snapshot (``rerank/vote.py``; the snapshot counterpart of
    ``vote_terms`` over an expanded subgraph). Present pairs are the flat candidates with a
    position (``cand_pos >= 0``) that are ``valid``, numbered in row-major order. Each row's
    voters are its ``voters`` present pairs with the largest ``own`` (ties: column order); a
    voter gives a term to each present pair of its row whose node it reaches (its neighbours in
    the CSR, at most ``cap`` with the expansion's sample), itself and repeats left out.

    Returns ``(pair_index [B*C] (-1: not present), pair_flat [P], tgt [V], src [V])``: the voter
    terms ``(target pair, voter pair)``, by target and then voter pair number."""
    pair_index = np.full(B * C, -1, np.int64)
    P = 0
    for f in range(B * C):
        if cand_pos[f] >= 0 and valid[f]:
            pair_index[f] = P
            P += 1
    pair_flat = np.empty(P, np.int64)
    for f in range(B * C):
        if pair_index[f] >= 0:
            pair_flat[pair_index[f]] = f
    slot = np.full(num_nodes, -1, np.int64)      # node -> pair of the current row
    seen = np.full(num_nodes, -1, np.int64)      # node -> last voter pair that reached it
    tgt = np.empty(64, np.int64)
    src = np.empty(64, np.int64)
    x = 0
    for b in range(B):
        base = b * C
        n_p = 0
        for c in range(C):
            if pair_index[base + c] >= 0:
                n_p += 1
        if n_p == 0:
            continue
        cols = np.empty(n_p, np.int64)
        key = np.empty(n_p, np.float64)
        j = 0
        for c in range(C):
            p = pair_index[base + c]
            if p >= 0:
                cols[j] = c
                key[j] = -own[base + c]
                slot[cand_pos[base + c]] = p
                j += 1
        order = np.argsort(key, kind="mergesort")
        nv = min(voters, n_p)
        vcols = np.sort(cols[order[:nv]])
        start = x
        for i in range(nv):
            f = base + vcols[i]
            pv = pair_index[f]
            picks = _picks(indptr, nbr, node_key, cand_pos[f], cap, salt)
            for t in range(picks.shape[0]):
                u = nbr[picks[t]]
                pt = slot[u]
                if pt < 0 or pt == pv or seen[u] == pv:
                    continue
                seen[u] = pv
                if x == tgt.shape[0]:
                    tgt = _grown(tgt, x, 2 * x)
                    src = _grown(src, x, 2 * x)
                tgt[x] = pt
                src[x] = pv
                x += 1
        # by target, then voter (voters were visited in pair order: a stable sort keeps it)
        if x > start:
            o = np.argsort(tgt[start:x], kind="mergesort")
            tgt[start:x] = tgt[start:x][o]
            src[start:x] = src[start:x][o]
        for c in range(C):
            p = pair_index[base + c]
            if p >= 0:
                slot[cand_pos[base + c]] = -1
    return pair_index, pair_flat, tgt[:x].copy(), src[:x].copy()
