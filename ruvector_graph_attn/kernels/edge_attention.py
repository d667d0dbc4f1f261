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
    edges *to* it (the k-hop BFS of ``kernels/bfs.py`` over the in-edge CSR: ``indptr``/``col``
    grouped by target with the sources in ``col``), the node itself included, in BFS order.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bfs import khop_members  # noqa: F401  (re-exported: old import path)
from .segment import softmax_segment


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
        for p in range(lo, hi):  # scores; a target without in-edges keeps out_i = 0
            j = col[p]
            s = 0.0
            for t in range(d):
                s += q[i, t] * k[j, t]
            s *= scale
            if has_bias:
                s += bias[perm[p]]
            alpha[perm[p]] = s
        softmax_segment(alpha, alpha, lo, hi, perm, False, 1.0)
        for p in range(lo, hi):
            a = alpha[perm[p]]
            j = col[p]
            for t in range(c_):
                out[i, t] += a * v[j, t]
    return out, alpha
