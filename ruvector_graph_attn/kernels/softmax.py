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

``softmax_rows_inplace(x, scale)`` is the same function for score matrices that contain no NaN
and no +inf (-inf is allowed and gets weight 0; an all -inf row gives zeros), computed in
place in one fused pass with a vectorisable polynomial ``exp`` (Numba calls the scalar libm
``exp`` unless Intel SVML is installed, which is ~10x slower per element than a SIMD loop).
The attention layers use it after checking the scores are finite.

``masked_softmax_rows(x, mask, scale)`` is the same with ``mask[r, j] == False`` treated as
-inf (True = attend). ``softmax_rows_backward(w, grad_w, scale)`` is the vector-Jacobian
product ``scale * w * (grad_w - sum_j grad_w * w)`` of the scaled softmax.

Rows are independent and processed in parallel (``prange``). Inputs must be C-contiguous
float32 or float64; outputs have the same dtype.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ..errors import DimensionMismatchError, InvalidInputError
from .dense import as_kernel_array
from .threads import compile_twice, pick

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
_softmax_rows_par, _softmax_rows_ser = compile_twice(_softmax_rows_impl, cache=True, fastmath=_FM)
_masked_softmax_rows_par, _masked_softmax_rows_ser = compile_twice(_masked_softmax_rows_impl, cache=True,
                                                                   fastmath=_FM)
_softmax_rows_backward_par, _softmax_rows_backward_ser = compile_twice(_softmax_rows_backward_impl, cache=True,
                                                                       fastmath=_FM)

#: below this many elements (or with a single row) the serial kernel is used
PARALLEL_MIN_ELEMENTS = 65536


def _work(x: np.ndarray) -> int:
    """Elements of a multi-row ``x`` (a single row is never split over threads)."""
    return x.size if x.ndim == 2 and x.shape[0] > 1 else 0


# -- vectorisable exponential for the in-place fast path ------------------------------------------
# exp(t) for t <= 0: t = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2 so n*ln2_hi is exact),
# exp(r) by its Taylor polynomial (degree 7 in float32, 13 in float64: truncation far below one
# ulp), times 2^n built directly in the exponent bits. For t < -87 (float32) / -708 (float64) the
# value is 0 (its true value is < 1.7e-38 / 3.4e-308, weights that small do not matter).
# Plain arithmetic plus a bit cast, so LLVM vectorises the loop. Measured max relative error:
# 3e-7 in float32, 3e-14 in float64 (the fastmath reassociation the summing loop needs costs the
# last digits of the range reduction for large |t|; for |t| < 30 it is ~1e-15).
_FM_FAST = {"reassoc", "contract", "arcp", "nsz"}  # no nnan/ninf: -inf inputs are meaningful here


@intrinsic
def _f32_from_bits(typingctx, bits):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST, inline="always")
def _exp_nonpos32(t):
    if t < np.float32(-87.0):
        return np.float32(0.0)
    n = np.floor(t * np.float32(1.4426950408889634) + np.float32(0.5))
    r = t - n * np.float32(0.693145751953125) - n * np.float32(1.428606765330187e-06)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * _f32_from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST, inline="always")
def _exp_nonpos64(t):
    if t < -708.0:
        return 0.0
    n = np.floor(t * 1.4426950408889634 + 0.5)
    r = t - n * 6.93147180369123816490e-01 - n * 1.90821492927058770002e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _f64_from_bits(np.int64((np.int64(n) + np.int64(1023)) << np.int64(52)))


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST)
def softmax_vector_fast32(row, mr, scale):
    """Unchecked float32 kernel: softmax of the 1-D C-contiguous ``row`` in place, given its
    maximum ``mr`` (no NaN/+inf in ``row``; ``mr == -inf`` gives zeros). For callers that
    validated already and want no Python wrapper (see :func:`softmax_rows_inplace`). Returns the
    number of -inf entries (weight 0), so a caller that expects none can check without a pass."""
    if mr == -np.inf:
        row[:] = 0
        return row.shape[0]
    n_neginf = 0
    s = np.float32(0.0)
    for j in range(row.shape[0]):
        x = row[j]
        n_neginf += x == -np.inf
        e = _exp_nonpos32(scale * (x - mr))
        row[j] = e
        s += e
    inv = np.float32(1.0) / s
    for j in range(row.shape[0]):
        row[j] *= inv
    return n_neginf


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST)
def softmax_vector_fast64(row, mr, scale):
    """Unchecked float64 kernel; see :func:`softmax_vector_fast32`."""
    if mr == -np.inf:
        row[:] = 0
        return row.shape[0]
    n_neginf = 0
    s = 0.0
    for j in range(row.shape[0]):
        x = row[j]
        n_neginf += x == -np.inf
        e = _exp_nonpos64(scale * (x - mr))
        row[j] = e
        s += e
    inv = 1.0 / s
    for j in range(row.shape[0]):
        row[j] *= inv
    return n_neginf


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST)
def softmax_rows_fast32(x, m, scale):
    """Unchecked float32 kernel: :func:`softmax_vector_fast32` on every row of the 2-D ``x``
    with row maxima ``m``."""
    for r in range(x.shape[0]):
        softmax_vector_fast32(x[r], m[r], scale)


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST)
def softmax_rows_fast64(x, m, scale):
    """Unchecked float64 kernel; see :func:`softmax_rows_fast32`."""
    for r in range(x.shape[0]):
        softmax_vector_fast64(x[r], m[r], scale)


