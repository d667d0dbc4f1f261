"""Manifold benchmark: Poincaré distance of one query to many points and geometric attention
over many keys, against vectorised numpy in the same run.

``ruvector-graph-attn bench manifold`` or ``python benchmarks/manifold_bench.py``.

Baselines (numpy, float32 like the library path unless ``--dtype float64``):

* ``numpy (geoopt form)``: the gyrovector formula written with whole-array numpy operations,
  ``2/sqrt(c) artanh(sqrt(c) |(-q) (+) X|)`` -- what a direct translation of geoopt does;
* ``numpy (dot form)``: the cheapest vectorised formulation we know,
  ``arccosh(1 + 2c|q - x|^2 / ((1 - c|q|^2)(1 - c|x|^2))) / sqrt(c)`` with ``|q - x|^2``
  expanded into a BLAS matrix-vector product and row norms (``einsum``); the expansion
  can lose accuracy for nearly equal points (the query is one of the points here, so the
  error column shows it if it happens);
* sphere: numpy ``2 atan2(|q - x|, |q + x|)`` (same formula as ours) and ``arccos(<q, x>)``
  (one BLAS product; ``arccos`` is ill-conditioned near 0).

The error column is the max abs difference to float64: ours / numpy first form / numpy
second form.

Geometric attention baselines compute the same weights with the dot form, a numpy softmax,
and the aggregation (``w @ V``; tangent: log map of every value at the query, weighted sum,
exp map; Einstein: Klein-model weighted mean) with whole-array operations.
When torch and geoopt are installed, a second table compares with geoopt's ``PoincareBall``
on torch CPU tensors (same inputs, ``torch.no_grad``). Speed-up = numpy (or geoopt) time /
library time, same process. Each time is the fastest of
``--repeat`` runs: on a shared machine the minimum is the run least disturbed by other
processes (as ``timeit`` recommends). Threads: Numba's default (all cores); set
``NUMBA_NUM_THREADS=1`` for single-thread figures.
"""
from __future__ import annotations

import argparse
import math
import os
import time

import numba
import numpy as np

from ..attention.geometric import GeometricAttention
from ..manifold import PoincareBall, Sphere
from .common import print_table


