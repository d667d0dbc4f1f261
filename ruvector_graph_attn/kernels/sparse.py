"""Numba kernels for sparse (masked) attention over a CSR pattern.

A pattern is CSR over query rows: the keys allowed for query ``i`` are
``indices[indptr[i]:indptr[i + 1]]`` (sorted, no duplicates). Every kernel here costs
O(nnz * d) or O(nnz); none builds a dense ``[B, N]`` array.

* :func:`csr_attention` -- scores, stable softmax and the weighted sum of values, per row.
* :func:`window_pattern_counts` / :func:`window_pattern_fill` -- the local window +
  strided + global-token pattern generated directly in CSR.
* :func:`block_pattern_counts` / :func:`block_pattern_fill` -- block-sparse patterns.
* :func:`topk_merge` -- merge one block of scores into running per-row top-k heaps.
* :func:`csr_transpose_perm`, :func:`csr_attention_backward_rows`,
  :func:`csr_attention_backward_keys` -- the backward pass (rows, then keys through the
  transposed pattern, so no scatter races).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "csr_attention",
    "window_pattern_counts",
    "window_pattern_fill",
    "block_pattern_counts",
    "block_pattern_fill",
    "topk_merge",
    "csr_transpose_perm",
    "csr_attention_backward_rows",
    "csr_attention_backward_keys",
]


@njit(cache=True, parallel=True, fastmath=True)
def csr_attention(q, k, v, indptr, indices, scale, out, weights):
    """Sparse softmax attention over a CSR pattern.

    For each query row ``i`` (in parallel): ``s_p = scale * <q_i, k_{j_p}>`` over the allowed
    keys ``j_p``, ``w_p = softmax(s)_p`` (max-subtracted), ``out_i = sum_p w_p v_{j_p}``.
    ``scale`` should have the arrays' dtype (``q.dtype.type(scale)``) so float32 inputs stay
    in float32 arithmetic (the softmax normaliser is summed in float64).
    ``weights`` (length nnz) receives the normalised weights in CSR order. Rows without any
    allowed key get ``out_i = 0`` (and no weights). Work is O(nnz * (d + dv)).
    """
    n_rows = indptr.shape[0] - 1
    d = q.shape[1]
    dv = v.shape[1]
    for i in prange(n_rows):
        start = indptr[i]
        stop = indptr[i + 1]
        for c in range(dv):
            out[i, c] = 0.0
        if stop <= start:
            continue
        zero = q[i, 0] - q[i, 0]  # 0 in the input dtype: float32 rows accumulate in float32 (SIMD)
        # scores, four keys at a time (independent accumulators hide the reduction latency)
        p = start
        while p + 4 <= stop:
            j0 = indices[p]
            j1 = indices[p + 1]
            j2 = indices[p + 2]
            j3 = indices[p + 3]
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            for c in range(d):
                qc = q[i, c]
                a0 += qc * k[j0, c]
                a1 += qc * k[j1, c]
                a2 += qc * k[j2, c]
                a3 += qc * k[j3, c]
            weights[p] = a0 * scale
            weights[p + 1] = a1 * scale
            weights[p + 2] = a2 * scale
            weights[p + 3] = a3 * scale
            p += 4
        while p < stop:
            j = indices[p]
            acc = zero
            for c in range(d):
                acc += q[i, c] * k[j, c]
            weights[p] = acc * scale
            p += 1
        # stable softmax over the row
        m = weights[start]
        for p in range(start + 1, stop):
            if weights[p] > m:
                m = weights[p]
        total = 0.0
        for p in range(start, stop):
            e = math.exp(weights[p] - m)
            weights[p] = e
            total += e
        inv = 1.0 / total
        for p in range(start, stop):
            weights[p] = weights[p] * inv
        # weighted sum of values, four keys at a time
        p = start
        while p + 4 <= stop:
            j0 = indices[p]
            j1 = indices[p + 1]
            j2 = indices[p + 2]
            j3 = indices[p + 3]
            w0 = weights[p]
            w1 = weights[p + 1]
            w2 = weights[p + 2]
            w3 = weights[p + 3]
            for c in range(dv):
                out[i, c] += w0 * v[j0, c] + w1 * v[j1, c] + w2 * v[j2, c] + w3 * v[j3, c]
            p += 4
        while p < stop:
            w = weights[p]
            j = indices[p]
            for c in range(dv):
                out[i, c] += w * v[j, c]
            p += 1


@njit(cache=True)
def _window_row(pos, n_keys, window, stride, global_keys, is_global, out, start, write):
    """Sorted union for one query at position ``pos``; returns the count (writes if ``write``).

    Keys: ``|pos - j| <= window`` (window >= 0; a negative window means no local window),
    ``(pos - j) % stride == 0`` when ``stride > 0``, every key in ``global_keys``; a query whose
    position is a global token attends to every key.
    """
    if 0 <= pos < n_keys and is_global[pos]:
        if write:
            for j in range(n_keys):
                out[start + j] = j
        return n_keys
    # stream 1: window [a, b]
    if window >= 0:
        a = max(pos - window, 0)
        b = min(pos + window, n_keys - 1)
    else:
        a = 1
        b = 0
    # stream 2: strided positions r, r + stride, ...
    if stride > 0:
        sj = pos % stride  # Python semantics: in [0, stride)
    else:
        sj = n_keys
    # stream 3: global keys (sorted)
    g = 0
    n_g = global_keys.shape[0]
    wj = a
    count = 0
    while True:
        cand = n_keys
        if wj <= b:
            cand = wj
        if sj < cand:
            cand = sj
        if g < n_g and global_keys[g] < cand:
            cand = global_keys[g]
        if cand >= n_keys:
            break
        if write:
            out[start + count] = cand
        count += 1
        if wj <= b and wj == cand:
            wj += 1
        if sj == cand:
            sj += stride
        if g < n_g and global_keys[g] == cand:
            g += 1
    return count


@njit(cache=True, parallel=True)
def window_pattern_counts(n_rows, n_keys, offset, window, stride, global_keys, is_global, counts):
    """Number of allowed keys per query row for the window/stride/global pattern."""
    dummy = np.empty(0, dtype=np.int64)
    for i in prange(n_rows):
        counts[i] = _window_row(i + offset, n_keys, window, stride, global_keys, is_global, dummy, 0, False)


@njit(cache=True, parallel=True)
def window_pattern_fill(n_rows, n_keys, offset, window, stride, global_keys, is_global, indptr, indices):
    """Fill CSR ``indices`` (sorted per row) for the window/stride/global pattern."""
    for i in prange(n_rows):
        _window_row(i + offset, n_keys, window, stride, global_keys, is_global, indices, indptr[i], True)


@njit(cache=True, parallel=True)
def block_pattern_counts(n_rows, n_keys, block_q, block_k, blk_ptr, blk_cols, counts):
    """Allowed keys per row for a block pattern.

    Active key blocks of query block ``b`` are ``blk_cols[blk_ptr[b]:blk_ptr[b + 1]]`` (sorted,
    unique); a key block ``c`` covers keys ``c*block_k .. min((c+1)*block_k, n_keys) - 1``.
    """
    for i in prange(n_rows):
        b = i // block_q
        total = 0
        for p in range(blk_ptr[b], blk_ptr[b + 1]):
            lo = blk_cols[p] * block_k
            hi = min(lo + block_k, n_keys)
            total += hi - lo
        counts[i] = total


@njit(cache=True, parallel=True)
def block_pattern_fill(n_rows, n_keys, block_q, block_k, blk_ptr, blk_cols, indptr, indices):
    for i in prange(n_rows):
        b = i // block_q
        t = indptr[i]
        for p in range(blk_ptr[b], blk_ptr[b + 1]):
            lo = blk_cols[p] * block_k
            hi = min(lo + block_k, n_keys)
            for j in range(lo, hi):
                indices[t] = j
                t += 1


@njit(cache=True, inline="always")
def _worse(va, ia, vb, ib):
    """True when (va, ia) ranks below (vb, ib): lower score, or equal score and higher index."""
    return va < vb or (va == vb and ia > ib)


@njit(cache=True, parallel=True)
def topk_merge(scores, col_offset, seen, top_vals, top_idx):
    """Merge a block of scores (keys ``col_offset .. col_offset + scores.shape[1] - 1``) into
    per-row min-heaps of the ``k`` best keys so far (``seen`` keys merged before this block).

    Ranking: higher score first; equal scores prefer the lower key index. The heap root is
    the worst kept entry. O(n_block * log k) per row.
    """
    n_rows, n_block = scores.shape
    k = top_vals.shape[1]
    for i in prange(n_rows):
        filled = min(seen, k)
        for c in range(n_block):
            s = scores[i, c]
            j = col_offset + c
            if filled < k:
                # push and sift up
                pos = filled
                filled += 1
                while pos > 0:
                    parent = (pos - 1) // 2
                    if _worse(s, j, top_vals[i, parent], top_idx[i, parent]):
                        top_vals[i, pos] = top_vals[i, parent]
                        top_idx[i, pos] = top_idx[i, parent]
                        pos = parent
                    else:
                        break
                top_vals[i, pos] = s
                top_idx[i, pos] = j
            elif _worse(top_vals[i, 0], top_idx[i, 0], s, j):
                # replace the root and sift down
                pos = 0
                while True:
                    left = 2 * pos + 1
                    if left >= k:
                        break
                    child = left
                    right = left + 1
                    if right < k and _worse(top_vals[i, right], top_idx[i, right],
                                            top_vals[i, left], top_idx[i, left]):
                        child = right
                    if _worse(top_vals[i, child], top_idx[i, child], s, j):
                        top_vals[i, pos] = top_vals[i, child]
                        top_idx[i, pos] = top_idx[i, child]
                        pos = child
                    else:
                        break
                top_vals[i, pos] = s
                top_idx[i, pos] = j


@njit(cache=True)
def csr_transpose_perm(indices, n_keys, colptr, perm):
    """Counting sort of the CSR entries by key: entries of key ``j`` are
    ``perm[colptr[j]:colptr[j + 1]]`` (positions into ``indices``, in increasing order). O(nnz + N)."""
    for j in range(n_keys + 1):
        colptr[j] = 0
    for p in range(indices.shape[0]):
        colptr[indices[p] + 1] += 1
    for j in range(n_keys):
        colptr[j + 1] += colptr[j]
    fill = colptr[:-1].copy()
    for p in range(indices.shape[0]):
        j = indices[p]
        perm[fill[j]] = p
        fill[j] += 1


@njit(cache=True, parallel=True, fastmath=True)
def csr_attention_backward_rows(q, k, v, indptr, indices, weights, scale, grad_out, grad_q, grad_s):
    """Per query row: ``g_p = <grad_out_i, v_j>``, ``grad_s_p = w_p (g_p - sum_p' w_p' g_p')``
    (softmax backward, then times ``scale`` for the score scaling) and
    ``grad_q_i = sum_p grad_s_p k_j``. ``grad_s`` (length nnz) is reused for the key gradients."""
    n_rows = indptr.shape[0] - 1
    d = q.shape[1]
    dv = v.shape[1]
    for i in prange(n_rows):
        start = indptr[i]
        stop = indptr[i + 1]
        for c in range(d):
            grad_q[i, c] = 0.0
        if stop <= start:
            continue
        dot = 0.0
        for p in range(start, stop):
            j = indices[p]
            g = 0.0
            for c in range(dv):
                g += grad_out[i, c] * v[j, c]
            grad_s[p] = g
            dot += weights[p] * g
        for p in range(start, stop):
            gs = weights[p] * (grad_s[p] - dot) * scale
            grad_s[p] = gs
            j = indices[p]
            for c in range(d):
                grad_q[i, c] += gs * k[j, c]


@njit(cache=True, parallel=True, fastmath=True)
def csr_attention_backward_keys(q, grad_out, indptr, colptr, perm, weights, grad_s, grad_k, grad_v):
    """Per key ``j`` (over the transposed pattern): ``grad_k_j = sum grad_s_p q_i`` and
    ``grad_v_j = sum w_p grad_out_i`` over the entries ``p = (i, j)``."""
    n_keys = colptr.shape[0] - 1
    n_rows = indptr.shape[0] - 1
    d = q.shape[1]
    dv = grad_out.shape[1]
    for j in prange(n_keys):
        for c in range(d):
            grad_k[j, c] = 0.0
        for c in range(dv):
            grad_v[j, c] = 0.0
        for t in range(colptr[j], colptr[j + 1]):
            p = perm[t]
            # the row of entry p: binary search in indptr (largest i with indptr[i] <= p)
            lo = 0
            hi = n_rows
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if indptr[mid] <= p:
                    lo = mid
                else:
                    hi = mid
            i = lo
            gs = grad_s[p]
            w = weights[p]
            for c in range(d):
                grad_k[j, c] += gs * q[i, c]
            for c in range(dv):
                grad_v[j, c] += w * grad_out[i, c]
