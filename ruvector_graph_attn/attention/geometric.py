"""Geometric attention: attention weights from manifold distances.

``GeometricAttention(manifold, temperature)`` weights keys by

    w_i = softmax_i( -d(q, k_i)^2 / temperature )

where ``d`` is the geodesic distance of the manifold (Poincaré ball, sphere, Euclidean
space or a product of them). Two ways of combining the values:

* :meth:`GeometricAttention.forward` / :meth:`~GeometricAttention.forward_batch` -- values
  are ordinary feature vectors ``[N, V]`` and the output is the weighted sum ``sum_i w_i v_i``
  (as every attention in this library), unless the layer was built with
  ``values_on_manifold=True``, in which case they are :meth:`forward_geometric`.
* :meth:`GeometricAttention.forward_geometric` -- values are points on the manifold and the
  output is a point on the manifold: with ``aggregation="tangent"`` the weighted mean in the
  tangent space at the query, ``exp_q(sum_i w_i log_q(v_i))``; with ``aggregation="einstein"``
  (Poincaré ball only) the weighted Einstein midpoint computed in the Klein model (equal to
  geoopt's weighted Möbius gyromidpoint).

On the Poincaré ball one query against many keys/values costs one Numba pass over the
rows (:func:`ruvector_graph_attn.kernels.manifold.poincare_sq_terms`: squared norms and
distances to the query, validating the points on the way), then the closed-form distance,
softmax and log-map coefficients vectorised with numpy and the weighted sums on BLAS;
batches use a BLAS Gram matrix; the Einstein midpoint's Klein-model sums are dense products;
and
``backward(grad_output)`` gives analytic gradients for query/keys/values of the last call
(all three modes).

``HyperbolicGraphAttention`` scores graph neighbourhoods by hyperbolic distance: per-target
softmax of ``-d(x_src, x_dst)^2 / T`` over an ``edge_index`` (O(E) kernels), tangent
aggregation at each node, and :meth:`HyperbolicGraphAttention.score_candidates` for the
re-ranker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from pydantic import ValidationError

from ..config import GeometricAttentionConfig
from ..errors import ConfigError, DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels import manifold as _k
from ..kernels.csr import csr_from_index
from ..manifold import Euclidean, Manifold, PoincareBall, from_description
from ..nn.module import Module
from ..validation import DEFAULT_MAX_KEYS, as_float_array, as_index_array, check_edge_index, check_float, check_positive_float, check_size


# =============================================================================== helpers
def _softmax_neg_sq(dist: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of ``-dist**2 / T`` (max-subtracted), in ``dist``'s dtype."""
    logits = dist * dist
    logits *= -1.0 / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return logits


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1, keepdims=True)


def _check_temperature(t: Any) -> float:
    return check_positive_float(t, "temperature", error=ConfigError)


# ------------------------------------------------------- Poincaré ball vector-Jacobian products
# All helpers work on the last axis with numpy broadcasting, in the caller's dtype
# (float64 for gradient checks). They treat the clamps of the forward pass as inactive
# (interior points, |sqrt(c) x| < 1 - 1e-7, tanh argument < 15) and output projection as
# the identity.

def _madd_vjp(x, y, g, c):
    """Gradients of ``mobius_add(x, y)`` w.r.t. ``x`` and ``y`` given ``g = dL/d out``."""
    x2 = _dot(x, x)
    y2 = _dot(y, y)
    xy = _dot(x, y)
    a = 1 + 2 * c * xy + c * y2
    b = 1 - c * x2
    den = 1 + 2 * c * xy + c * c * x2 * y2
    num = a * x + b * y
    gn = g / den
    gden = -_dot(g, num) / (den * den)
    gnx = _dot(gn, x)
    gny = _dot(gn, y)
    gx = a * gn + gnx * (2 * c * y) + gny * (-2 * c * x) + gden * (2 * c * y + 2 * c * c * y2 * x)
    gy = b * gn + gnx * (2 * c * x + 2 * c * y) + gden * (2 * c * x + 2 * c * c * x2 * y)
    return gx, gy


def _madd(x, y, c):
    x2 = _dot(x, x)
    y2 = _dot(y, y)
    xy = _dot(x, y)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    den = 1 + 2 * c * xy + c * c * x2 * y2
    return num / np.maximum(den, _k.DENOM_MIN)


