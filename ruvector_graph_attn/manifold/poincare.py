"""The Poincaré ball of curvature ``-c``: ``{x in R^D : c * |x|^2 < 1}``.

Formulas are the gyrovector ones used by geoopt's ``PoincareBall`` (sectional curvature
``k = -c``), including its numerical guards:

* ``artanh`` argument clamped to ``[-1 + 1e-7, 1 - 1e-7]``, ``tanh`` argument to ``[-15, 15]``;
* norms clamped below at ``1e-15``, the Möbius-addition denominator and the conformal
  factor's denominator at ``1e-15``;
* results of ``expmap``, ``expmap0``, ``mobius_add``, ``mobius_scalar_mul`` and
  ``mobius_matvec`` are projected to norm ``(1 - eps) / sqrt(c)`` (``eps`` = 4e-3 for
  float32, 1e-5 for float64) unless ``project=False``, as geoopt does.

Input points are *checked*: a point with ``c * |x|^2 >= 1`` raises
:class:`~ruvector_graph_attn.errors.InvalidInputError`. Use :meth:`PoincareBall.proj` to pull
arbitrary vectors inside explicitly.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..kernels import manifold as _k
from ..validation import as_float_array, check_positive_float
from .base import Manifold, _dot, _norm, _sq_norm, check_finite

#: projection margin per dtype (geoopt's values): points are kept at norm <= (1 - eps) / sqrt(c)
PROJ_EPS = {np.dtype(np.float32): 4e-3, np.dtype(np.float64): 1e-5}

#: one-to-many distance calls with at least this many rows go to the Numba kernel
KERNEL_MIN_ROWS = 256


def _check_c(c: Any) -> float:
    return check_positive_float(c, "c", note=" (curvature is -c)")


class PoincareBall(Manifold):
    """Poincaré ball model of hyperbolic space with curvature ``-c`` (``c > 0``)."""

    name = "poincare"

    def __init__(self, c: float = 1.0):
        self.c = _check_c(c)
        self.sqrt_c = math.sqrt(self.c)

    # --------------------------------------------------------------------------- helpers
    def _tan_k(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(np.clip(self.sqrt_c * x, -_k.TANH_CLAMP, _k.TANH_CLAMP)) / self.sqrt_c

    def _artan_k(self, x: np.ndarray) -> np.ndarray:
        z = np.clip(self.sqrt_c * x, -1 + _k.ARTANH_CLAMP, 1 - _k.ARTANH_CLAMP)
        return 0.5 * (np.log1p(z) - np.log1p(-z)) / self.sqrt_c

    def _lambda(self, x: np.ndarray, keepdims: bool = True) -> np.ndarray:
        return 2.0 / np.maximum(1.0 - self.c * _sq_norm(x, keepdims), _k.DENOM_MIN)

    def _madd(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        c = self.c
        x2 = _sq_norm(x)
        y2 = _sq_norm(y)
        xy = _dot(x, y)
        num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
        den = 1 + 2 * c * xy + c * c * x2 * y2
        return num / np.maximum(den, _k.DENOM_MIN)

    def _project(self, x: np.ndarray, eps: float | None = None) -> np.ndarray:
        if eps is None:
            eps = PROJ_EPS.get(x.dtype, 1e-5)
        maxnorm = (1 - eps) / self.sqrt_c
        n = np.maximum(_norm(x), _k.NORM_MIN)
        return np.ascontiguousarray(np.where(n > maxnorm, x / n * maxnorm, x))

    def _maybe_project(self, x: np.ndarray, project: bool) -> np.ndarray:
        return self._project(x) if project else np.ascontiguousarray(x)

    def _on_manifold_mask(self, x: np.ndarray) -> np.ndarray:
        return self.c * np.einsum("...i,...i->...", x, x) < 1.0

    def _check_point(self, x: np.ndarray, name: str) -> None:
        ok = self._on_manifold_mask(x)
        if not np.all(ok):
            check_finite(x, name)
        if not np.all(ok):
            bad = np.argwhere(~np.atleast_1d(ok))[0]
            idx = tuple(int(i) for i in bad) if x.ndim > 1 else ()
            norm = float(np.sqrt(_sq_norm(x[idx] if idx else x, keepdims=False)))
            where = f" (row {idx if len(idx) > 1 else idx[0]})" if idx else ""
            raise InvalidInputError(
                f"{name}{where} is outside the Poincaré ball: norm {norm:.6g} >= 1/sqrt(c) = "
                f"{1 / self.sqrt_c:.6g} (c = {self.c:g}); points must satisfy c*|x|^2 < 1. "
                "Call PoincareBall.proj(x) to project explicitly."
            )

    # ------------------------------------------------------------------------ interface
    def curvature(self) -> float:
        """Sectional curvature ``-c``."""
        return -self.c

    def origin(self, dim: int, dtype: Any = np.float32) -> np.ndarray:
        return np.zeros(int(dim), dtype=dtype)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "c": self.c}

    def proj(self, x: Any, eps: float | None = None) -> np.ndarray:
        """Scale rows with norm above ``(1 - eps) / sqrt(c)`` back to that norm (geoopt's ``projx``)."""
        arr = self._array(x, "x")
        if eps is not None and not (0 < float(eps) < 1):
            raise InvalidInputError(f"eps must be in (0, 1), got {eps!r}")
        return self._project(arr, None if eps is None else float(eps))

    def projx(self, x: Any) -> np.ndarray:
        """Alias of :meth:`proj` (geoopt's name)."""
        return self.proj(x)

    def egrad2rgrad(self, x: Any, grad: Any) -> np.ndarray:
        """Riemannian gradient from a Euclidean one: ``grad / lambda_x^2``."""
        x, g = self._common((x, "x"), (grad, "grad"))
        self._check_point(x, "x")
        return np.ascontiguousarray(g / self._lambda(x) ** 2)

    def retr(self, x: Any, u: Any) -> np.ndarray:
        """First-order retraction ``proj(x + u)`` (geoopt's ``retr``)."""
        x, u = self._common((x, "x"), (u, "u"))
        self._check_point(x, "x")
        return self._project(x + u)

    def lambda_x(self, x: Any, keepdim: bool = False) -> np.ndarray:
        """Conformal factor ``2 / (1 - c|x|^2)``."""
        (x,) = self._points((x, "x"))
        return self._lambda(x, keepdims=keepdim)

    def inner(self, base: Any, u: Any, v: Any = None) -> np.ndarray:
        """``lambda_x^2 <u, v>`` (``v=None`` means ``v = u``, as in geoopt)."""
        if v is None:
            v = u
        base, u, v = self._common((base, "base"), (u, "u"), (v, "v"))
        self._check_point(base, "base")
        return self._lambda(base, keepdims=False) ** 2 * _dot(u, v, keepdims=False)

    def norm(self, base: Any, u: Any) -> np.ndarray:
        """``lambda_x |u|``."""
        base, u = self._common((base, "base"), (u, "u"))
        self._check_point(base, "base")
        return self._lambda(base, keepdims=False) * _norm(u, keepdims=False)

    def mobius_add(self, x: Any, y: Any, project: bool = True) -> np.ndarray:
        """Möbius addition ``x (+) y``."""
        x, y = self._points((x, "x"), (y, "y"))
        return self._maybe_project(self._madd(x, y), project)

    def mobius_sub(self, x: Any, y: Any, project: bool = True) -> np.ndarray:
        """``x (+) (-y)``."""
        x, y = self._points((x, "x"), (y, "y"))
        return self._maybe_project(self._madd(x, -y), project)

    def mobius_scalar_mul(self, r: Any, x: Any, project: bool = True) -> np.ndarray:
        """Möbius scalar multiplication ``r (x) x = tan_c(r * artan_c(|x|)) x / |x|``.

        ``r`` is a scalar or an array broadcasting against ``x``'s leading axes.
        """
        (x,) = self._points((x, "x"))
        rr = np.asarray(r)
        if rr.dtype.kind not in "fiu" or not np.isfinite(rr).all():
            raise InvalidInputError(f"r must be finite real number(s), got {r!r}")
        rr = rr.astype(x.dtype)[..., None] if rr.ndim else x.dtype.type(rr)
        xn = np.maximum(_norm(x), _k.NORM_MIN)
        res = self._tan_k(rr * self._artan_k(xn)) * (x / xn)
        return self._maybe_project(res, project)

    def mobius_matvec(self, m: Any, x: Any, project: bool = True) -> np.ndarray:
        """Möbius matrix-vector product ``M (x) x`` with ``m`` of shape ``[out, in]`` (torch Linear layout)."""
        mm = self._array_any(m, "m", ndim=2)
        (x,) = self._points((x, "x"))
        if mm.shape[1] != x.shape[-1]:
            raise DimensionMismatchError(x.shape[-1], mm.shape[1], "m columns (must equal the points' dimension)")
        dt = np.result_type(mm, x)
        mm, x = mm.astype(dt, copy=False), x.astype(dt, copy=False)
        xn = np.maximum(_norm(x), _k.NORM_MIN)
        mx = x @ mm.T
        mxn = np.maximum(_norm(mx), _k.NORM_MIN)
        res = self._tan_k(mxn / xn * self._artan_k(xn)) * (mx / mxn)
        res = np.where(np.all(mx == 0, axis=-1, keepdims=True), 0, res).astype(dt, copy=False)
        return self._maybe_project(res, project)

    @staticmethod
    def _array_any(x: Any, name: str, ndim: Any) -> np.ndarray:
        return as_float_array(x, name, ndim=ndim)

    def dist(self, x: Any, y: Any) -> np.ndarray:
        """``2/sqrt(c) * artanh(sqrt(c) * |(-x) (+) y|)``.

        One point against many rows (``[D]`` vs ``[N, D]``) runs on a parallel Numba kernel.
        """
        if np.ndim(x) == 1 and np.ndim(y) == 2 and np.shape(y)[0] >= KERNEL_MIN_ROWS:
            return self._dist_one_to_many(x, y, "x", "y")
        if np.ndim(y) == 1 and np.ndim(x) == 2 and np.shape(x)[0] >= KERNEL_MIN_ROWS:
            return self._dist_one_to_many(y, x, "y", "x")
        x, y = self._points((x, "x"), (y, "y"))
        return 2.0 * self._artan_k(_norm(self._madd(-x, y), keepdims=False))

    def _dist_one_to_many(self, q: Any, pts: Any, qname: str, pname: str) -> np.ndarray:
        """Kernel path: one Numba pass over the points (which also validates them), then the
        closed form vectorised."""
        q = self.check_point(q, qname)
        p = self._array(pts, pname, finite=False)
        if p.ndim != 2 or p.shape[-1] != q.shape[-1]:
            raise DimensionMismatchError(q.shape[-1], p.shape[-1], f"{pname} last axis (must equal {qname}'s)")
        dt = np.result_type(q, p)
        q, p = q.astype(dt, copy=False), p.astype(dt, copy=False)
        x2, delta = self._terms(q, p, pname)
        return self._dist_from_terms(delta, float(q.astype(np.float64) @ q), x2)

    def _terms(self, q: np.ndarray, p: np.ndarray, pname: str) -> tuple[np.ndarray, np.ndarray]:
        """``(|x_i|^2, |q - x_i|^2)`` for the rows of ``p`` (validated on the way)."""
        x2, delta = _k.call(_k.poincare_sq_terms, p.size, q, p)
        if not np.all(self.c * x2 < 1.0):  # outside the ball, NaN or Inf
            self._check_point(p, pname)
            raise InvalidInputError(f"{pname} contains points that are not in the Poincaré ball")
        return x2, delta

    def _dist_from_terms(self, delta: np.ndarray, q2: Any, x2: np.ndarray, cap: bool = True) -> np.ndarray:
        """``arccosh(1 + e)/sqrt(c)`` with ``e = 2c|q-x|^2 / ((1-c|q|^2)(1-c|x|^2))``, evaluated as
        ``log1p(e + sqrt(e(e+2)))`` (no cancellation near 0), capped at geoopt's clamp."""
        c = self.c
        den = np.maximum((1.0 - c * q2) * (1.0 - c * x2), _k.DENOM_MIN)  # broadcasts [B,1] x [1,N]
        e = np.maximum(delta, 0)
        e *= 2.0 * c
        e /= den
        d = e + 2.0  # reused in place: e(e+2) -> sqrt -> + e -> log1p
        d *= e
        np.sqrt(d, out=d)
        d += e
        np.log1p(d, out=d)
        d *= 1.0 / self.sqrt_c
        if cap:
            np.minimum(d, _k.max_distance(c), out=d)
        return d

    def _tangent_coefficients(self, q2: Any, x2: np.ndarray, delta: np.ndarray, w: np.ndarray):
        """Coefficients ``(A, B)`` with ``sum_i w_i log_q(v_i) = (A @ V) + rowsum(B) q``.

        ``log_q(v) = d / (lambda_q |s|) s``, ``s = (-q) (+) v = a q + b v``,
        ``|s| = tanh(sqrt(c) d / 2) / sqrt(c)`` and ``d`` capped as in geoopt.
        """
        c, sc = self.c, self.sqrt_c
        d = self._dist_from_terms(delta, q2, x2, cap=False)
        y = d * (sc / 2.0)
        pos = y > 0
        th = np.tanh(np.minimum(y, _k.TANH_CLAMP))
        ratio = np.where(pos, np.minimum(d, _k.max_distance(c)) * sc / np.where(pos, th, 1.0), 2.0)
        qx = 0.5 * (q2 + x2 - delta)
        den = np.maximum(1.0 - 2.0 * c * qx + c * c * q2 * x2, _k.DENOM_MIN)
        a = -(1.0 - 2.0 * c * qx + c * x2) / den
        b = (1.0 - c * q2) / den
        lam_q = 2.0 / np.maximum(1.0 - c * q2, _k.DENOM_MIN)
        coef = (w * ratio / lam_q).astype(delta.dtype, copy=False)
        return coef * b, coef * a

    def _tangent_sum(self, q: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``sum_i w_i log_q(v_i)`` for one query (one Numba pass + BLAS)."""
        x2, delta = self._terms(q, v, "values")
        q2 = float(q.astype(np.float64) @ q)
        cb, ca = self._tangent_coefficients(q2, x2, delta, w)
        return cb @ v + float(ca.sum(dtype=np.float64)) * q

    def _tangent_sum_batch(self, Q: np.ndarray, v: np.ndarray, W: np.ndarray) -> np.ndarray:
        """Row ``b``: ``sum_i W[b, i] log_{Q[b]}(v_i)`` from a Gram matrix (BLAS)."""
        x2 = np.einsum("ij,ij->i", v, v)[None, :]
        q2 = np.einsum("ij,ij->i", Q, Q)[:, None]
        delta = np.maximum(q2 + x2 - 2.0 * (Q @ v.T), 0)
        cb, ca = self._tangent_coefficients(q2, x2, delta, W)
        return cb @ v + ca.sum(axis=1, dtype=np.float64)[:, None].astype(Q.dtype) * Q



    def dist0(self, x: Any) -> np.ndarray:
        """Distance from the origin, ``2/sqrt(c) * artanh(sqrt(c)|x|)``."""
        (x,) = self._points((x, "x"))
        return 2.0 * self._artan_k(_norm(x, keepdims=False))

    def cdist(self, x: Any, y: Any) -> np.ndarray:
        """All pairwise distances between rows of ``x`` ``[B, D]`` and ``y`` ``[N, D]`` -> ``[B, N]`` (Numba)."""
        x = self.check_point(x, "x")
        y = self.check_point(y, "y")
        if x.ndim != 2 or y.ndim != 2:
            raise InvalidInputError(f"cdist expects two 2-D arrays, got shapes {x.shape} and {y.shape}")
        if x.shape[1] != y.shape[1]:
            raise DimensionMismatchError(x.shape[1], y.shape[1], "y dimension (must equal x's)")
        dt = np.result_type(x, y)
        x, y = x.astype(dt, copy=False), y.astype(dt, copy=False)
        return _k.call(_k.poincare_dist_many_to_many, x.shape[0] * y.size, x, y, self.c)

    def expmap(self, x: Any, u: Any, project: bool = True) -> np.ndarray:
        """``x (+) tan_c(lambda_x |u| / 2) u / |u|``."""
        x, u = self._common((x, "x"), (u, "u"))
        self._check_point(x, "x")
        un = np.maximum(_norm(u), _k.NORM_MIN)
        second = self._tan_k(self._lambda(x) / 2.0 * un) * (u / un)
        return self._maybe_project(self._madd(x, second), project)

    def logmap(self, x: Any, y: Any) -> np.ndarray:
        """``2/(sqrt(c) lambda_x) artanh(sqrt(c)|(-x) (+) y|) * s / |s|`` with ``s = (-x) (+) y``."""
        x, y = self._points((x, "x"), (y, "y"))
        sub = self._madd(-x, y)
        sn = np.maximum(_norm(sub), _k.NORM_MIN)
        return np.ascontiguousarray(2.0 * self._artan_k(sn) * (sub / (self._lambda(x) * sn)))

    def expmap0(self, u: Any, project: bool = True) -> np.ndarray:
        """``tan_c(|u|) u / |u|``."""
        u = self._array(u, "u")
        un = np.maximum(_norm(u), _k.NORM_MIN)
        return self._maybe_project(self._tan_k(un) * (u / un), project)

    def logmap0(self, y: Any) -> np.ndarray:
        """``artan_c(|y|) y / |y|``."""
        (y,) = self._points((y, "y"))
        yn = np.maximum(_norm(y), _k.NORM_MIN)
        return np.ascontiguousarray(y / yn * self._artan_k(yn))

    def _gyration(self, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
        c = self.c
        a2 = _sq_norm(a)
        b2 = _sq_norm(b)
        ab = _dot(a, b)
        aw = _dot(a, w)
        bw = _dot(b, w)
        c2 = c * c
        p = -c2 * aw * b2 + c * bw + 2 * c2 * ab * bw
        q = -c2 * bw * a2 - c * aw
        d = 1 + 2 * c * ab + c2 * a2 * b2
        return w + 2 * (p * a + q * b) / np.maximum(d, _k.DENOM_MIN)

    def gyration(self, a: Any, b: Any, w: Any) -> np.ndarray:
        """Gyration ``gyr[a, b] w = -(a (+) b) (+) (a (+) (b (+) w))`` (closed form)."""
        a, b, w = self._common((a, "a"), (b, "b"), (w, "w"))
        self._check_point(a, "a")
        self._check_point(b, "b")
        return np.ascontiguousarray(self._gyration(a, b, w))

    def transp(self, x: Any, y: Any, v: Any) -> np.ndarray:
        """Parallel transport of ``v`` from ``T_x`` to ``T_y``: ``gyr[y, -x] v * lambda_x / lambda_y``."""
        x, y, v = self._common((x, "x"), (y, "y"), (v, "v"))
        self._check_point(x, "x")
        self._check_point(y, "y")
        return np.ascontiguousarray(self._gyration(y, -x, v) * self._lambda(x) / self._lambda(y))

    # ------------------------------------------------------------------ midpoints / maps
    def to_klein(self, x: Any) -> np.ndarray:
        """Poincaré -> Klein model: ``2x / (1 + c|x|^2)``."""
        (x,) = self._points((x, "x"))
        return np.ascontiguousarray(2 * x / (1 + self.c * _sq_norm(x)))

    def from_klein(self, k: Any) -> np.ndarray:
        """Klein -> Poincaré model: ``k / (1 + sqrt(1 - c|k|^2))`` (``k`` must satisfy ``c|k|^2 < 1``)."""
        k = self._array(k, "k")
        self._check_point(k, "k")  # the Klein disc has the same radius
        return np.ascontiguousarray(k / (1 + np.sqrt(np.maximum(1 - self.c * _sq_norm(k), 0))))

    def einstein_midpoint(self, points: Any, weights: Any = None) -> np.ndarray:
        """Weighted Einstein midpoint computed in the Klein model.

        ``points`` ``[N, D]`` in the ball; ``weights`` ``[N]`` (or ``[B, N]`` for several
        weightings, giving ``[B, D]``), non-negative with a positive sum; ``None`` = uniform.
        Maps to Klein (``k_i``), averages with Lorentz factors ``g_i = 1/sqrt(1 - c|k_i|^2)``:
        ``m = sum w_i g_i k_i / sum w_i g_i``, maps back. Equal to geoopt's weighted Möbius
        gyromidpoint.
        """
        (p,) = self._points((points, "points"))
        if p.ndim != 2:
            raise InvalidInputError(f"points must be 2-D [N, D], got shape {p.shape}")
        if weights is None:
            w = np.full((1, p.shape[0]), 1.0 / p.shape[0], dtype=p.dtype)
            squeeze = True
        else:
            w = self._array_any(weights, "weights", ndim=(1, 2)).astype(p.dtype, copy=False)
            squeeze = w.ndim == 1
            w = np.atleast_2d(w)
            if w.shape[1] != p.shape[0]:
                    raise DimensionMismatchError(p.shape[0], w.shape[1], "weights length (must equal number of points)")
            if (w < 0).any():
                raise InvalidInputError("weights must be non-negative")
            if not (w.sum(axis=1) > 0).all():
                raise InvalidInputError("every weight row must have a positive sum")
        out = self._einstein(p, np.ascontiguousarray(w))
        return out[0] if squeeze else out

    def _einstein(self, p: np.ndarray, w: np.ndarray) -> np.ndarray:
        # Klein image k_i = 2 x_i / (1 + c|x_i|^2), Lorentz factor g_i = (1 + c|x_i|^2) / (1 - c|x_i|^2),
        # so g_i k_i = 2 x_i / (1 - c|x_i|^2): both sums are dense products (BLAS)
        x2 = np.einsum("ij,ij->i", p, p).astype(np.float64)
        one_m = np.maximum(1.0 - self.c * x2, _k.DENOM_MIN)
        g = (1.0 + self.c * x2) / one_m
        num = (w * (2.0 / one_m)) @ p
        tot = w @ g
        m = num / np.maximum(tot, _k.DENOM_MIN)[:, None]
        back = m / (1 + np.sqrt(np.maximum(1 - self.c * _sq_norm(m), 0)))
        return self._project(back.astype(p.dtype))
