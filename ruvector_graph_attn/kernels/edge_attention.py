"""Kernels for dot-product attention restricted to graph edges, and k-hop neighbourhoods.

``edge_attention_forward(q[M,D], k[N,D], v[N,C], bias[E] | empty, indptr[M+1], perm[E], col[E], scale)
    -> (out[M,C], alpha[E])``
    One parallel pass over targets ``i`` (a CSR of the edges by target; ``col`` = the
    source key of each CSR position): ``s_e = scale * q_i . k_j (+ bias_e)``, softmax
    over the in-edges of ``i`` (max subtracted), ``out_i = sum_e alpha_e v_j``. A target
    without in-edges gets ``out_i = 0``. ``alpha`` is in original edge order.
    Work O(E (D + C)); nothing is N x N.

``khop_members(indptr, col, nodes[B], k, num_nodes) -> (owner[M], member[M])``
    For each ``nodes[b]``, the distinct nodes with a directed path of at most ``k``
    edges *to* it (frontier expansion over the in-edge CSR: ``indptr``/``col`` grouped by
    target with the sources in ``col``), the node itself included (hop 0), in BFS order.
    One visited-stamp array of ``num_nodes`` is reused across the queries; total work
    is the sum of the edges scanned, never ``B x N``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def edge_attention_forward(q, k, v, bias, indptr, perm, col, scale):
    m = indptr.shape[0] - 1
    d = q.shape[1]
    c_ = v.shape[1]
    e_ = perm.shape[0]
    has_bias = bias.shape[0] == e_ and e_ > 0
    alpha = np.zeros(e_, dtype=q.dtype)
    out = np.zeros((m, c_), dtype=q.dtype)
    for i in prange(m):
        lo = indptr[i]
        hi = indptr[i + 1]
        if lo == hi:
            continue
        mx = -np.inf
        for p in range(lo, hi):
            j = col[p]
            s = 0.0
            for t in range(d):
                s += q[i, t] * k[j, t]
            s *= scale
            if has_bias:
                s += bias[perm[p]]
            alpha[perm[p]] = s
            if s > mx:
                mx = s
        tot = 0.0
        for p in range(lo, hi):
            e = perm[p]
            w = np.exp(alpha[e] - mx)
            alpha[e] = w
            tot += w
        inv = 1.0 / tot
        for p in range(lo, hi):
            e = perm[p]
            a = alpha[e] * inv
            alpha[e] = a
            j = col[p]
            for t in range(c_):
                out[i, t] += a * v[j, t]
    return out, alpha


@njit(cache=True)
def khop_members(indptr, col, nodes, k, num_nodes):
    b_ = nodes.shape[0]
    stamp = np.full(num_nodes, -1, dtype=np.int64)
    cap = max(16, 4 * b_)
    owner = np.empty(cap, dtype=np.int64)
    member = np.empty(cap, dtype=np.int64)
    m = 0
    for b in range(b_):
        start = m
        root = nodes[b]
        stamp[root] = b
        owner, member, m, cap = _append_member(owner, member, m, cap, b, root)
        f_lo = start
        f_hi = m
        for _hop in range(k):
            if f_lo == f_hi:
                break
            for f in range(f_lo, f_hi):
                u = member[f]
                for p in range(indptr[u], indptr[u + 1]):
                    j = col[p]
                    if stamp[j] != b:
                        stamp[j] = b
                        owner, member, m, cap = _append_member(owner, member, m, cap, b, j)
            f_lo = f_hi
            f_hi = m
    return owner[:m].copy(), member[:m].copy()


@njit(cache=True)
def _grow(arr, cap):
    out = np.empty(cap, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@njit(inline="always")
def _append_member(owner, member, m, cap, b, node):
    """Append ``(b, node)`` at position ``m``, doubling both buffers when full;
    returns the (possibly new) buffers, ``m + 1`` and the capacity."""
    if m >= cap:
        cap *= 2
        owner = _grow(owner, cap)
        member = _grow(member, cap)
    owner[m] = b
    member[m] = node
    return owner, member, m + 1, cap