def exp_nonpositive(t: np.ndarray) -> np.ndarray:
    """The vectorised ``exp`` used by :func:`softmax_rows_inplace`, for arrays with ``t <= 0``
    (exposed for its accuracy test)."""
    t = as_kernel_array(t)
    out = np.empty_like(t)
    (_exp_vec32 if t.dtype == np.float32 else _exp_vec64)(t.reshape(-1), out.reshape(-1))
    return out


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST)
def _exp_vec32(t, out):
    for j in range(t.shape[0]):
        out[j] = _exp_nonpos32(t[j])


@njit(cache=True, error_model="numpy", fastmath=_FM_FAST)
def _exp_vec64(t, out):
    for j in range(t.shape[0]):
        out[j] = _exp_nonpos64(t[j])


def _as_rows(x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim != 2:
        raise InvalidInputError(f"softmax kernels take 1-D or 2-D arrays, got shape {x.shape}")
    return x


def softmax_rows(x: np.ndarray, scale: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """Stable softmax of every row of ``x`` (1-D or 2-D) with temperature ``scale`` (> 0).

    ``out`` may be ``x`` itself (in place). Returns an array of ``x``'s shape and dtype.
    """
    x = as_kernel_array(x)
    if out is None:
        out = np.empty_like(x)
    kernel = pick(_softmax_rows_par, _softmax_rows_ser, _work(x), PARALLEL_MIN_ELEMENTS)
    kernel(_as_rows(x), x.dtype.type(scale), _as_rows(out))
    return out


def softmax_rows_inplace(x: np.ndarray, scale: float = 1.0, row_max: np.ndarray | None = None) -> np.ndarray:
    """Stable softmax of every row of the C-contiguous float array ``x`` (1-D or 2-D), in place.

    ``x`` must not contain NaN or +inf (the caller checked); -inf entries get weight 0 and an
    all -inf row becomes all zeros. ``row_max`` may pass the row maxima if the caller already
    has them. Uses the vectorised exponential below; returns ``x``.
    """
    rows = _as_rows(x)
    if rows.dtype.char not in "fd" or not rows.dtype.isnative or not rows.flags.c_contiguous:
        raise InvalidInputError(f"softmax_rows_inplace needs a C-contiguous native float32/float64 array, got {rows.dtype}")
    m = rows.max(axis=1) if row_max is None else np.asarray(row_max, dtype=rows.dtype).reshape(-1)
    kernel = softmax_rows_fast32 if rows.dtype == np.float32 else softmax_rows_fast64
    kernel(rows, np.ascontiguousarray(m), rows.dtype.type(scale))
    return x


def masked_softmax_rows(x: np.ndarray, mask: np.ndarray, scale: float = 1.0,
                        out: np.ndarray | None = None) -> np.ndarray:
    """Softmax of every row over the entries where ``mask`` is True (others get weight 0).

    A row with no True entry is all zeros (see module docstring).
    """
    x = as_kernel_array(x)
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if mask.shape != x.shape:
        raise DimensionMismatchError(x.shape, mask.shape, "mask shape (must equal the scores shape)")
    if out is None:
        out = np.empty_like(x)
    kernel = pick(_masked_softmax_rows_par, _masked_softmax_rows_ser, _work(x), PARALLEL_MIN_ELEMENTS)
    kernel(_as_rows(x), _as_rows(mask), x.dtype.type(scale), _as_rows(out))
    return out


def softmax_rows_backward(w: np.ndarray, grad_w: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Gradient w.r.t. the (unscaled) scores, given the softmax output ``w`` and dL/dw.

    ``d x[r, j] = scale * w[r, j] * (grad_w[r, j] - sum_k grad_w[r, k] * w[r, k])``.
    Rows of zeros (fully masked) get zero gradient.
    """
    w = as_kernel_array(w)
    g = as_kernel_array(grad_w, w.dtype)
    if g.shape != w.shape:
        raise DimensionMismatchError(w.shape, g.shape, "grad_w shape (must equal the weights shape)")
    out = np.empty_like(w)
    kernel = pick(_softmax_rows_backward_par, _softmax_rows_backward_ser, _work(w), PARALLEL_MIN_ELEMENTS)
    kernel(_as_rows(w), _as_rows(g), w.dtype.type(scale), _as_rows(out))
    return out


__all__ = ["softmax_rows", "softmax_rows_inplace", "softmax_vector_fast32", "softmax_vector_fast64",
           "softmax_rows_fast32", "softmax_rows_fast64",
           "exp_nonpositive", "masked_softmax_rows", "softmax_rows_backward"]
