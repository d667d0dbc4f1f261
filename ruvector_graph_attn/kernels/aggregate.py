"""Fused neighbourhood aggregation kernels for the linear-then-aggregate layer paths.

Sum and mean aggregation commute with a linear map, ``A (x W^T) = (A x) W^T``, so a layer
whose output is narrower than its input projects first (one BLAS product for all its
linear maps) and aggregates the narrow result; these kernels then do the aggregation and
the element-wise tail in one pass over the CSR (no ``[E, F]`` message array, no
intermediate ``[N, F]`` sums). All are parallel over the rows they write; float32 or
float64; index arrays int64; callers validate (the kernels trust shapes). Like the
segment kernels they prefetch the gathered source row ``_AHEAD`` CSR positions ahead
(``kernels.segment._prefetch_row``): the gathers are bound by memory latency, and the
prefetch took about 30 % off ``gin_combine`` at 1M edges / 64 features.

``sage_combine(hl, hr, indptr, col, bias, mean) -> out[N, width]``
    ``out[i] = agg_{k in indptr[i]:indptr[i+1]} hl[col[k]] + hr[i] + bias`` with ``agg``
    the mean (``mean=True``; empty groups give 0) or the sum, ``width = hl.shape[1]``; the
    root term is present when ``hr`` has ``N`` rows (pass a ``[0, width]`` array for none).
    SAGEConv's forward. ``hl`` is best a contiguous ``[N, width]`` array: the random row
    gathers then touch only the rows' own cache lines and pages (a column slice of a wider
    product works too; it measured 35 instead of 30 ms CPU at 1M edges, width 64).
``scaled_transpose_sum(g, indptr, col, scale, out, width)``
    ``out[j, :width] = sum_{k in indptr[j]:indptr[j+1]} g[col[k]] * scale[col[k]]`` over a
    CSR by *source* (``col`` = targets): the transpose of the mean (``scale = 1/deg``) or
    sum (``scale = 1``) aggregation, written into the first ``width`` columns of ``out``.
``gin_combine(x, indptr, col, one_plus_eps) -> out[N, F]``
    ``out[i] = (1 + eps) x[i] + sum_{k} x[col[k]]``: GIN's aggregation and root term.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .segment import _AHEAD, _prefetch_row, _sum_rows_into

__all__ = ["gin_combine", "sage_combine", "scaled_transpose_sum"]

_FM = {"nsz", "arcp", "contract", "reassoc"}  # the segment kernels' flags: inf/nan semantics kept


@njit(cache=True, parallel=True, fastmath=_FM)
def sage_combine(hl, hr, indptr, col, bias, mean):
    n = indptr.shape[0] - 1
    width = hl.shape[1]
    root = hr.shape[0] == n and n > 0
    acc = np.empty((n, width), dtype=hl.dtype)
    for i in prange(n):
        for c in range(width):
            acc[i, c] = 0.0
        lo = indptr[i]
        hi = indptr[i + 1]
        _sum_rows_into(acc, i, hl, lo, hi, col)
        if mean and hi > lo:
            inv = 1.0 / (hi - lo)
            for c in range(width):
                acc[i, c] *= inv
        if root:
            for c in range(width):
                acc[i, c] += hr[i, c]
        for c in range(width):
            acc[i, c] += bias[c]
    return acc


@njit(cache=True, parallel=True, fastmath=_FM)
def scaled_transpose_sum(g, indptr, col, scale, out, width):
    n = indptr.shape[0] - 1
    e_ = col.shape[0]
    for j in prange(n):
        for c in range(width):
            out[j, c] = 0.0
        for k in range(indptr[j], indptr[j + 1]):
            if k + _AHEAD < e_:
                _prefetch_row(g, col[k + _AHEAD])
            i = col[k]
            s = scale[i]
            for c in range(width):
                out[j, c] += g[i, c] * s
    return out


@njit(cache=True, parallel=True, fastmath=_FM)
def gin_combine(x, indptr, col, one_plus_eps):
    n = indptr.shape[0] - 1
    f = x.shape[1]
    out = np.empty((n, f), dtype=x.dtype)
    a = x.dtype.type(one_plus_eps)
    for i in prange(n):
        for c in range(f):
            out[i, c] = 0.0
        _sum_rows_into(out, i, x, indptr[i], indptr[i + 1], col)
        for c in range(f):  # the root term last, as before the prefetch: same rounding
            out[i, c] += a * x[i, c]
    return out
