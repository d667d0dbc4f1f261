"""Product manifold M_1 x ... x M_k: the last axis is split into blocks of ``dims``.

Distance is the l2 combination of the component distances,
``d(x, y) = sqrt(sum_i d_i(x_i, y_i)^2)``; the inner product is the sum of the component
inner products; expmap/logmap/proj/transp act blockwise. ``curvature()`` returns the tuple
of component curvatures.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..validation import check_int
from .base import Manifold


class Product(Manifold):
    """Cartesian product of manifolds; ``dims[i]`` coordinates belong to ``manifolds[i]``."""

    name = "product"

    def __init__(self, manifolds: Sequence[Manifold], dims: Sequence[int]):
        manifolds = list(manifolds)
        dims = list(dims)
        if not manifolds:
            raise InvalidInputError("Product needs at least one component manifold")
        for m in manifolds:
            if not isinstance(m, Manifold):
                raise InvalidInputError(f"Product components must be manifolds, got {type(m).__name__}")
        if len(dims) != len(manifolds):
            raise InvalidInputError(
                f"Product got {len(manifolds)} manifolds but {len(dims)} dims; give one dimension per manifold"
            )
        for d in dims:
            check_int(d, f"each of the Product dims {dims!r}", lo=1)
        for m, d in zip(manifolds, dims):
            if m.dim is not None and m.dim != int(d):
                raise InvalidInputError(f"component {m!r} has dimension {m.dim} but dims says {d}")
        self.manifolds = manifolds
        self.dims = [int(d) for d in dims]
        self._bounds = np.cumsum([0] + self.dims)

    @property
    def dim(self) -> int:
        return int(self._bounds[-1])

    def _split(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.ascontiguousarray(x[..., self._bounds[i]:self._bounds[i + 1]]) for i in range(len(self.dims))]

    def curvature(self) -> tuple:
        return tuple(m.curvature() for m in self.manifolds)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "manifolds": [m.describe() for m in self.manifolds], "dims": list(self.dims)}

    def origin(self, dim: int | None = None, dtype: Any = np.float32) -> np.ndarray:
        if dim is not None and int(dim) != self.dim:
            raise InvalidInputError(f"Product origin has dimension {self.dim}, asked for {dim}")
        return np.concatenate([m.origin(d, dtype) for m, d in zip(self.manifolds, self.dims)])

    def _on_manifold_mask(self, x: np.ndarray) -> np.ndarray:
        masks = [m._on_manifold_mask(p) for m, p in zip(self.manifolds, self._split(x))]
        return np.logical_and.reduce(masks)

    def _check_point(self, x: np.ndarray, name: str) -> None:
        for i, (m, p) in enumerate(zip(self.manifolds, self._split(x))):
            m._check_point(p, f"{name}[component {i}: {m.name}]")

    def _blockwise(self, method: str, *arrs: np.ndarray) -> np.ndarray:
        parts = [list(self._split(a)) for a in arrs]
        outs = [getattr(m, method)(*(p[i] for p in parts)) for i, m in enumerate(self.manifolds)]
        return np.ascontiguousarray(np.concatenate(outs, axis=-1))

    def dist(self, x: Any, y: Any) -> np.ndarray:
        x, y = self._points((x, "x"), (y, "y"))
        sq = sum(np.asarray(m.dist(a, b)) ** 2
                 for m, a, b in zip(self.manifolds, self._split(x), self._split(y)))
        return np.sqrt(sq).astype(x.dtype, copy=False)

    def component_dists(self, x: Any, y: Any) -> np.ndarray:
        """Component distances stacked on a new last axis: ``[..., k]``."""
        x, y = self._points((x, "x"), (y, "y"))
        return np.stack([m.dist(a, b) for m, a, b in zip(self.manifolds, self._split(x), self._split(y))], axis=-1)

    def inner(self, base: Any, u: Any, v: Any) -> np.ndarray:
        base, u, v = self._common((base, "base"), (u, "u"), (v, "v"))
        return sum(m.inner(b, a, c) for m, b, a, c in
                   zip(self.manifolds, self._split(base), self._split(u), self._split(v)))

    def proj(self, x: Any) -> np.ndarray:
        return self._blockwise("proj", self._array(x, "x"))

    def proju(self, x: Any, u: Any) -> np.ndarray:
        x, u = self._common((x, "x"), (u, "u"))
        shape = np.broadcast_shapes(x.shape, u.shape)
        return self._blockwise("proju", np.broadcast_to(x, shape), np.broadcast_to(u, shape))

    def expmap(self, x: Any, u: Any) -> np.ndarray:
        x, u = self._common((x, "x"), (u, "u"))
        shape = np.broadcast_shapes(x.shape, u.shape)
        return self._blockwise("expmap", np.broadcast_to(x, shape), np.broadcast_to(u, shape))

    def logmap(self, x: Any, y: Any) -> np.ndarray:
        x, y = self._common((x, "x"), (y, "y"))
        shape = np.broadcast_shapes(x.shape, y.shape)
        return self._blockwise("logmap", np.broadcast_to(x, shape), np.broadcast_to(y, shape))

    def expmap0(self, u: Any) -> np.ndarray:
        return self._blockwise("expmap0", self._array(u, "u"))

    def logmap0(self, y: Any) -> np.ndarray:
        return self._blockwise("logmap0", self._array(y, "y"))

    def transp(self, x: Any, y: Any, v: Any) -> np.ndarray:
        x, y, v = self._common((x, "x"), (y, "y"), (v, "v"))
        shape = np.broadcast_shapes(x.shape, y.shape, v.shape)
        return self._blockwise("transp", *(np.broadcast_to(a, shape) for a in (x, y, v)))
