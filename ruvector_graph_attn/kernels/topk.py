"""Fused top-k per row (Numba, parallel over rows).

``topk_rows(x, k, largest=True)`` returns ``(values, indices)``, both ``[R, k]`` (or ``[k]`` for
a 1-D input), sorted best first. One pass per row keeps a size-k heap, so the cost is
``O(N log k)`` per row with no full sort and no ``[R, N]`` index temporary.

Ties are broken by the lower column index (a stable order: among equal values the earlier
column comes first), so results are deterministic and match a stable argsort of ``-x``.
``-inf`` entries are ordinary values (they rank last); NaN is rejected.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import InvalidInputError
from ..validation import check_int
from .dense import as_kernel_array


@njit(cache=True, inline="always")
def _worse(va, ia, vb, ib):
    """True when (va, ia) ranks below (vb, ib): smaller value, or equal value and larger index."""
    return va < vb or (va == vb and ia > ib)


@njit(cache=True, inline="always")
def _sift_down(hv, hi, pos, size):
    # min-heap on "rank": the root is the worst kept element
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        child = left
        right = left + 1
        if right < size and _worse(hv[right], hi[right], hv[left], hi[left]):
            child = right
        if _worse(hv[child], hi[child], hv[pos], hi[pos]):
            tv = hv[pos]
            ti = hi[pos]
            hv[pos] = hv[child]
            hi[pos] = hi[child]
            hv[child] = tv
            hi[child] = ti
            pos = child
        else:
            return


@njit(cache=True, parallel=True)
def _topk_rows_kernel(x, k, out_v, out_i):
    n = x.shape[1]
    for r in prange(x.shape[0]):
        hv = np.empty(k, dtype=x.dtype)
        hi = np.empty(k, dtype=np.int64)
        for j in range(k):
            hv[j] = x[r, j]
            hi[j] = j
        for p in range(k // 2 - 1, -1, -1):
            _sift_down(hv, hi, p, k)
        for j in range(k, n):
            v = x[r, j]
            if v > hv[0]:  # equal values never beat a kept earlier index
                hv[0] = v
                hi[0] = j
                _sift_down(hv, hi, 0, k)
        # heap-sort: repeatedly move the worst to the end -> best first
        for size in range(k - 1, 0, -1):
            tv = hv[0]
            ti = hi[0]
            hv[0] = hv[size]
            hi[0] = hi[size]
            hv[size] = tv
            hi[size] = ti
            _sift_down(hv, hi, 0, size)
        for j in range(k):
            out_v[r, j] = hv[j]
            out_i[r, j] = hi[j]


def topk_rows(x: np.ndarray, k: int, largest: bool = True):
    """The ``k`` largest (or smallest) entries of every row and their column indices, best first."""
    x = as_kernel_array(x)
    squeeze = x.ndim == 1
    rows = x.reshape(1, -1) if squeeze else x
    if rows.ndim != 2:
        raise InvalidInputError(f"topk_rows takes a 1-D or 2-D array, got shape {x.shape}")
    n = rows.shape[1]
    k = check_int(k, "k (at most the row length)", lo=1, hi=n)
    if np.isnan(rows).any():
        raise InvalidInputError("topk_rows: input contains NaN; expected comparable numbers")
    src = rows if largest else -rows
    vals = np.empty((rows.shape[0], int(k)), dtype=rows.dtype)
    idx = np.empty((rows.shape[0], int(k)), dtype=np.int64)
    _topk_rows_kernel(src, int(k), vals, idx)
    if not largest:
        vals = -vals
    if squeeze:
        return vals[0], idx[0]
    return vals, idx


__all__ = ["topk_rows"]
