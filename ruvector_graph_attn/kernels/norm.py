"""Layer normalisation over the last axis (Numba, parallel over rows).

Forward, for each row ``x`` of length ``F`` (``torch.nn.functional.layer_norm`` semantics:
biased variance, ``eps`` inside the square root)::

    mean = sum(x) / F
    var  = sum((x - mean)^2) / F
    xhat = (x - mean) * rstd,        rstd = 1 / sqrt(var + eps)
    y    = xhat * gamma + beta

Backward, given ``dy`` (with ``g = dy * gamma``)::

    dx     = rstd * (g - mean(g) - xhat * mean(g * xhat))
    dgamma = sum over rows of dy * xhat
    dbeta  = sum over rows of dy

The variance is computed in two passes (mean first) in float64 accumulators, so rows with a
large common offset do not lose precision. Inputs are 2-D C-contiguous float arrays
(reshape ``[..., F]`` to ``[-1, F]`` first); ``gamma`` and ``beta`` are [F].
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import DimensionMismatchError, InvalidInputError
from .dense import as_kernel_array

_FM = {"reassoc", "contract", "arcp", "nsz"}


@njit(cache=True, parallel=True, fastmath=_FM)
def _layer_norm_forward(x, gamma, beta, eps, y, xhat, rstd):
    n, f = x.shape
    for r in prange(n):
        s = 0.0
        for j in range(f):
            s += x[r, j]
        mean = s / f
        v = 0.0
        for j in range(f):
            d = x[r, j] - mean
            v += d * d
        rs = 1.0 / np.sqrt(v / f + eps)
        rstd[r] = rs
        for j in range(f):
            h = (x[r, j] - mean) * rs
            xhat[r, j] = h
            y[r, j] = h * gamma[j] + beta[j]


@njit(cache=True, parallel=True, fastmath=_FM)
def _layer_norm_backward(dy, xhat, rstd, gamma, dx):
    n, f = dy.shape
    for r in prange(n):
        mg = 0.0
        mgx = 0.0
        for j in range(f):
            g = dy[r, j] * gamma[j]
            mg += g
            mgx += g * xhat[r, j]
        mg /= f
        mgx /= f
        for j in range(f):
            dx[r, j] = rstd[r] * (dy[r, j] * gamma[j] - mg - xhat[r, j] * mgx)


def layer_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5):
    """Returns ``(y, xhat, rstd)``; keep ``xhat`` and ``rstd`` for :func:`layer_norm_backward`."""
    x = as_kernel_array(x)
    if x.ndim != 2:
        raise InvalidInputError(f"layer_norm_forward takes a 2-D array [rows, features], got shape {x.shape}")
    gamma = as_kernel_array(gamma, x.dtype)
    beta = as_kernel_array(beta, x.dtype)
    if gamma.shape != (x.shape[1],) or beta.shape != (x.shape[1],):
        raise DimensionMismatchError((x.shape[1],), (gamma.shape, beta.shape), "gamma/beta shape")
    y = np.empty_like(x)
    xhat = np.empty_like(x)
    rstd = np.empty(x.shape[0], dtype=x.dtype)
    _layer_norm_forward(x, gamma, beta, float(eps), y, xhat, rstd)
    return y, xhat, rstd


def layer_norm_backward(dy: np.ndarray, xhat: np.ndarray, rstd: np.ndarray, gamma: np.ndarray):
    """Returns ``(dx, dgamma, dbeta)`` for the forward that produced ``xhat``/``rstd``."""
    xhat = as_kernel_array(xhat)
    dy = as_kernel_array(dy, xhat.dtype)
    if dy.shape != xhat.shape:
        raise DimensionMismatchError(xhat.shape, dy.shape, "dy shape (must equal the forward shape)")
    gamma = as_kernel_array(gamma, xhat.dtype)
    rstd = as_kernel_array(rstd, xhat.dtype)
    dx = np.empty_like(xhat)
    _layer_norm_backward(dy, xhat, rstd, gamma, dx)
    dgamma = np.einsum("ij,ij->j", dy, xhat)
    dbeta = dy.sum(axis=0)
    return dx, dgamma, dbeta


__all__ = ["layer_norm_forward", "layer_norm_backward"]
