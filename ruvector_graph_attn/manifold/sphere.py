"""The sphere of radius ``r`` in R^D: ``{x : |x| = r}`` (sectional curvature ``1/r^2``).

Distances use the angle ``2 * atan2(|x - y|, |x + y|)`` (times ``r``), which is exact at
``x == y`` and accurate for near and antipodal points. (geoopt's ``Sphere`` clamps the
cosine to ``1 - 1e-4`` in float32 before ``acos``, which makes ``d(x, x) = 0.014``; we do not.)
``expmap``/``logmap``/``transp`` are the closed forms of the round sphere; below a
dtype-dependent norm (1e-4 float32, 1e-7 float64, as geoopt) ``expmap`` falls back to the
retraction ``proj(x + u)`` and ``logmap`` to the projected difference.

The origin used by ``expmap0``/``logmap0`` is the pole ``r * e_0`` (first coordinate).
Points are checked to be on the sphere within a relative tolerance (1e-4 float32,
1e-6 float64); use :meth:`Sphere.proj` to normalise explicitly.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..kernels import manifold as _k
from ..validation import check_positive_float
from .base import Manifold, _dot, _norm, check_finite

#: relative tolerance on |x| = r when checking points
ON_SPHERE_TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-6}
#: below this tangent norm expmap/logmap use first-order formulas (geoopt's EPS)
SMALL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-7}

KERNEL_MIN_ROWS = 256


class Sphere(Manifold):
    """Round sphere of radius ``radius`` (curvature ``1 / radius**2``)."""

    name = "sphere"

    def __init__(self, radius: float = 1.0):
        self.radius = check_positive_float(radius, "radius")

    def curvature(self) -> float:
        return 1.0 / (self.radius * self.radius)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "radius": self.radius}

    def origin(self, dim: int, dtype: Any = np.float32) -> np.ndarray:
        o = np.zeros(int(dim), dtype=dtype)
        o[0] = self.radius
        return o

    def _on_manifold_mask(self, x: np.ndarray) -> np.ndarray:
        tol = ON_SPHERE_TOL.get(x.dtype, 1e-6)
        return np.abs(np.sqrt(np.einsum("...i,...i->...", x, x)) - self.radius) <= tol * self.radius

    def _check_point(self, x: np.ndarray, name: str) -> None:
        ok = self._on_manifold_mask(x)
        if not np.all(ok):
            check_finite(x, name)
            bad = tuple(int(i) for i in np.argwhere(~np.atleast_1d(ok))[0])
            row = x[bad] if x.ndim > 1 else x
            where = f" (row {bad if len(bad) > 1 else bad[0]})" if x.ndim > 1 else ""
            raise InvalidInputError(
                f"{name}{where} is not on the sphere of radius {self.radius:g}: norm "
                f"{float(np.linalg.norm(row)):.6g}. Call Sphere.proj(x) to normalise explicitly."
            )

    def proj(self, x: Any) -> np.ndarray:
        """``r * x / |x|``; zero rows cannot be projected and raise."""
        arr = self._array(x, "x")
        n = _norm(arr)
        if (n == 0).any():
            raise InvalidInputError("x has a zero row, which has no projection onto the sphere")
        return np.ascontiguousarray(self.radius * arr / n)

    def proju(self, x: Any, u: Any) -> np.ndarray:
        """``u - <x, u> / r^2 * x``."""
        x, u = self._common((x, "x"), (u, "u"))
        self._check_point(x, "x")
        return np.ascontiguousarray(u - _dot(x, u) / self.radius**2 * x)

    def inner(self, base: Any, u: Any, v: Any) -> np.ndarray:
        base, u, v = self._common((base, "base"), (u, "u"), (v, "v"))
        self._check_point(base, "base")
        out = _dot(u, v, keepdims=False)
        return np.broadcast_to(out, np.broadcast_shapes(base.shape, u.shape, v.shape)[:-1]).copy()

    def _angle(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 2.0 * np.arctan2(_norm(x - y, keepdims=False), _norm(x + y, keepdims=False))

    def dist(self, x: Any, y: Any) -> np.ndarray:
        """``r * angle(x, y)``; one point vs many rows runs on a Numba kernel."""
        if np.ndim(x) == 1 and np.ndim(y) == 2 and np.shape(y)[0] >= KERNEL_MIN_ROWS:
            return self._dist_one_to_many(x, y, "x", "y")
        if np.ndim(y) == 1 and np.ndim(x) == 2 and np.shape(x)[0] >= KERNEL_MIN_ROWS:
            return self._dist_one_to_many(y, x, "y", "x")
        x, y = self._points((x, "x"), (y, "y"))
        return (self.radius * self._angle(x, y)).astype(x.dtype, copy=False)

    def _dist_one_to_many(self, q: Any, pts: Any, qname: str, pname: str) -> np.ndarray:
        """Kernel path: one Numba pass over the points (validating them), then vectorised atan2."""
        q = self.check_point(q, qname)
        p = self._array(pts, pname, finite=False)
        if p.shape[-1] != q.shape[-1]:
            raise DimensionMismatchError(q.shape[-1], p.shape[-1], f"{pname} last axis (must equal {qname}'s)")
        dt = np.result_type(q, p)
        q, p = q.astype(dt, copy=False), p.astype(dt, copy=False)
        dm, dp = _k.call(_k.sphere_sq_terms, p.size, q, p)
        q2 = float(q.astype(np.float64) @ q)
        norm = np.sqrt(np.maximum((dm + dp) * 0.5 - q2, 0))
        if not np.all(np.abs(norm - self.radius) <= ON_SPHERE_TOL.get(dt, 1e-6) * self.radius):
            self._check_point(p, pname)
            raise InvalidInputError(f"{pname} contains points that are not on the sphere")
        out = np.arctan2(np.sqrt(dm), np.sqrt(dp))
        out *= 2.0 * self.radius
        return out

    def _exp(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        r = self.radius
        small = SMALL.get(np.result_type(x, u), 1e-7)
        n = _norm(u)
        safe = np.maximum(n, small)
        exp = np.cos(n / r) * x + r * np.sin(n / r) * (u / safe)
        retr = x + u
        y = np.where(n > small, exp, retr)
        return np.ascontiguousarray(r * y / _norm(y))

    def expmap(self, x: Any, u: Any) -> np.ndarray:
        """``cos(|u|/r) x + r sin(|u|/r) u/|u|`` (``u`` tangent at ``x``), renormalised to radius r."""
        x, u = self._common((x, "x"), (u, "u"))
        self._check_point(x, "x")
        return self._exp(x, u)

    def _log(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        small = SMALL.get(x.dtype, 1e-7)
        u = (y - x) - _dot(x, y - x) / self.radius**2 * x
        d = (self.radius * self._angle(x, y))[..., None]
        scaled = u * d / np.maximum(_norm(u), small)
        return np.ascontiguousarray(np.where(d > small, scaled, u))

    def logmap(self, x: Any, y: Any) -> np.ndarray:
        x, y = self._points((x, "x"), (y, "y"))
        return self._log(x, y)

    def expmap0(self, u: Any) -> np.ndarray:
        """``expmap`` at the pole ``r e_0``; the first coordinate of ``u`` (normal there) is dropped."""
        u = self._array(u, "u")
        o = self.origin(u.shape[-1], u.dtype)
        ut = u.copy()
        ut[..., 0] = 0
        return self._exp(o, ut)

    def logmap0(self, y: Any) -> np.ndarray:
        (y,) = self._points((y, "y"))
        return self._log(self.origin(y.shape[-1], y.dtype), y)

    def transp(self, x: Any, y: Any, v: Any) -> np.ndarray:
        """Parallel transport along the minimal geodesic: ``v - <y, v>/(r^2 + <x, y>) (x + y)``."""
        x, y, v = self._common((x, "x"), (y, "y"), (v, "v"))
        self._check_point(x, "x")
        self._check_point(y, "y")
        den = self.radius**2 + _dot(x, y)
        if (den <= 1e-12 * self.radius**2).any():
            raise InvalidInputError("transp between antipodal points is not defined (no unique geodesic)")
        return np.ascontiguousarray(v - _dot(y, v) / den * (x + y))