def _artanh_over(u):
    """``artanh(u)/u`` and ``(d/du [artanh(u)/u]) / u``, stable near 0."""
    small = u < 1e-3
    us = np.where(small, 1.0, u)
    at = np.arctanh(np.minimum(us, 1 - _k.ARTANH_CLAMP))
    f = np.where(small, 1 + u * u / 3, at / us)
    fp = np.where(small, 2.0 / 3.0 + 4.0 * u * u / 5.0, (us / (1 - us * us) - at) / us ** 3)
    return f, fp


def _tanh_over(a):
    """``tanh(a)/a`` and ``(d/da [tanh(a)/a]) / a``, stable near 0."""
    small = a < 1e-3
    as_ = np.where(small, 1.0, a)
    th = np.tanh(np.minimum(as_, _k.TANH_CLAMP))
    f = np.where(small, 1 - a * a / 3, th / as_)
    sech2 = 1 - th * th
    fp = np.where(small, -2.0 / 3.0 + 8.0 * a * a / 15.0, (as_ * sech2 - th) / as_ ** 3)
    return f, fp


def _logmap_fwd(q, v, c):
    """``log_q(v)`` on the ball plus what its VJP needs."""
    sqrt_c = math.sqrt(c)
    s = _madd(-q, v, c)
    n = np.sqrt(_dot(s, s))
    u = sqrt_c * n
    f, fp = _artanh_over(u)  # log = (2/lambda_q) * f(u) * s
    mu = (1 - c * _dot(q, q)) / 2  # 1/lambda_q
    return 2 * mu * f * s, (s, u, f, fp, mu)


def _logmap_vjp(q, v, g, c, saved):
    """Gradients of ``log_q(v)`` w.r.t. q and v."""
    s, u, f, fp, mu = saved
    # out = 2 mu f(u) s,  u = sqrt(c)|s|;  d f(u)/ds = f'(u) sqrt(c) s/|s| = c * (f'(u)/u) s
    gs = 2 * mu * (f * g + c * fp * _dot(s, g) * s)
    gmu = 2 * f * _dot(s, g)
    gq_neg, gv = _madd_vjp(-q, v, gs, c)
    gq = -gq_neg + gmu * (-c * q)
    return gq, gv


def _expmap_fwd(q, t, c):
    """``exp_q(t)`` on the ball (without projection) plus what its VJP needs."""
    sqrt_c = math.sqrt(c)
    lam = 2 / (1 - c * _dot(q, q))
    n = np.sqrt(_dot(t, t))
    a = sqrt_c * lam * n / 2
    tau, taup = _tanh_over(a)  # y = (lam/2) tau(a) t
    y = (lam / 2) * tau * t
    return _madd(q, y, c), (lam, n, a, tau, taup, y)


def _expmap_vjp(q, t, g, c, saved):
    lam, n, a, tau, taup, y = saved
    gq, gy = _madd_vjp(q, y, g, c)
    gyt = _dot(gy, t)
    # y = (lam/2) tau(a) t, a = sqrt(c) lam |t| / 2
    # dy/dt = (lam/2) tau I + (lam/2) tau'(a) (sqrt(c) lam/2) t t^T / |t|
    #       = (lam/2) tau I + (lam/2) (c lam^2 / 4) (tau'(a)/a) t t^T
    gt = (lam / 2) * tau * gy + (lam / 2) * (c * lam * lam / 4) * taup * gyt * t
    # dy/dlam = tau/2 t + (lam/2) tau'(a) (sqrt(c)|t|/2) t = [tau/2 + (lam/2)(tau'(a)/a) a^2/lam] t
    dy_dlam_coef = tau / 2 + (taup * a * a) / 2
    glam = dy_dlam_coef * gyt
    gq = gq + glam * (c * lam * lam * q)  # d lam / d q = c lam^2 q
    return gq, gt


def _dist2_grads(q, k, c):
    """``d^2`` and its gradients w.r.t. ``q`` and ``k`` from the closed form
    ``cosh(sqrt(c) d) = 1 + 2c|q-k|^2 / ((1-c|q|^2)(1-c|k|^2))``."""
    diff = q - k
    delta = _dot(diff, diff)
    alpha = 1 - c * _dot(q, q)
    beta = 1 - c * _dot(k, k)
    zm1 = 2 * c * delta / (alpha * beta)  # z - 1
    small = zm1 < 1e-12
    e = np.where(small, 1.0, zm1)
    root = np.sqrt(e * (e + 2))  # sqrt(z^2 - 1) without cancellation
    ratio = np.where(small, 1.0 - zm1 / 3, np.log1p(e + root) / root)  # arccosh(z)/sqrt(z^2-1)
    dd_dz = 2 * ratio / c  # d(d^2)/dz
    pref = 4 * c / (alpha * beta)
    gq = dd_dz * pref * (diff + (c * delta / alpha) * q)
    gk = dd_dz * pref * (-diff + (c * delta / beta) * k)
    return gq, gk