def build_parser(prog: str = "manifold_bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=1_000_000, help="points for the one-to-many distance")
    p.add_argument("--keys", type=int, default=10_000, help="keys for geometric attention")
    p.add_argument("--dim", type=int, default=32, help="dimension D of points / keys / values")
    p.add_argument("--batch", type=int, default=32, help="queries in the batched attention case")
    p.add_argument("--c", type=float, default=1.0, help="curvature -c of the Poincaré ball")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--repeat", type=int, default=7, help="timed runs per measurement (fastest kept)")
    p.add_argument("--seed", type=int, default=0)
    return p


def best_time(fn, repeat: int = 7, warmup: int = 1) -> float:
    """Fastest of ``repeat`` runs in seconds (after ``warmup`` untimed runs)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ------------------------------------------------------------------------------ data
def ball_points(rng: np.random.Generator, n: int, d: int, c: float, dtype) -> np.ndarray:
    """Points spread over the ball: random directions, hyperbolic radius up to ~5 (norm < 0.99/sqrt(c))."""
    v = rng.normal(size=(n, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    r = np.tanh(rng.uniform(0.0, 2.5, size=(n, 1))) / math.sqrt(c)
    return np.ascontiguousarray((v * r).astype(dtype))


# ---------------------------------------------------------------------- numpy baselines
def np_dist_geoopt_form(q: np.ndarray, X: np.ndarray, c: float) -> np.ndarray:
    x = -q[None, :]
    x2 = np.sum(x * x, -1, keepdims=True)
    y2 = np.sum(X * X, -1, keepdims=True)
    xy = X @ x[0]
    xy = xy[:, None]
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * X
    den = 1 + 2 * c * xy + c * c * x2 * y2
    s = num / den
    z = np.clip(math.sqrt(c) * np.linalg.norm(s, axis=-1), -1 + 1e-7, 1 - 1e-7)
    return 2 * np.arctanh(z) / math.sqrt(c)


def np_dist_dot_form(q: np.ndarray, X: np.ndarray, c: float, x2: np.ndarray | None = None) -> np.ndarray:
    if x2 is None:
        x2 = np.einsum("ij,ij->i", X, X)
    q2 = float(q @ q)
    diff2 = np.maximum(x2 - 2 * (X @ q) + q2, 0)
    z = 1 + 2 * c * diff2 / ((1 - c * q2) * (1 - c * x2))
    return np.arccosh(z) / math.sqrt(c)


def np_cdist_dot_form(Q: np.ndarray, X: np.ndarray, c: float) -> np.ndarray:
    x2 = np.einsum("ij,ij->i", X, X)
    q2 = np.einsum("ij,ij->i", Q, Q)
    diff2 = np.maximum(x2[None, :] - 2 * (Q @ X.T) + q2[:, None], 0)
    z = 1 + 2 * c * diff2 / ((1 - c * q2)[:, None] * (1 - c * x2)[None, :])
    return np.arccosh(z) / math.sqrt(c)


def np_softmax_neg_sq(d: np.ndarray, t: float) -> np.ndarray:
    logits = -(d * d) / t
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def np_madd(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    x2 = np.sum(x * x, -1, keepdims=True)
    y2 = np.sum(y * y, -1, keepdims=True)
    xy = np.sum(x * y, -1, keepdims=True)
    return ((1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y) / (1 + 2 * c * xy + c * c * x2 * y2)


def np_tangent_attention(q, K, V, c, t):
    w = np_softmax_neg_sq(np_dist_dot_form(q, K, c), t)
    sc = math.sqrt(c)
    lam = 2 / (1 - c * q @ q)
    s = np_madd(-q[None, :], V, c)
    n = np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-15)
    logs = 2 / (sc * lam) * np.arctanh(np.minimum(sc * n, 1 - 1e-7)) * s / n
    tv = w @ logs
    tn = max(float(np.linalg.norm(tv)), 1e-15)
    return np_madd(q, np.tanh(sc * lam * tn / 2) * tv / (sc * tn), c)


def np_einstein_attention(q, K, V, c, t):
    w = np_softmax_neg_sq(np_dist_dot_form(q, K, c), t)
    v2 = np.einsum("ij,ij->i", V, V)
    gam = (1 + c * v2) / (1 - c * v2)
    b = 2 * V / (1 - c * v2)[:, None]
    m = (w @ b) / (w @ gam)
    return m / (1 + np.sqrt(1 - c * m @ m))


# ------------------------------------------------------------------------------ run
def run(args: argparse.Namespace) -> int:
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed)
    c, t, d = float(args.c), float(args.temperature), int(args.dim)
    ball = PoincareBall(c)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"manifold benchmark: dtype={dtype}, D={d}, c={c}, numba threads={numba.get_num_threads()}, "
          f"cpus={os.cpu_count()}, load average (1 min) at start={load:.1f}", flush=True)
    rows = []

    # 1. one query to many points
    X = ball_points(rng, args.points, d, c, dtype)
    q = X[args.points // 2].copy()  # the query is one of the points (distance 0 is in the set)
    ref = np_dist_dot_form(q.astype(np.float64), X.astype(np.float64), c)
    ref[args.points // 2] = 0.0
    ours = ball.dist(q, X)
    t_ours = best_time(lambda: ball.dist(q, X), repeat=args.repeat)
    t_geo = best_time(lambda: np_dist_geoopt_form(q, X, c), repeat=args.repeat)
    t_dot = best_time(lambda: np_dist_dot_form(q, X, c), repeat=args.repeat)
    err = float(np.max(np.abs(ours - ref)))
    err_np = float(np.max(np.abs(np_dist_geoopt_form(q, X, c) - ref)))
    err_dot = float(np.max(np.abs(np_dist_dot_form(q, X, c) - ref)))
    rows.append([f"Poincaré dist, 1 x {args.points:,}", t_ours * 1e3, t_geo * 1e3, t_geo / t_ours,
                 t_dot * 1e3, t_dot / t_ours, f"{err:.1e} / {err_np:.1e} / {err_dot:.1e}"])

    sph = Sphere(1.0)
    S = sph.proj(rng.normal(size=(args.points, d)).astype(dtype))
    qs = S[0].copy()
    ref_s = 2 * np.arctan2(np.linalg.norm(S.astype(np.float64) - qs, axis=1),
                           np.linalg.norm(S.astype(np.float64) + qs, axis=1))
    t_sph = best_time(lambda: sph.dist(qs, S), repeat=args.repeat)
    t_sph_np = best_time(lambda: 2 * np.arctan2(np.linalg.norm(S - qs, axis=1), np.linalg.norm(S + qs, axis=1)),
                           repeat=args.repeat)
    t_sph_acos = best_time(lambda: np.arccos(np.clip(S @ qs, -1, 1)), repeat=args.repeat)
    err_s = float(np.max(np.abs(sph.dist(qs, S) - ref_s)))
    err_s_np = float(np.max(np.abs(2 * np.arctan2(np.linalg.norm(S - qs, axis=1), np.linalg.norm(S + qs, axis=1))
                                   - ref_s)))
    err_s_acos = float(np.max(np.abs(np.arccos(np.clip(S @ qs, -1, 1)) - ref_s)))
    rows.append([f"sphere dist, 1 x {args.points:,}", t_sph * 1e3, t_sph_np * 1e3, t_sph_np / t_sph,
                 t_sph_acos * 1e3, t_sph_acos / t_sph, f"{err_s:.1e} / {err_s_np:.1e} / {err_s_acos:.1e}"])
    X_keep, q_keep = X, q
    del S

    # 2. geometric attention over many keys
    K = ball_points(rng, args.keys, d, c, dtype)
    V = ball_points(rng, args.keys, d, c, dtype)
    Vf = rng.normal(size=(args.keys, d)).astype(dtype)
    Q = ball_points(rng, args.batch, d, c, dtype)
    q0 = Q[0]
    att = GeometricAttention(ball, temperature=t)
    tang = GeometricAttention(ball, temperature=t, aggregation="tangent")
    ein = GeometricAttention(ball, temperature=t, aggregation="einstein")

    def np_forward():
        return np_softmax_neg_sq(np_dist_dot_form(q0, K, c), t) @ Vf

    def np_forward_geo():
        w = np_softmax_neg_sq(np_dist_geoopt_form(q0, K, c), t)
        return w @ Vf

    def np_batch():
        return np_softmax_neg_sq(np_cdist_dot_form(Q, K, c), t) @ Vf

    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    cases = [
        (f"geometric attention, 1 query x {args.keys:,} keys (weights + w @ V)",
         lambda: att.forward(q0, K, Vf), np_forward_geo, np_forward,
         lambda: np_softmax_neg_sq(np_dist_dot_form(f64(q0), f64(K), c), t) @ f64(Vf)),
        (f"geometric attention, {args.batch} queries x {args.keys:,} keys (forward_batch)",
         lambda: att.forward_batch(Q, K, Vf), None, np_batch,
         lambda: np_softmax_neg_sq(np_cdist_dot_form(f64(Q), f64(K), c), t) @ f64(Vf)),
        (f"forward_geometric tangent, 1 x {args.keys:,}",
         lambda: tang.forward_geometric(q0, K, V), None, lambda: np_tangent_attention(q0, K, V, c, t),
         lambda: np_tangent_attention(f64(q0), f64(K), f64(V), c, t)),
        (f"forward_geometric einstein, 1 x {args.keys:,}",
         lambda: ein.forward_geometric(q0, K, V), None, lambda: np_einstein_attention(q0, K, V, c, t),
         lambda: np_einstein_attention(f64(q0), f64(K), f64(V), c, t)),
    ]
    for name, fo, fgeo, fdot, fref in cases:
        t_o = best_time(fo, repeat=args.repeat)
        t_d = best_time(fdot, repeat=args.repeat)
        e = float(np.max(np.abs(fo() - fref())))
        if fgeo is not None:
            t_g = best_time(fgeo, repeat=args.repeat)
            rows.append([name, t_o * 1e3, t_g * 1e3, t_g / t_o, t_d * 1e3, t_d / t_o, f"{e:.1e}"])
        else:
            rows.append([name, t_o * 1e3, "-", "-", t_d * 1e3, t_d / t_o, f"{e:.1e}"])

    geo_rows = _geoopt_rows(args, X_keep, q_keep, K, V, Vf, q0, ball, att, tang, ein, c, t)
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min) at end={os.getloadavg()[0]:.1f}")
    print_table(["case", "ours ms", "numpy geoopt-form ms", "speed-up", "numpy dot-form ms", "speed-up",
                 "max abs err vs float64 (ours / np 1 / np 2)"], rows,
                title="ours = ruvector_graph_attn (Numba); speed-up = numpy time / ours, same process")
    if geo_rows:
        print_table(["case", "ours ms", "geoopt (torch CPU, 1 thread) ms", "speed-up", "max abs diff"], geo_rows,
                    title="against geoopt on torch CPU, same inputs, same process")
    return 0


def _geoopt_rows(args, X, q, K, V, Vf, q0, ball, att, tang, ein, c, t):
    """Optional extra baseline: the same operations with geoopt on torch (when installed)."""
    try:
        import geoopt
        import torch
        from geoopt.manifolds.stereographic.math import weighted_midpoint
    except ImportError:
        return []
    # torch single-threaded: on this shared 2-core machine its OpenMP pool made geoopt 5-30x
    # slower with 2 threads than with 1, so 1 thread is the favourable setting for the baseline
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _geoopt_cases(args, X, q, K, V, Vf, q0, ball, att, tang, ein, c, t, geoopt, torch, weighted_midpoint)
    finally:
        torch.set_num_threads(prev_threads)


def _geoopt_cases(args, X, q, K, V, Vf, q0, ball, att, tang, ein, c, t, geoopt, torch, weighted_midpoint):
    tdt = torch.float32 if X.dtype == np.float32 else torch.float64
    gball = geoopt.PoincareBall(c=torch.tensor(c, dtype=tdt))
    tX, tq = torch.from_numpy(X), torch.from_numpy(q)
    tK, tV, tVf, tq0 = (torch.from_numpy(a) for a in (K, V, Vf, q0))
    rows = []

    def weights():
        return torch.softmax(-gball.dist(tq0, tK) ** 2 / t, dim=0)

    def g_tangent():
        w = weights()
        return gball.expmap(tq0, (w[:, None] * gball.logmap(tq0, tV)).sum(0))

    def g_einstein():
        return weighted_midpoint(tV, weights(), k=torch.tensor(-c, dtype=tdt), reducedim=[0])

    with torch.no_grad():
        cases = [
            (f"Poincaré dist, 1 x {X.shape[0]:,}", lambda: ball.dist(q, X), lambda: gball.dist(tq, tX)),
            (f"geometric attention, 1 query x {K.shape[0]:,} keys (weights + w @ V)",
             lambda: att.forward(q0, K, Vf), lambda: weights() @ tVf),
            (f"forward_geometric tangent, 1 x {K.shape[0]:,}", lambda: tang.forward_geometric(q0, K, V), g_tangent),
            (f"forward_geometric einstein, 1 x {K.shape[0]:,}", lambda: ein.forward_geometric(q0, K, V), g_einstein),
        ]
        for name, fo, fg in cases:
            t_o = best_time(fo, repeat=args.repeat)
            t_g = best_time(fg, repeat=args.repeat, warmup=5)  # TorchScript specialises over the first calls
            diff = float(np.max(np.abs(np.asarray(fo(), dtype=np.float64) - fg().double().numpy())))
            rows.append([name, t_o * 1e3, t_g * 1e3, t_g / t_o, f"{diff:.1e}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
