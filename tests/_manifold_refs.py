"""Independent float64 numpy references for the Poincaré ball, shared by the manifold and
geometric-attention tests (written from the published formulas, not from the library)."""
from __future__ import annotations

import numpy as np


def ref_madd(x, y, c):
    """Möbius addition written from Ganea et al. (2018), eq. (2), with curvature -c."""
    xy = np.sum(x * y, -1, keepdims=True)
    x2 = np.sum(x * x, -1, keepdims=True)
    y2 = np.sum(y * y, -1, keepdims=True)
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c**2 * x2 * y2)


def ref_dist(x, y, c):
    """Closed form d = arccosh(1 + 2c|x-y|^2 / ((1-c|x|^2)(1-c|y|^2))) / sqrt(c)."""
    num = 2 * c * np.sum((x - y) ** 2, -1)
    den = (1 - c * np.sum(x * x, -1)) * (1 - c * np.sum(y * y, -1))
    return np.arccosh(1 + num / den) / np.sqrt(c)


def ref_lambda(x, c):
    return 2 / (1 - c * np.sum(x * x, -1, keepdims=True))


def ref_expmap(x, u, c):
    n = np.linalg.norm(u, axis=-1, keepdims=True)
    sc = np.sqrt(c)
    return ref_madd(x, np.tanh(sc * ref_lambda(x, c) * n / 2) * u / (sc * n), c)


def ref_logmap(x, y, c):
    s = ref_madd(-x, y, c)
    n = np.linalg.norm(s, axis=-1, keepdims=True)
    sc = np.sqrt(c)
    return 2 / (sc * ref_lambda(x, c)) * np.arctanh(sc * n) * s / n