def _softmax_backward(w: np.ndarray, gw: np.ndarray) -> np.ndarray:
    return w * (gw - np.sum(w * gw, axis=-1, keepdims=True))


# ========================================================================= GeometricAttention
class GeometricAttention(Module):
    """Attention with weights ``softmax(-d(q, k_i)^2 / temperature)`` for a manifold distance ``d``.

    Parameters
    ----------
    manifold: a :mod:`ruvector_graph_attn.manifold` instance (default ``PoincareBall(c=1.0)``).
        Queries and keys must be points on it (checked; a point off the manifold raises
        :class:`InvalidInputError` -- use ``manifold.proj`` explicitly).
    temperature: softmax temperature ``T > 0``.
    aggregation: ``"tangent"`` (any manifold) or ``"einstein"`` (Poincaré ball only) for
        :meth:`forward_geometric`.
    dim: optional fixed point dimension (checked on every call); a Product manifold fixes it.
    values_on_manifold: when True, :meth:`forward` / :meth:`forward_batch` aggregate on the
        manifold (:meth:`forward_geometric`); when False (default) they return the Euclidean
        weighted sum of the value vectors.
    max_keys: limit on keys per call (``None`` = unlimited).

    The layer has no parameters. ``backward(grad_output)`` (Poincaré ball) returns
    ``(grad_query, grad_keys, grad_values)`` for the last forward call.
    """

    def __init__(self, manifold: Manifold | None = None, temperature: float = 1.0,
                 aggregation: str = "tangent", dim: int | None = None,
                 values_on_manifold: bool = False, max_keys: int | None = DEFAULT_MAX_KEYS):
        super().__init__()
        if manifold is None:
            manifold = PoincareBall(1.0)
        if not isinstance(manifold, Manifold):
            raise ConfigError(f"manifold must be a ruvector_graph_attn.manifold instance, got {type(manifold).__name__}")
        if aggregation not in ("tangent", "einstein"):
            raise ConfigError(f"aggregation must be 'tangent' or 'einstein', got {aggregation!r}")
        if aggregation == "einstein" and not isinstance(manifold, PoincareBall):
            raise ConfigError("aggregation='einstein' (Klein-model midpoint) needs a PoincareBall manifold")
        if dim is not None and manifold.dim is not None and int(dim) != manifold.dim:
            raise ConfigError(f"dim={dim} disagrees with the manifold's dimension {manifold.dim}")
        if dim is None and manifold.dim is not None:
            dim = manifold.dim
        try:
            self._config = GeometricAttentionConfig(
                dim=dim, temperature=_check_temperature(temperature), aggregation=aggregation,
                values_on_manifold=bool(values_on_manifold), manifold=manifold.describe(), max_keys=max_keys)
        except ValidationError as exc:
            raise ConfigError(f"invalid GeometricAttention config: {exc}") from exc
        self.manifold = manifold
        self.temperature = self._config.temperature
        self.aggregation = aggregation
        self.dim = self._config.dim
        self.values_on_manifold = bool(values_on_manifold)
        self.max_keys = max_keys
        self._weights: np.ndarray | None = None
        self._cache: tuple | None = None

    @classmethod
    def from_config(cls, config: GeometricAttentionConfig | dict) -> "GeometricAttention":
        if isinstance(config, dict):
            try:
                config = GeometricAttentionConfig(**config)
            except ValidationError as exc:
                raise ConfigError(f"invalid GeometricAttention config: {exc}") from exc
        return cls(manifold=from_description(config.manifold), temperature=config.temperature,
                   aggregation=config.aggregation, dim=config.dim,
                   values_on_manifold=config.values_on_manifold, max_keys=config.max_keys)

    # ------------------------------------------------------------------- validation
    def _qk(self, query: Any, keys: Any, qdim: int) -> tuple[np.ndarray, np.ndarray]:
        q = as_float_array(query, "query" if qdim == 1 else "queries", ndim=qdim)
        # one query on the ball: the fused weights kernel validates the keys in its own pass
        defer = qdim == 1 and isinstance(self.manifold, PoincareBall)
        K = as_float_array(keys, "keys", ndim=2, finite=not defer)
        if self.dim is not None and K.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, K.shape[1], "key dimension (the layer's dim)")
        if q.shape[-1] != K.shape[1]:
            raise DimensionMismatchError(K.shape[1], q.shape[-1], "query dimension (must equal key dimension)")
        check_size(K.shape[0], self.max_keys, "number of keys")
        dt = np.result_type(q.dtype, K.dtype)
        q, K = q.astype(dt, copy=False), K.astype(dt, copy=False)
        self.manifold.check_point(q, "query" if qdim == 1 else "queries")
        if not defer:
            self.manifold.check_point(K, "keys")
        return q, K

    def _values(self, values: Any, K: np.ndarray, on_manifold: bool, qdim_size: int) -> np.ndarray:
        V = as_float_array(values, "values", ndim=2)
        if V.shape[0] != K.shape[0]:
            raise DimensionMismatchError(K.shape[0], V.shape[0], "number of values (must equal number of keys)")
        if on_manifold:
            if self.aggregation == "tangent" and V.shape[1] != qdim_size:
                raise DimensionMismatchError(qdim_size, V.shape[1],
                                             "value dimension (tangent aggregation needs values in the query's space)")
            if self.manifold.dim is not None and V.shape[1] != self.manifold.dim:
                raise DimensionMismatchError(self.manifold.dim, V.shape[1], "value dimension (the manifold's)")
            V = V.astype(np.result_type(V.dtype, K.dtype), copy=False)
            self.manifold.check_point(V, "values")
        return V

    # ---------------------------------------------------------------- graph-attention interface
    def compute_manifold_weights(self, query: Any, keys: Any) -> np.ndarray:
        """``softmax_i(-d(query, keys[i])^2 / T)`` -> ``[N]`` (recorded as the last weights)."""
        q, K = self._qk(query, keys, 1)
        w = self._weights_one(q, K)
        self._weights = w.reshape(1, -1)
        return w

    def compute_manifold_weights_batch(self, queries: Any, keys: Any) -> np.ndarray:
        """Weights for a batch of queries ``[B, D]`` -> ``[B, N]``."""
        Q, K = self._qk(queries, keys, 2)
        W = self._weights_many(Q, K)
        self._weights = W
        return W

    def forward_geometric(self, query: Any, keys: Any, values: Any) -> np.ndarray:
        """Aggregate manifold-valued ``values`` ``[N, D]`` into one point ``[D]`` on the manifold."""
        q, K = self._qk(query, keys, 1)
        V = self._values(values, K, True, q.shape[0])
        W = self._weights_one(q, K).reshape(1, -1)
        out = self._aggregate(q.reshape(1, -1), V, W)
        self._weights = W
        self._cache = ("geometric", q.reshape(1, -1), K, V, W, True)
        return out[0]

    def forward_geometric_batch(self, queries: Any, keys: Any, values: Any) -> np.ndarray:
        """Batch version of :meth:`forward_geometric`: ``[B, D]`` queries -> ``[B, D]`` points."""
        Q, K = self._qk(queries, keys, 2)
        V = self._values(values, K, True, Q.shape[1])
        W = self._weights_many(Q, K)
        out = self._aggregate(Q, V, W)
        self._weights = W
        self._cache = ("geometric", Q, K, V, W, False)
        return out

    def project_tangent(self, point: Any, base: Any) -> np.ndarray:
        """Tangent vector at ``base`` pointing to ``point`` (the logarithmic map ``log_base(point)``)."""
        return self.manifold.logmap(base, point)

    def exp_map(self, base: Any, tangent: Any) -> np.ndarray:
        """Point reached from ``base`` along ``tangent`` (the exponential map)."""
        return self.manifold.expmap(base, tangent)

    # ------------------------------------------------------------ Attention API
    def forward(self, query: Any, keys: Any, values: Any) -> np.ndarray:
        """One query ``[D]``, keys ``[N, D]``, values ``[N, V]`` -> ``[V]``.

        Euclidean weighted sum of the values with the manifold weights, or
        :meth:`forward_geometric` when the layer has ``values_on_manifold=True``.
        """
        if self.values_on_manifold:
            return self.forward_geometric(query, keys, values)
        q, K = self._qk(query, keys, 1)
        V = self._values(values, K, False, q.shape[0])
        dt = np.result_type(q.dtype, V.dtype)
        w = self._weights_one(q, K).astype(dt, copy=False)
        out = w @ V.astype(dt, copy=False)
        self._weights = w.reshape(1, -1)
        self._cache = ("euclidean", q.reshape(1, -1), K, V, self._weights, True)
        return out

    def forward_batch(self, queries: Any, keys: Any, values: Any) -> np.ndarray:
        """Queries ``[B, D]`` over shared keys/values -> ``[B, V]``."""
        if self.values_on_manifold:
            return self.forward_geometric_batch(queries, keys, values)
        Q, K = self._qk(queries, keys, 2)
        V = self._values(values, K, False, Q.shape[1])
        dt = np.result_type(Q.dtype, V.dtype)
        W = self._weights_many(Q, K).astype(dt, copy=False)
        out = W @ V.astype(dt, copy=False)
        self._weights = W
        self._cache = ("euclidean", Q, K, V, W, False)
        return out

    def attention_weights(self) -> np.ndarray | None:
        """Weights of the last call, ``[B, N]`` (``[1, N]`` after a single query); rows sum to 1."""
        return self._weights

    def config(self) -> GeometricAttentionConfig:
        return self._config.model_copy(deep=True)

    def reset(self) -> None:
        self._weights = None
        self._cache = None

    def extra_repr(self) -> str:
        return f"manifold={self.manifold!r}, temperature={self.temperature:g}, aggregation={self.aggregation!r}"

    # --------------------------------------------------------------------- internals
    def _weights_one(self, q: np.ndarray, K: np.ndarray) -> np.ndarray:
        if isinstance(self.manifold, PoincareBall):
            # one Numba pass over the keys (norms, distances to q, validation), then the
            # closed form and the softmax vectorised
            x2, delta = self.manifold._terms(q, K, "keys")
            d = self.manifold._dist_from_terms(delta, float(q.astype(np.float64) @ q), x2)
            return _softmax_neg_sq(d, self.temperature)
        return _softmax_neg_sq(np.asarray(self.manifold.dist(q, K)), self.temperature)

    def _weights_many(self, Q: np.ndarray, K: np.ndarray) -> np.ndarray:
        if isinstance(self.manifold, PoincareBall):
            # dot products on BLAS (Gram matrix), the closed form vectorised; |q - k|^2 from the
            # Gram matrix loses relative accuracy only for nearly equal points, which moves
            # the logits -d^2/T by O(eps)
            q2 = np.einsum("ij,ij->i", Q, Q)[:, None]
            x2 = np.einsum("ij,ij->i", K, K)[None, :]
            delta = q2 + x2 - 2.0 * (Q @ K.T)
            D = self.manifold._dist_from_terms(delta, q2, x2)
        else:
            D = np.asarray(self.manifold.dist(Q[:, None, :], K[None, :, :]))
        return _softmax_neg_sq(D, self.temperature)

    def _aggregate(self, Q: np.ndarray, V: np.ndarray, W: np.ndarray) -> np.ndarray:
        m = self.manifold
        dt = np.result_type(Q.dtype, V.dtype)
        if isinstance(m, PoincareBall):
            if self.aggregation == "einstein":
                return m._einstein(V, np.ascontiguousarray(W))
            Qd, Vd, Wd = Q.astype(dt, copy=False), V.astype(dt, copy=False), W.astype(dt, copy=False)
            if Q.shape[0] == 1:
                T = m._tangent_sum(Qd[0], Vd, Wd[0]).reshape(1, -1)
            else:
                T = m._tangent_sum_batch(Qd, Vd, Wd)
            return m.expmap(Q, T.astype(dt, copy=False))
        if isinstance(m, Euclidean):
            return (W @ V).astype(dt, copy=False)
        L = m.logmap(Q[:, None, :], V[None, :, :])  # [B, N, D]
        T = np.einsum("bn,bnd->bd", W.astype(dt), L)
        return m.expmap(Q, T)

    # ---------------------------------------------------------------------- backward
    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients ``(grad_query, grad_keys, grad_values)`` of the last forward call.

        Implemented for the Poincaré ball (all modes: Euclidean values, tangent and Einstein
        aggregation). Clamps of the forward (artanh at ``1 - 1e-7``, tanh at 15) and the
        output projection are treated as inactive, i.e. gradients are those of the exact
        formulas, which is what they are for points not pressed against the boundary.
        """
        if self._cache is None:
            raise NotFittedError("backward() needs a forward() first (or reset() was called)")
        if not isinstance(self.manifold, PoincareBall):
            raise NotImplementedError("GeometricAttention.backward is implemented for the PoincareBall manifold")
        mode, Q, K, V, W, single = self._cache
        c = self.manifold.c
        out_dim = V.shape[1]
        dt = np.result_type(Q.dtype, V.dtype)
        shape = (out_dim,) if single else (Q.shape[0], out_dim)
        G = as_float_array(grad_output, "grad_output", shape=shape, dtype=dt).reshape(Q.shape[0], out_dim)
        Q = Q.astype(dt, copy=False)
        K = K.astype(dt, copy=False)
        V = V.astype(dt, copy=False)
        W = W.astype(dt, copy=False)
        grad_q = np.zeros_like(Q)
        if mode == "euclidean":
            grad_v = W.T @ G
            grad_w = G @ V.T
        elif self.aggregation == "einstein":
            grad_w, grad_v = self._einstein_backward(V, W, G, c)
        else:
            grad_w, grad_v, grad_q = self._tangent_backward(Q, V, W, G, c)
        # softmax(-d^2/T) -> distances -> query/keys
        gl = _softmax_backward(W, grad_w)  # d L / d logits  [B, N]
        gd2 = -gl / self.temperature
        gq_pair, gk_pair = _dist2_grads(Q[:, None, :], K[None, :, :], c)  # [B, N, D]
        grad_q = grad_q + np.einsum("bn,bnd->bd", gd2, gq_pair)
        grad_k = np.einsum("bn,bnd->nd", gd2, gk_pair)
        if single:
            grad_q = grad_q[0]
        return grad_q, grad_k, grad_v

    @staticmethod
    def _einstein_backward(V, W, G, c):
        s = _dot(V, V)  # [N, 1]
        one_m = 1 - c * s
        a = (1 + c * s) / one_m  # Lorentz factor gamma_i  [N, 1]
        b = 2 * V / one_m  # gamma_i * klein_i = lambda_i v_i  [N, D]
        N = W @ b  # [B, D]
        Z = W @ a  # [B, 1]
        m = N / Z
        sm = _dot(m, m)
        r = np.sqrt(1 - c * sm)
        h = 1 / (1 + r)
        hp = c / (2 * r * (1 + r) ** 2)
        gm = h * G + 2 * hp * _dot(m, G) * m  # [B, D]
        gN = gm / Z
        gZ = -_dot(gm, m) / Z  # [B, 1]
        grad_w = gN @ b.T + gZ @ a.T  # [B, N]
        gb = W.T @ gN  # [N, D]
        ga = W.T @ gZ  # [N, 1]
        grad_v = (2 / one_m) * gb + (4 * c / one_m ** 2) * _dot(V, gb) * V + (4 * c / one_m ** 2) * ga * V
        return grad_w, grad_v

    @staticmethod
    def _tangent_backward(Q, V, W, G, c):
        Qb = Q[:, None, :]  # [B, 1, D]
        Vb = V[None, :, :]  # [1, N, D]
        L, saved_log = _logmap_fwd(Qb, Vb, c)  # [B, N, D]
        T = np.einsum("bn,bnd->bd", W, L)
        _, saved_exp = _expmap_fwd(Q, T, c)
        gq, gt = _expmap_vjp(Q, T, G, c, saved_exp)  # [B, D] each
        grad_w = np.einsum("bd,bnd->bn", gt, L)
        gL = W[:, :, None] * gt[:, None, :]  # [B, N, D]
        gq_log, gv_log = _logmap_vjp(Qb, Vb, gL, c, saved_log)
        grad_q = gq + gq_log.sum(axis=1)
        grad_v = gv_log.sum(axis=0)
        return grad_w, grad_v, grad_q


# ==================================================================== HyperbolicGraphAttention
@dataclass
class HyperbolicScores:
    """Result of :meth:`HyperbolicGraphAttention.score_candidates`.

    scores: ``[N]`` per-candidate score ``-d(query, h_i)^2 / T`` (higher is better).
    distances: ``[N]`` hyperbolic distance ``d(query, h_i)``.
    query_weights: ``[N]`` softmax of ``scores`` over the candidates (sums to 1).
    aggregated: ``[N, D]`` neighbourhood points ``h_i`` (tangent aggregation at candidate i).
    edge_index: ``[2, E']`` edges used (input edges, plus one self loop per candidate when
        ``add_self_loops``), messages ``edge_index[0] -> edge_index[1]``.
    edge_weights: ``[E']`` per-edge attention weights; they sum to 1 over the edges into each
        target that has at least one edge.
    """

    scores: np.ndarray
    distances: np.ndarray
    query_weights: np.ndarray
    aggregated: np.ndarray
    edge_index: np.ndarray
    edge_weights: np.ndarray


class HyperbolicGraphAttention(Module):
    """Neighbourhood attention by hyperbolic distance on the Poincaré ball of curvature ``-c``.

    For an edge ``j -> i`` the weight is ``alpha_ji = softmax_{j in N(i)}(-d_c(x_j, x_i)^2 / T)``
    (per-target softmax, O(E) Numba kernels); ``forward(x, edge_index)`` returns for every
    node ``h_i = exp_{x_i}(sum_j alpha_ji log_{x_i}(x_j))`` (nodes without incoming edges
    keep ``x_i``). With ``add_self_loops`` (default) existing self loops are dropped and one
    is added per node, as PyTorch Geometric's GAT does, so every node attends to itself.
    The layer has no parameters.
    """

    def __init__(self, c: float = 1.0, temperature: float = 1.0, add_self_loops: bool = True,
                 max_nodes: int | None = None):
        super().__init__()
        self.ball = PoincareBall(c)
        self.c = self.ball.c
        self.temperature = _check_temperature(temperature)
        self.add_self_loops = bool(add_self_loops)
        self.max_nodes = max_nodes
        self._edges: tuple[np.ndarray, np.ndarray] | None = None

    def extra_repr(self) -> str:
        return f"c={self.c:g}, temperature={self.temperature:g}, add_self_loops={self.add_self_loops}"

    def _graph(self, x: Any, edge_index: Any, name: str = "x") -> tuple[np.ndarray, np.ndarray]:
        X = as_float_array(x, name, ndim=2)
        check_size(X.shape[0], self.max_nodes, "number of nodes")
        self.ball.check_point(X, name)
        ei = check_edge_index(edge_index, X.shape[0])
        if self.add_self_loops:
            keep = ei[0] != ei[1]
            loops = np.arange(X.shape[0], dtype=np.int64)
            ei = np.ascontiguousarray(np.concatenate([ei[:, keep], np.stack([loops, loops])], axis=1))
        return X, ei

    def _edge_weights(self, X: np.ndarray, ei: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src, dst = np.ascontiguousarray(ei[0]), np.ascontiguousarray(ei[1])
        indptr, perm = csr_from_index(dst, X.shape[0])
        if src.size == 0:
            return np.zeros(0, dtype=X.dtype), perm, indptr
        dist = _k.call(_k.poincare_edge_dist, src.size * X.shape[1], X, src, dst, self.c)
        alpha = _k.call(_k.segment_softmax_neg_sq, dist.size * 8, dist, perm, indptr, 1.0 / self.temperature)
        return alpha, perm, indptr

    def _aggregate(self, X: np.ndarray, ei: np.ndarray, alpha: np.ndarray, perm: np.ndarray,
                   indptr: np.ndarray) -> np.ndarray:
        if ei.shape[1] == 0:
            return X.copy()
        h = _k.call(_k.poincare_segment_tangent_aggregate, ei.shape[1] * X.shape[1], X,
                    np.ascontiguousarray(ei[0]), alpha, perm, indptr, self.c)
        return self.ball._project(h.astype(X.dtype))

    def edge_weights(self, x: Any, edge_index: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-edge weights: returns ``(edge_index_used, alpha [E'])``."""
        X, ei = self._graph(x, edge_index)
        alpha, _, _ = self._edge_weights(X, ei)
        self._edges = (ei, alpha)
        return ei, alpha

    def forward(self, x: Any, edge_index: Any) -> np.ndarray:
        """Node points ``x`` ``[N, D]`` (in the ball) and ``edge_index`` ``[2, E]`` -> ``[N, D]`` points."""
        X, ei = self._graph(x, edge_index)
        alpha, perm, indptr = self._edge_weights(X, ei)
        self._edges = (ei, alpha)
        return self._aggregate(X, ei, alpha, perm, indptr)

    def attention_weights(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(edge_index, alpha)`` of the last call, or ``None``."""
        return self._edges

    def reset(self) -> None:
        self._edges = None

    def embed(self, vectors: Any, scale: float = 1.0) -> np.ndarray:
        """Map Euclidean vectors into this layer's ball: ``expmap0(scale * v)`` (projected).

        A convenience for callers holding ordinary embeddings (e.g. the re-ranker): the
        exponential map at the origin is a bijection from R^D onto the ball that preserves
        directions and orders norms; ``scale`` sets how far towards the boundary points go.
        """
        v = as_float_array(vectors, "vectors", ndim=(1, 2))
        scale = check_float(scale, "scale", lo=0.0, lo_open=True)
        return self.ball.expmap0(v * v.dtype.type(scale))

    @staticmethod
    def neighbourhoods_to_edge_index(neighbourhoods: Sequence[Sequence[int]], num_nodes: int) -> np.ndarray:
        """``neighbourhoods[i]`` = indices ``j`` whose points inform ``i`` -> edges ``j -> i``."""
        if len(neighbourhoods) != num_nodes:
            raise DimensionMismatchError(num_nodes, len(neighbourhoods), "number of neighbourhood lists (one per candidate)")
        lengths = np.fromiter((len(n) for n in neighbourhoods), dtype=np.int64, count=num_nodes)
        flat = [j for n in neighbourhoods for j in n]
        src = as_index_array(np.asarray(flat) if flat else np.zeros(0, np.int64), "neighbourhoods")
        dst = np.repeat(np.arange(num_nodes, dtype=np.int64), lengths)
        return check_edge_index(np.stack([src, dst]), num_nodes, "neighbourhoods")

    def score_candidates(self, query_point: Any, candidates: Any, neighbourhoods: Any = None,
                         edge_index: Any = None) -> HyperbolicScores:
        """Score re-ranking candidates by the hyperbolic distance of their neighbourhood to the query.

        ``query_point`` ``[D]`` and ``candidates`` ``[N, D]`` are points in the ball (embed
        Euclidean vectors first, e.g. ``ball.expmap0(v * scale)``; points outside raise).
        The neighbourhood structure is either ``edge_index`` ``[2, E]`` over candidate
        indices (messages ``edge_index[0] -> edge_index[1]``) or ``neighbourhoods``, a list of
        N lists (``neighbourhoods[i]`` = candidate indices adjacent to ``i``); give one.
        Each candidate is replaced by ``h_i``, the attention-weighted tangent mean of itself
        and its neighbours (weights ``alpha`` as in :meth:`forward`), then scored
        ``-d(query, h_i)^2 / T``. Cost O(E * D + N * D). See :class:`HyperbolicScores`.
        """
        X = as_float_array(candidates, "candidates", ndim=2)
        q = as_float_array(query_point, "query_point", ndim=1)
        if q.shape[0] != X.shape[1]:
            raise DimensionMismatchError(X.shape[1], q.shape[0], "query_point dimension (must equal candidates')")
        dt = np.result_type(q.dtype, X.dtype)
        q, X = q.astype(dt, copy=False), X.astype(dt, copy=False)
        self.ball.check_point(q, "query_point")
        if (neighbourhoods is None) == (edge_index is None):
            raise InvalidInputError("give exactly one of neighbourhoods (list of lists) or edge_index ([2, E])")
        if neighbourhoods is not None:
            edge_index = self.neighbourhoods_to_edge_index(neighbourhoods, X.shape[0])
        X, ei = self._graph(X, edge_index, "candidates")
        alpha, perm, indptr = self._edge_weights(X, ei)
        H = self._aggregate(X, ei, alpha, perm, indptr)
        dist = np.asarray(self.ball.dist(q, H))
        d64 = dist.astype(np.float64)
        scores = -(d64 * d64) / self.temperature
        e = np.exp(scores - scores.max())
        self._edges = (ei, alpha)
        return HyperbolicScores(scores=scores.astype(dt), distances=dist, query_weights=(e / e.sum()).astype(dt),
                                aggregated=H, edge_index=ei, edge_weights=alpha)


__all__ = ["GeometricAttention", "HyperbolicGraphAttention", "HyperbolicScores"]
