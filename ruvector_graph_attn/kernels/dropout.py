"""Dropout masks from a counter-based generator, fused with the inverted-dropout scale.

A mask bit is a pure function of ``(seed, element index)``: with the two 32-bit halves
``k1, k2`` of the 64-bit ``seed``, element ``k`` draws the 32-bit word

    u_k = fmix32(((fmix32(lo32(k) xor k1) + k2 + hi32(k) * 0x9E3779B9) mod 2**32)

(``fmix32`` is MurmurHash3's finaliser, a bijection of 32-bit words with full avalanche)
and keeps its value when ``u_k >= threshold = round(p * 2**32)``: probability ``1 - p`` up
to ``2**-32``. No mask array is drawn or stored: the forward pass writes
``x * keep * scale`` directly and the backward pass regenerates the same bits from the seed.
The arithmetic is 32-bit wide, so the loop vectorises and runs at memory speed; the
result does not depend on the thread count.

API (flat C-contiguous float arrays; the callers reshape):

``dropout_apply(x, seed, threshold, scale) -> y``   ``y[k] = x[k] * scale`` if kept else 0
``dropout_scale(n, seed, threshold, scale, dtype) -> s``  the mask times the scale as a
    float array (for per-edge attention dropout, whose mask is used several times)
``dropout_threshold(p) -> int``                      the integer threshold of probability ``p``
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["dropout_apply", "dropout_scale", "dropout_threshold"]


def dropout_threshold(p: float) -> int:
    """``round(p * 2**32)`` clipped to ``[0, 2**32 - 1]``: a word ``u`` is dropped when
    ``u < threshold`` (``p == 1`` is the caller's case: everything is dropped)."""
    return int(min(max(round(float(p) * 4294967296.0), 0), 4294967295))


@njit(inline="always")
def _fmix32(h):
    # 32-bit arithmetic carried in uint64 (Numba widens small integers) with explicit masks
    m = np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & m
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & m
    return h ^ (h >> np.uint64(16))


@njit(inline="always")
def _word(k, k1, k2):
    m = np.uint64(0xFFFFFFFF)
    u = np.uint64(k)
    return _fmix32((_fmix32((u & m) ^ k1) + k2 + (u >> np.uint64(32)) * np.uint64(0x9E3779B9)) & m)


@njit(cache=True, parallel=True, fastmath=True)
def _dropout_apply(x, out, k1, k2, threshold, scale):
    t = np.uint64(threshold)
    sc = out.dtype.type(scale)
    for k in prange(x.shape[0]):
        out[k] = x[k] * sc * (_word(k, k1, k2) >= t)
    return out


@njit(cache=True, parallel=True, fastmath=True)
def _dropout_scale(out, k1, k2, threshold, scale):
    t = np.uint64(threshold)
    sc = out.dtype.type(scale)
    for k in prange(out.shape[0]):
        out[k] = sc * (_word(k, k1, k2) >= t)
    return out


def _keys(seed: int) -> tuple[np.uint64, np.uint64]:
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(s & 0xFFFFFFFF), np.uint64(s >> 32)


def dropout_apply(x: np.ndarray, seed: int, threshold: int, scale: float) -> np.ndarray:
    """Inverted dropout of the flat C-contiguous array ``x`` (see the module docstring)."""
    k1, k2 = _keys(seed)
    return _dropout_apply(x, np.empty_like(x), k1, k2, np.uint64(threshold), float(scale))


def dropout_scale(n: int, seed: int, threshold: int, scale: float, dtype=np.float32) -> np.ndarray:
    """The flat ``[n]`` array ``keep * scale`` of the mask :func:`dropout_apply` uses for ``seed``."""
    k1, k2 = _keys(seed)
    return _dropout_scale(np.empty(int(n), dtype=dtype), k1, k2, np.uint64(threshold), float(scale))
