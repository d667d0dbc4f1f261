"""Flat space R^D (curvature 0): the identity case of every manifold operation."""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Manifold, _dot, _norm


class Euclidean(Manifold):
    """R^D with the standard inner product."""

    name = "euclidean"

    def curvature(self) -> float:
        return 0.0

    def origin(self, dim: int, dtype: Any = np.float32) -> np.ndarray:
        return np.zeros(int(dim), dtype=dtype)

    def _on_manifold_mask(self, x: np.ndarray) -> np.ndarray:
        return np.isfinite(x).all(axis=-1)

    def _check_point(self, x: np.ndarray, name: str) -> None:
        # every finite vector is a point; finiteness is checked on conversion
        return None

    def proj(self, x: Any) -> np.ndarray:
        return self._array(x, "x").copy()

    def dist(self, x: Any, y: Any) -> np.ndarray:
        x, y = self._common((x, "x"), (y, "y"))
        return _norm(x - y, keepdims=False)

    def inner(self, base: Any, u: Any, v: Any) -> np.ndarray:
        base, u, v = self._common((base, "base"), (u, "u"), (v, "v"))
        out = _dot(u, v, keepdims=False)
        return np.broadcast_to(out, np.broadcast_shapes(base.shape, u.shape, v.shape)[:-1]).copy()

    def expmap(self, x: Any, u: Any) -> np.ndarray:
        x, u = self._common((x, "x"), (u, "u"))
        return np.ascontiguousarray(x + u)

    def logmap(self, x: Any, y: Any) -> np.ndarray:
        x, y = self._common((x, "x"), (y, "y"))
        return np.ascontiguousarray(y - x)

    def expmap0(self, u: Any) -> np.ndarray:
        return self._array(u, "u").copy()

    def logmap0(self, y: Any) -> np.ndarray:
        return self._array(y, "y").copy()

    def transp(self, x: Any, y: Any, v: Any) -> np.ndarray:
        x, y, v = self._common((x, "x"), (y, "y"), (v, "v"))
        return np.ascontiguousarray(np.broadcast_to(v, np.broadcast_shapes(x.shape, y.shape, v.shape)))
