"""Dot products, attention scores and weighted sums.

Dense products are handed to BLAS through ``numpy.matmul`` (a Numba loop cannot beat a
tuned GEMM/GEMV); the per-pair and gathered dot products that BLAS cannot express without
materialising gathered copies are Numba kernels parallel over pairs.

* ``scores(Q, K, scale)``         ``scale * Q @ K.T``      ([B, D] x [N, D] -> [B, N]; a 1-D query gives [N])
* ``weighted_sum(W, V)``          ``W @ V``                ([B, N] x [N, F] -> [B, F]; 1-D weights give [F])
* ``pair_dot(A, B)``              ``out[i] = A[i] . B[i]``
* ``gather_pair_dot(A, B, ia, ib)`` ``out[e] = A[ia[e]] . B[ib[e]]`` (per-edge scores; indices must be in range)

All functions keep the input float dtype (float32 or float64) and expect C-contiguous arrays.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import DimensionMismatchError

_FM = {"reassoc", "contract", "arcp", "nsz"}


def as_kernel_array(x, dtype=None) -> np.ndarray:
    """C-contiguous, native byte order, float32/float64 (other numeric dtypes become float64,
    or ``dtype`` when given): what the compiled kernels accept."""
    x = np.asarray(x)
    if dtype is not None:
        dt = np.dtype(dtype)
    elif x.dtype.kind == "f" and x.dtype.itemsize in (4, 8):
        dt = x.dtype.newbyteorder("=")
    else:
        dt = np.dtype(np.float64)
    return np.ascontiguousarray(x, dtype=dt)


def scores(Q: np.ndarray, K: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``scale * Q @ K.T`` on BLAS. ``Q`` is [D] or [B, D], ``K`` is [N, D]."""
    s = Q @ K.T
    if scale != 1.0:
        s *= s.dtype.type(scale)
    return s


def weighted_sum(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``W @ V`` on BLAS: rows of weights ([N] or [B, N]) times values [N, F]."""
    return W @ V


@njit(cache=True, parallel=True, fastmath=_FM)
def _pair_dot(A, B, out):
    for i in prange(A.shape[0]):
        acc = 0.0
        for j in range(A.shape[1]):
            acc += A[i, j] * B[i, j]
        out[i] = acc


@njit(cache=True, parallel=True, fastmath=_FM)
def _gather_pair_dot(A, B, ia, ib, out):
    for e in prange(ia.shape[0]):
        a = ia[e]
        b = ib[e]
        acc = 0.0
        for j in range(A.shape[1]):
            acc += A[a, j] * B[b, j]
        out[e] = acc


def pair_dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two [N, D] arrays -> [N] (accumulated in float64)."""
    A = as_kernel_array(A)
    B = as_kernel_array(B, A.dtype)
    if A.ndim != 2 or A.shape != B.shape:
        raise DimensionMismatchError(A.shape, B.shape, "pair_dot operand shapes (two equal-shape 2-D arrays)")
    out = np.empty(A.shape[0], dtype=A.dtype)
    _pair_dot(A, B, out)
    return out


def gather_pair_dot(A: np.ndarray, B: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """``out[e] = A[ia[e]] . B[ib[e]]`` without materialising ``A[ia]`` / ``B[ib]``.

    ``ia``/``ib`` are int64 index arrays of equal length; the caller guarantees they are in range
    (public entries check them with :func:`ruvector_graph_attn.validation.check_edge_index`).
    """
    A = as_kernel_array(A)
    B = as_kernel_array(B, A.dtype)
    ia = np.ascontiguousarray(ia, dtype=np.int64)
    ib = np.ascontiguousarray(ib, dtype=np.int64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
        raise DimensionMismatchError(A.shape, B.shape, "gather_pair_dot operand shapes ([*, D] arrays with equal D)")
    if ia.shape != ib.shape or ia.ndim != 1:
        raise DimensionMismatchError(ia.shape, ib.shape, "gather_pair_dot index shapes (1-D, equal length)")
    out = np.empty(ia.shape[0], dtype=A.dtype)
    _gather_pair_dot(A, B, ia, ib, out)
    return out


__all__ = ["scores", "weighted_sum", "pair_dot", "gather_pair_dot", "as_kernel_array"]
