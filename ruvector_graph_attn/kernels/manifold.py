"""Numba kernels for manifold distances and geometric attention (Poincaré ball, sphere).

Plain functions, no classes, no I/O. Inputs are validated by the callers
(``ruvector_graph_attn.manifold`` / ``attention.geometric``): points strictly inside the
ball / on the sphere, matching dimensions, C-contiguous float32 or float64 arrays.
Coordinate sums run in the input dtype (so LLVM can vectorise them); everything after
them (distances, logs, softmax, tangent accumulators) in float64; outputs have the dtype of
the point array unless documented as float64.

The Poincaré formulas are those of curvature ``-c`` in the gyrovector formulation (as in
geoopt's ``PoincareBall``): ``d(x, y) = 2/sqrt(c) * artanh(sqrt(c) * ||(-x) (+) y||)``
with the ``artanh`` argument clamped to ``[-1 + 1e-7, 1 - 1e-7]``, norms clamped below
at ``1e-15`` and ``tanh`` arguments clamped to ``[-15, 15]``.

Distance kernels evaluate the same quantity in the equivalent closed form
``d = arccosh(1 + 2c|x - y|^2 / ((1 - c|x|^2)(1 - c|y|^2))) / sqrt(c)`` (one pass over the
coordinates, exact at ``x == y``), capped at ``2 artanh(1 - 1e-7) / sqrt(c)``, which is what
geoopt's clamp of the ``artanh`` argument amounts to (``artanh`` is monotone).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .segment import segment_softmax_neg_sq  # noqa: F401  (re-exported: geometric attention uses it here)
from .threads import call_serial_below

#: clamps shared with the numpy implementation (manifold/poincare.py)
ARTANH_CLAMP = 1e-7
NORM_MIN = 1e-15
TANH_CLAMP = 15.0
DENOM_MIN = 1e-15

#: reassociation lets LLVM vectorise the coordinate reductions (inputs are validated finite)
FAST = {"reassoc", "contract", "nsz"}

#: below this many element operations (rows * dim, about 1 ms of work) kernels run on one
#: thread: launching a parallel region costs microseconds on an idle machine but milliseconds
#: on a loaded one (measured here: 10-40 ms per launch at load average 10 on 2 cores)
PARALLEL_MIN_WORK = 1 << 20


def call(kernel, work, *args):
    """Run ``kernel(*args)``; single-threaded when ``work`` (about rows * dim) is small."""
    return call_serial_below(kernel, work, PARALLEL_MIN_WORK, *args)


@njit(cache=True, inline="always")
def _tanh_clamped(z):
    if z < -TANH_CLAMP:
        z = -TANH_CLAMP
    elif z > TANH_CLAMP:
        z = TANH_CLAMP
    return math.tanh(z)


@njit(cache=True, inline="always")
def _mobius_neg_add_coeffs(q2, x2, qx, c):
    """Coefficients (a, b) with (-q) (+) x = a * q + b * x (curvature -c)."""
    # mobius_add(u, v) with u = -q: u2 = q2, v2 = x2, uv = -qx
    den = 1.0 - 2.0 * c * qx + c * c * q2 * x2
    if den < DENOM_MIN:
        den = DENOM_MIN
    a = -(1.0 - 2.0 * c * qx + c * x2) / den
    b = (1.0 - c * q2) / den
    return a, b


@njit(cache=True, inline="always")
def _acosh_1p(e):
    """``arccosh(1 + e)`` for ``e >= 0`` without cancellation."""
    return math.log1p(e + math.sqrt(e * (e + 2.0)))


@njit(cache=True, inline="always")
def _uncapped_dist_from_sq(delta, q2, x2, c, sqrt_c):
    """Poincaré distance from ``|q - x|^2``, ``|q|^2``, ``|x|^2`` (not capped)."""
    den = (1.0 - c * q2) * (1.0 - c * x2)
    if den < DENOM_MIN:
        den = DENOM_MIN
    if delta < 0.0:
        delta = 0.0
    return _acosh_1p(2.0 * c * delta / den) / sqrt_c


@njit(cache=True, inline="always")
def _dist_from_sq(delta, q2, x2, c, sqrt_c, dmax):
    """Poincaré distance from ``|q - x|^2``, ``|q|^2``, ``|x|^2`` (capped at ``dmax``)."""
    d = _uncapped_dist_from_sq(delta, q2, x2, c, sqrt_c)
    return d if d < dmax else dmax


@njit(cache=True, inline="always")
def _sq_terms(q, x):
    """``(|x|^2, |q - x|^2)`` of two vectors, summed in the input dtype (vectorised)."""
    x2 = x[0] - x[0]
    delta = x2
    for j in range(q.shape[0]):
        xj = x[j]
        t = q[j] - xj
        x2 += xj * xj
        delta += t * t
    return x2, delta


@njit(cache=True, inline="always")
def _poincare_dist_row(q, x, q2, c, sqrt_c, dmax):
    # coordinate sums in the input dtype (vectorised); the rest in float64
    x2, delta = _sq_terms(q, x)
    x2f = float(x2)
    if not c * x2f < 1.0:  # outside the ball, NaN or Inf: flagged as NaN for the caller
        return np.nan
    return _dist_from_sq(float(delta), q2, x2f, c, sqrt_c, dmax)


@njit(cache=True)
def max_distance(c):
    """Largest distance the clamped formulas return: ``2 artanh(1 - 1e-7) / sqrt(c)``."""
    z = 1.0 - ARTANH_CLAMP
    return 2.0 * 0.5 * (math.log1p(z) - math.log1p(-z)) / math.sqrt(c)


@njit(cache=True, fastmath=FAST)
def _sq_norm(v):
    s = 0.0
    for j in range(v.shape[0]):
        s += float(v[j]) * float(v[j])
    return s


@njit(cache=True, parallel=True, fastmath=FAST)
def poincare_dist_many_to_many(queries, points, c):
    """Pairwise distances ``[B, D], [N, D] -> [B, N]`` (flat parallel loop over B*N)."""
    b = queries.shape[0]
    n = points.shape[0]
    out = np.empty((b, n), dtype=points.dtype)
    sqrt_c = math.sqrt(c)
    dmax = max_distance(c)
    q2s = np.empty(b)
    for r in range(b):
        q2s[r] = _sq_norm(queries[r])
    for t in prange(b * n):
        r = t // n
        i = t - r * n
        out[r, i] = _poincare_dist_row(queries[r], points[i], q2s[r], c, sqrt_c, dmax)
    return out


@njit(cache=True, parallel=True, fastmath=FAST)
def poincare_sq_terms(q, points):
    """One pass over the points: ``(|x_i|^2, |q - x_i|^2)`` per row, in the input dtype.

    These are all a one-to-many Poincaré computation needs from the coordinates (distance
    ``arccosh(1 + 2c|q-x|^2 / ((1-c|q|^2)(1-c|x|^2)))/sqrt(c)``, log-map coefficients); the
    transcendental part then runs vectorised (numpy's SIMD ``log1p``/``exp`` are ~15x faster per
    element than scalar libm calls here). A non-finite row gives a non-finite ``|x|^2``, so the
    caller validates the points (``c|x|^2 < 1``) on the N-vector, without another pass.
    """
    n, d = points.shape
    x2o = np.empty(n, dtype=points.dtype)
    do = np.empty(n, dtype=points.dtype)
    for i in prange(n):
        x2o[i], do[i] = _sq_terms(q, points[i])
    return x2o, do


@njit(cache=True, parallel=True, fastmath=FAST)
def sphere_sq_terms(q, points):
    """One pass: ``(|q - x_i|^2, |q + x_i|^2)`` per row (input dtype). ``|x_i|^2`` (for the
    caller's on-sphere check) is ``(|q - x|^2 + |q + x|^2) / 2 - |q|^2``; NaN/Inf propagate."""
    n, d = points.shape
    dmo = np.empty(n, dtype=points.dtype)
    dpo = np.empty(n, dtype=points.dtype)
    for i in prange(n):
        dm = points[i, 0] - points[i, 0]
        dp = dm
        for j in range(d):
            qj = q[j]
            xj = points[i, j]
            dm += (qj - xj) * (qj - xj)
            dp += (qj + xj) * (qj + xj)
        dmo[i] = dm
        dpo[i] = dp
    return dmo, dpo


@njit(cache=True, inline="always")
def _weighted_logmap_into(q, x, q2, lam_q, c, sqrt_c, dmax, weight, acc):
    """``acc += weight * log_q(x) - k q``; returns ``k``: the caller adds ``k * q`` once.

    ``log_q(x) = d / (lambda_q |s|) * s`` with ``s = (-q) (+) x = a q + b x`` and
    ``|s| = tanh(sqrt(c) d / 2) / sqrt(c)``; ``d`` is capped at ``dmax`` (geoopt's clamp).
    """
    x2n, deltan = _sq_terms(q, x)
    x2 = float(x2n)
    delta = float(deltan)
    d = _uncapped_dist_from_sq(delta, q2, x2, c, sqrt_c)
    if delta < 0.0:
        delta = 0.0
    y = sqrt_c * d / 2.0
    if y < 1e-8:
        ratio = 2.0  # d / |s| -> 2 as d -> 0
    else:
        ratio = (d if d < dmax else dmax) * sqrt_c / _tanh_clamped(y)
    qx = 0.5 * (q2 + x2 - delta)
    a, b = _mobius_neg_add_coeffs(q2, x2, qx, c)
    coef = weight * ratio / lam_q
    cb = coef * b
    for j in range(q.shape[0]):
        acc[j] += cb * float(x[j])
    return coef * a


# --------------------------------------------------------------------------- graph (edge) kernels
@njit(cache=True, parallel=True, fastmath=FAST)
def poincare_edge_dist(x, src, dst, c):
    """Per-edge distance ``d_c(x[src[e]], x[dst[e]])``: ``-> [E]``."""
    e = src.shape[0]
    out = np.empty(e, dtype=x.dtype)
    sqrt_c = math.sqrt(c)
    dmax = max_distance(c)
    for t in prange(e):
        a = x[dst[t]]
        out[t] = _poincare_dist_row(a, x[src[t]], _sq_norm(a), c, sqrt_c, dmax)
    return out


@njit(cache=True, parallel=True, fastmath=FAST)
def poincare_segment_tangent_aggregate(x, src, weights, perm, indptr, c):
    """For every target ``i``: ``exp_{x_i}(sum_e w_e log_{x_i}(x[src[e]]))`` over its edges.

    Targets with no edge keep ``x_i``. The result is projected to norm
    ``<= (1 - eps) / sqrt(c)`` by the caller. Returns float64 ``[N, D]``.
    """
    n, d = x.shape
    sqrt_c = math.sqrt(c)
    dmax = max_distance(c)
    out = np.empty((n, d))
    for i in prange(n):
        q = x[i]
        q2 = _sq_norm(q)
        den = 1.0 - c * q2
        if den < DENOM_MIN:
            den = DENOM_MIN
        lam_q = 2.0 / den
        acc = np.zeros(d)
        k = 0.0
        for t in range(indptr[i], indptr[i + 1]):
            ed = perm[t]
            k += _weighted_logmap_into(q, x[src[ed]], q2, lam_q, c, sqrt_c, dmax, float(weights[ed]), acc)
        for j in range(d):
            acc[j] += k * float(q[j])
        # exp_q(acc) = q (+) tanh(sqrt(c) * lam_q * |acc| / 2) / sqrt(c) * acc / |acc|
        un = 0.0
        for j in range(d):
            un += acc[j] * acc[j]
        un = math.sqrt(un)
        if un < NORM_MIN:
            un = NORM_MIN
        f = _tanh_clamped(sqrt_c * lam_q * un / 2.0) / sqrt_c / un
        y2 = 0.0
        qy = 0.0
        for j in range(d):
            yj = f * acc[j]
            y2 += yj * yj
            qy += float(q[j]) * yj
        num_a = 1.0 + 2.0 * c * qy + c * y2
        num_b = 1.0 - c * q2
        dd = 1.0 + 2.0 * c * qy + c * c * q2 * y2
        if dd < DENOM_MIN:
            dd = DENOM_MIN
        for j in range(d):
            out[i, j] = (num_a * float(q[j]) + num_b * f * acc[j]) / dd
    return out
