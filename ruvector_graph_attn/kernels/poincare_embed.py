"""Numba kernels of Poincaré embeddings (Nickel and Kiela, 2017): one epoch of Riemannian SGD
over the transitive-closure pairs, and the reconstruction ranks.

Distance (unit ball, curvature -1): ``d(u, v) = arcosh(1 + 2 |u - v|^2 / ((1 - |u|^2)(1 - |v|^2)))``.
Its Euclidean gradient (the paper's equation 4), with ``a = 1 - |u|^2``, ``b = 1 - |v|^2``,
``g = 1 + 2 |u - v|^2 / (a b)``:
``dd/du = 4 / (b sqrt(g^2 - 1)) * ((|v|^2 - 2 <u, v> + 1) / a^2 * u - v / a)``.
The update of a parameter ``t`` is ``t <- proj(t - lr (1 - |t|^2)^2 / 4 * grad_E)`` with
``proj`` pulling points with ``|t| > 1 - eps`` back to norm ``1 - eps`` (``eps = 1e-5``; the
paper's ``proj`` for ``|t| >= 1``, applied a hair early so that every stored point stays strictly
inside the ball in floating point).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

BOUNDARY_EPS = 1e-5


@njit(cache=True)
def _sums(theta, i, j):
    """(|u|^2, |v|^2, |u - v|^2, <u, v>) of rows i and j."""
    su = 0.0
    sv = 0.0
    sd = 0.0
    uv = 0.0
    for k in range(theta.shape[1]):
        a = theta[i, k]
        b = theta[j, k]
        su += a * a
        sv += b * b
        sd += (a - b) * (a - b)
        uv += a * b
    return su, sv, sd, uv


@njit(cache=True)
def _dist(theta, i, j):
    su, sv, sd, _ = _sums(theta, i, j)
    al = max(1.0 - su, 1e-15)
    be = max(1.0 - sv, 1e-15)
    g = 1.0 + 2.0 * sd / (al * be)
    return math.log(g + math.sqrt(max(g * g - 1.0, 0.0)))


@njit(cache=True)
def _grad_u(theta, i, j, out, scale):
    """out += scale * dd(theta_i, theta_j)/d theta_i."""
    D = theta.shape[1]
    su, sv, sd, uv = _sums(theta, i, j)
    al = max(1.0 - su, 1e-15)
    be = max(1.0 - sv, 1e-15)
    g = 1.0 + 2.0 * sd / (al * be)
    s = math.sqrt(max(g * g - 1.0, 1e-15))
    c = 4.0 / (be * s)
    cu = (sv - 2.0 * uv + 1.0) / (al * al)
    for k in range(D):
        out[k] += scale * c * (cu * theta[i, k] - theta[j, k] / al)


@njit(cache=True)
def _is_pair(keys, key):
    lo = 0
    hi = keys.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo < keys.shape[0] and keys[lo] == key


@njit(cache=True)
def _rsgd(theta, i, grad, lr):
    D = theta.shape[1]
    sq = 0.0
    for k in range(D):
        sq += theta[i, k] * theta[i, k]
    f = lr * (1.0 - sq) * (1.0 - sq) / 4.0
    nrm = 0.0
    for k in range(D):
        theta[i, k] -= f * grad[k]
        nrm += theta[i, k] * theta[i, k]
    nrm = math.sqrt(nrm)
    if nrm > 1.0 - BOUNDARY_EPS:
        s = (1.0 - BOUNDARY_EPS) / nrm
        for k in range(D):
            theta[i, k] *= s


@njit(cache=True)
def poincare_epoch(theta, pairs, order, keys, n_neg, lr, seed):
    """One pass of per-pair Riemannian SGD over ``pairs[order]``; returns the mean loss.

    Loss of a pair ``(u, v)`` with negatives ``v'_1..v'_K`` drawn uniformly among nodes ``w``
    with ``w != u`` and ``(u, w)`` not in the closure (``keys``: sorted ``u * n + w``):
    ``-log( e^{-d(u, v)} / sum_{w in {v, v'_k}} e^{-d(u, w)} )``.
    """
    np.random.seed(seed)
    n = theta.shape[0]
    D = theta.shape[1]
    cand = np.empty(n_neg + 1, np.int64)
    d = np.empty(n_neg + 1)
    gu = np.zeros(D)
    gw = np.zeros(D)
    total = 0.0
    for t in range(order.shape[0]):
        u = pairs[order[t], 0]
        v = pairs[order[t], 1]
        cand[0] = v
        m = 1
        tries = 0
        while m <= n_neg and tries < 20 * n_neg:
            w = np.random.randint(0, n)
            tries += 1
            if w == u or w == v or _is_pair(keys, u * n + w):
                continue
            cand[m] = w
            m += 1
        mx = -1e300
        for a in range(m):
            d[a] = _dist(theta, u, cand[a])
            if -d[a] > mx:
                mx = -d[a]
        z = 0.0
        for a in range(m):
            z += math.exp(-d[a] - mx)
        total += d[0] + mx + math.log(z)
        for k in range(D):
            gu[k] = 0.0
        # dL/dd_a = [a == 0] - p_a
        for a in range(m):
            p = math.exp(-d[a] - mx) / z
            coef = (1.0 if a == 0 else 0.0) - p
            _grad_u(theta, u, cand[a], gu, coef)
            for k in range(D):
                gw[k] = 0.0
            _grad_u(theta, cand[a], u, gw, coef)
            _rsgd(theta, cand[a], gw, lr)
        _rsgd(theta, u, gu, lr)
    return total / max(order.shape[0], 1)


@njit(cache=True)
def reconstruction_ranks(theta, indptr, nbrs):
    """For every node ``u`` with true neighbours ``N(u)`` (CSR ``indptr, nbrs``): the rank of each
    ``v`` in ``N(u)`` among ``{v} + non-neighbours of u`` (``1 + #{w not in N(u), w != u:
    d(u, w) < d(u, v)}``) and the average precision of ``N(u)`` in the ranking of all nodes
    ``w != u`` by distance. Returns ``(ranks [nnz], ap [n], has [n])``."""
    n = theta.shape[0]
    ranks = np.zeros(nbrs.shape[0])
    ap = np.zeros(n)
    has = np.zeros(n, np.bool_)
    d = np.empty(n)
    isn = np.zeros(n, np.bool_)
    for u in range(n):
        lo = indptr[u]
        hi = indptr[u + 1]
        if hi == lo:
            continue
        has[u] = True
        for w in range(n):
            d[w] = _dist(theta, u, w)
        for e in range(lo, hi):
            isn[nbrs[e]] = True
        for e in range(lo, hi):
            dv = d[nbrs[e]]
            below_neg = 0
            below_pos = 0
            for w in range(n):
                if w == u:
                    continue
                if d[w] < dv or (d[w] == dv and isn[w] and w < nbrs[e]):
                    if isn[w]:
                        below_pos += 1
                    else:
                        below_neg += 1
            ranks[e] = 1.0 + below_neg
            ap[u] += (below_pos + 1.0) / (below_pos + below_neg + 1.0)
        ap[u] /= hi - lo
        for e in range(lo, hi):
            isn[nbrs[e]] = False
    return ranks, ap, has
