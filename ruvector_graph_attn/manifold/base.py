"""Common base of the manifolds: input conversion, broadcasting checks, dtype handling.

Every manifold works on the last axis of its arguments and broadcasts the leading axes
with numpy rules (``[N, D]`` against ``[D]`` is the common case). float32 and float64 are
both kept; mixed inputs are computed in the wider type; integers become float32.
Points are checked to lie on the manifold; a point off the manifold raises
:class:`~ruvector_graph_attn.errors.InvalidInputError` -- nothing is projected unless the
caller calls :meth:`Manifold.proj`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..validation import as_float_array


def _sq_norm(x: np.ndarray, keepdims: bool = True) -> np.ndarray:
    return np.sum(x * x, axis=-1, keepdims=keepdims)


def _dot(x: np.ndarray, y: np.ndarray, keepdims: bool = True) -> np.ndarray:
    return np.sum(x * y, axis=-1, keepdims=keepdims)


def _norm(x: np.ndarray, keepdims: bool = True) -> np.ndarray:
    return np.sqrt(_sq_norm(x, keepdims))


class Manifold(ABC):
    """A Riemannian manifold embedded in R^D, operating on the last axis."""

    #: short name used in configs and reprs
    name: str = "manifold"

    # ----------------------------------------------------------------- conversion helpers
    @property
    def dim(self) -> int | None:
        """Fixed ambient dimension, or ``None`` when any dimension works."""
        return None

    def _array(self, x: Any, name: str, finite: bool = True) -> np.ndarray:
        arr = as_float_array(x, name, finite=finite)
        if arr.ndim == 0:
            raise InvalidInputError(f"{name} must have at least one axis (the coordinates), got a scalar")
        if self.dim is not None and arr.shape[-1] != self.dim:
            raise DimensionMismatchError(self.dim, arr.shape[-1], f"{name} last axis ({self.name} dimension)")
        return arr

    def _common(self, *named: tuple[Any, str]) -> list[np.ndarray]:
        """Convert several arguments, check they broadcast and share the last axis, unify dtype."""
        arrs = [self._array(x, n) for x, n in named]
        last = arrs[0].shape[-1]
        for a, (_, n) in zip(arrs[1:], named[1:]):
            if a.shape[-1] != last:
                raise DimensionMismatchError(last, a.shape[-1], f"{n} last axis (must equal {named[0][1]}'s)")
        try:
            np.broadcast_shapes(*(a.shape for a in arrs))
        except ValueError as exc:
            shapes = ", ".join(f"{n}{a.shape}" for a, (_, n) in zip(arrs, named))
            raise InvalidInputError(f"shapes do not broadcast: {shapes}") from exc
        dt = np.result_type(*arrs)
        return [a.astype(dt, copy=False) for a in arrs]

    def _points(self, *named: tuple[Any, str]) -> list[np.ndarray]:
        arrs = self._common(*named)
        for a, (_, n) in zip(arrs, named):
            self._check_point(a, n)
        return arrs

    # ------------------------------------------------------------------------ interface
    @abstractmethod
    def _check_point(self, x: np.ndarray, name: str) -> None:
        """Raise InvalidInputError when ``x`` is not on the manifold."""

    def check_point(self, x: Any, name: str = "x") -> np.ndarray:
        """Validate that ``x`` holds points on the manifold and return it as an array."""
        arr = self._array(x, name)
        self._check_point(arr, name)
        return arr

    def is_on_manifold(self, x: Any) -> np.ndarray:
        """Boolean per row: whether the point lies on the manifold (no error raised)."""
        arr = self._array(x, "x")
        return self._on_manifold_mask(arr)

    @abstractmethod
    def _on_manifold_mask(self, x: np.ndarray) -> np.ndarray:
        ...

    @abstractmethod
    def dist(self, x: Any, y: Any) -> np.ndarray:
        """Geodesic distance between ``x`` and ``y`` (broadcast over leading axes)."""

    @abstractmethod
    def inner(self, base: Any, u: Any, v: Any) -> np.ndarray:
        """Riemannian inner product of tangent vectors ``u``, ``v`` at ``base``."""

    def norm(self, base: Any, u: Any) -> np.ndarray:
        """Riemannian norm of the tangent vector ``u`` at ``base``."""
        return np.sqrt(np.maximum(self.inner(base, u, u), 0))

    @abstractmethod
    def expmap(self, x: Any, u: Any) -> np.ndarray:
        """Exponential map: the point reached from ``x`` along the geodesic with velocity ``u``."""

    @abstractmethod
    def logmap(self, x: Any, y: Any) -> np.ndarray:
        """Logarithmic map: the tangent vector at ``x`` pointing to ``y`` (inverse of expmap)."""

    @abstractmethod
    def expmap0(self, u: Any) -> np.ndarray:
        """Exponential map at the manifold's origin."""

    @abstractmethod
    def logmap0(self, y: Any) -> np.ndarray:
        """Logarithmic map at the manifold's origin."""

    @abstractmethod
    def proj(self, x: Any) -> np.ndarray:
        """Project arbitrary finite points onto the manifold (explicit, never implicit)."""

    def proju(self, x: Any, u: Any) -> np.ndarray:
        """Project ``u`` onto the tangent space at ``x`` (identity unless overridden)."""
        x, u = self._common((x, "x"), (u, "u"))
        self._check_point(x, "x")
        return np.ascontiguousarray(np.broadcast_to(u, np.broadcast_shapes(x.shape, u.shape)))

    @abstractmethod
    def transp(self, x: Any, y: Any, v: Any) -> np.ndarray:
        """Parallel transport of ``v`` from the tangent space at ``x`` to the one at ``y``."""

    @abstractmethod
    def curvature(self) -> Any:
        """Sectional curvature (a float; a tuple of floats for a product)."""

    @abstractmethod
    def origin(self, dim: int, dtype: Any = np.float32) -> np.ndarray:
        """The base point used by expmap0 / logmap0, in ``dim`` coordinates."""

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description (used by configs and checkpoints)."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({args})"


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise InvalidInputError naming the first NaN/Inf entry of ``x``."""
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise InvalidInputError(
            f"{name} contains NaN or Inf (first at index {tuple(int(i) for i in bad)}); expected finite values"
        )
