"""Row-wise numerically stable softmax (plain Numba kernels).

``softmax_rows(x, scale)`` computes, for every row ``r`` of a 2-D array,

    w[r, j] = exp(scale * (x[r, j] - m_r)) / sum_k exp(scale * (x[r, k] - m_r)),   m_r = max_k x[r, k]

Subtracting the row maximum first means no ``exp`` can overflow, and at least one term of
the denominator is exactly 1, so the division is always defined for finite rows.
``scale`` must be > 0 (it is the attention temperature ``1/sqrt(d)`` folded in, which saves
one pass over the scores).

Special rows (documented behaviour, relied on by the attention layers):

* a row whose entries are **all -inf** (every key masked) gives **all zeros**: the weights
  of "nothing to attend to" are 0, never NaN. Such a row sums to 0, not 1.
* a row containing **+inf** gives the limit of the softmax: the weight is split equally
  among the +inf entries and is 0 elsewhere.
* NaN is not a valid score; public entries reject it before calling a kernel. A row
  containing NaN comes out all NaN (it is never turned into a plausible number).

``masked_softmax_rows(x, mask, scale)`` is the same with ``mask[r, j] == False`` treated as
-inf (True = attend). ``softmax_rows_backward(w, grad_w, scale)`` is the vector-Jacobian
product ``scale * w * (grad_w - sum_j grad_w * w)`` of the scaled softmax.

Rows are independent and processed in parallel (``prange``). Inputs must be C-contiguous
float32 or float64; outputs have the same dtype.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# reassociation / contraction only: no "nnan"/"ninf", so NaN and Inf keep their IEEE meaning
_FM = {"reassoc", "contract", "arcp", "nsz"}


@njit(cache=True, fastmath=_FM, inline="always")
def _softmax_row(x, mask, use_mask, scale, out):
    n = x.shape[0]
    m = -np.inf
    has_nan = False
    for j in range(n):
        if use_mask and not mask[j]:
            continue
        v = x[j]
        if v != v:
            has_nan = True
        elif v > m:
            m = v
    if has_nan:
        for j in range(n):
            out[j] = np.nan
        return
    if m == -np.inf:  # every entry -inf or masked: defined as all zeros
        for j in range(n):
            out[j] = 0.0
        return
    if m == np.inf:  # limit: equal split over the +inf entries
        c = 0
        for j in range(n):
            if (not use_mask or mask[j]) and x[j] == np.inf:
                c += 1
        for j in range(n):
            if (not use_mask or mask[j]) and x[j] == np.inf:
                out[j] = 1.0 / c
            else:
                out[j] = 0.0
        return
    total = 0.0
    for j in range(n):
        if use_mask and not mask[j]:
            out[j] = 0.0
        else:
            e = np.exp(scale * (x[j] - m))
            out[j] = e
            total += e
    inv = 1.0 / total
    for j in range(n):
        out[j] *= inv


def _softmax_rows_impl(x, scale, out):
    dummy = np.ones(1, dtype=np.bool_)
    for r in prange(x.shape[0]):
        _softmax_row(x[r], dummy, False, scale, out[r])


def _masked_softmax_rows_impl(x, mask, scale, out):
    for r in prange(x.shape[0]):
        _softmax_row(x[r], mask[r], True, scale, out[r])


def _softmax_rows_backward_impl(w, g, scale, out):
    for r in prange(w.shape[0]):
        dot = 0.0
        for j in range(w.shape[1]):
            dot += w[r, j] * g[r, j]
        for j in range(w.shape[1]):
            out[r, j] = scale * w[r, j] * (g[r, j] - dot)


# Each kernel exists twice: parallel over rows for wide work, serial for small calls (a single
# query's row), where starting the thread pool costs more than the work itself.
_softmax_rows_par = njit(cache=True, parallel=True, fastmath=_FM)(_softmax_rows_impl)
_softmax_rows_ser = njit(cache=True, fastmath=_FM)(_softmax_rows_impl)
_masked_softmax_rows_par = njit(cache=True, parallel=True, fastmath=_FM)(_masked_softmax_rows_impl)
_masked_softmax_rows_ser = njit(cache=True, fastmath=_FM)(_masked_softmax_rows_impl)
_softmax_rows_backward_par = njit(cache=True, parallel=True, fastmath=_FM)(_softmax_rows_backward_impl)
_softmax_rows_backward_ser = njit(cache=True, fastmath=_FM)(_softmax_rows_backward_impl)

#: below this many elements (or with a single row) the serial kernel is used
PARALLEL_MIN_ELEMENTS = 65536


def _parallel(x: np.ndarray) -> bool:
    return x.ndim == 2 and x.shape[0] > 1 and x.size >= PARALLEL_MIN_ELEMENTS


def _as_rows(x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim != 2:
        raise ValueError(f"softmax kernels take 1-D or 2-D arrays, got shape {x.shape}")
    return x


def softmax_rows(x: np.ndarray, scale: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """Stable softmax of every row of ``x`` (1-D or 2-D) with temperature ``scale`` (> 0).

    ``out`` may be ``x`` itself (in place). Returns an array of ``x``'s shape and dtype.
    """
    x = np.ascontiguousarray(x)
    if out is None:
        out = np.empty_like(x)
    kernel = _softmax_rows_par if _parallel(x) else _softmax_rows_ser
    kernel(_as_rows(x), x.dtype.type(scale), _as_rows(out))
    return out


def masked_softmax_rows(x: np.ndarray, mask: np.ndarray, scale: float = 1.0,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Softmax of every row over the entries where ``mask`` is True (others get weight 0).

    A row with no True entry is all zeros (see module docstring).
    """
    x = np.ascontiguousarray(x)
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if mask.shape != x.shape:
        raise ValueError(f"mask shape {mask.shape} != scores shape {x.shape}")
    if out is None:
        out = np.empty_like(x)
    kernel = _masked_softmax_rows_par if _parallel(x) else _masked_softmax_rows_ser
    kernel(_as_rows(x), _as_rows(mask), x.dtype.type(scale), _as_rows(out))
    return out


def softmax_rows_backward(w: np.ndarray, grad_w: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Gradient w.r.t. the (unscaled) scores, given the softmax output ``w`` and dL/dw.

    ``d x[r, j] = scale * w[r, j] * (grad_w[r, j] - sum_k grad_w[r, k] * w[r, k])``.
    Rows of zeros (fully masked) get zero gradient.
    """
    w = np.ascontiguousarray(w)
    g = np.ascontiguousarray(grad_w, dtype=w.dtype)
    if g.shape != w.shape:
        raise ValueError(f"grad_w shape {g.shape} != weights shape {w.shape}")
    out = np.empty_like(w)
    kernel = _softmax_rows_backward_par if _parallel(w) else _softmax_rows_backward_ser
    kernel(_as_rows(w), _as_rows(g), w.dtype.type(scale), _as_rows(out))
    return out


__all__ = ["softmax_rows", "masked_softmax_rows", "softmax_rows_backward"]
