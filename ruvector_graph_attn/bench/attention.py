"""Attention benchmark: ScaledDotProductAttention (one query; a batch of 32 queries) and
MultiHeadAttention (8 heads) over N keys, each timed side by side with a plain numpy (BLAS)
reference in the same run.

``ruvector-graph-attn bench attention`` or ``python benchmarks/attention_bench.py``.

Cases (d = 128, float32 keys/values, N in {1K, 10K, 100K} by default):

* ``single``: one query [d] over keys [N, d] and values [N, d]
* ``batch``: 32 queries [32, d] over the same keys/values (the table also gives µs per query)
* ``mha``: MultiHeadAttention(embed_dim=128, num_heads=8), one query token over N key/value
  tokens, in-projections of all N keys and values and the averaged weights included

The reference is what one writes with numpy: ``w = exp(s - max s) / sum``, ``w @ V`` after
``s = (K @ q) * scale`` (and the same projections and head split for MHA). Timings alternate
between the library and the reference, call by call, so both see the same machine load; the
medians and their ratio (reference / library: > 1 means the library is faster) are printed.
The library validates its inputs on every call; the reference does not.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from typing import Any, Callable

import numpy as np

from ..fileio import write_json_atomic
from ..attention.multihead import MultiHeadAttention
from ..attention.standard import ScaledDotProductAttention
from .common import print_table


def build_parser(prog: str = "attention_bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=str, default="1000,10000,100000", help="comma-separated key counts N")
    p.add_argument("--dim", type=int, default=128, help="query/key/value dimension d (embed_dim for MHA)")
    p.add_argument("--batch", type=int, default=32, help="queries in the batch case")
    p.add_argument("--heads", type=int, default=8, help="heads in the MHA case")
    p.add_argument("--cases", type=str, default="single,batch,mha", help="subset of single,batch,mha")
    p.add_argument("--budget", type=float, default=1.5,
                   help="seconds of timed calls per implementation and table cell (at least --min-reps calls)")
    p.add_argument("--min-reps", type=int, default=15)
    p.add_argument("--max-reps", type=int, default=400)
    p.add_argument("--blas-threads", type=int, default=None,
                   help="limit BLAS threads (needs threadpoolctl; otherwise set OPENBLAS_NUM_THREADS before starting)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=str, default=None, help="also write the results to this JSON file")
    return p


# -- the plain numpy references --------------------------------------------------------------------
def numpy_single(q: np.ndarray, K: np.ndarray, V: np.ndarray, scale: float) -> np.ndarray:
    s = (K @ q) * np.float32(scale)
    e = np.exp(s - s.max())
    return (e / e.sum()) @ V


def numpy_batch(Q: np.ndarray, K: np.ndarray, V: np.ndarray, scale: float) -> np.ndarray:
    s = (Q @ K.T) * np.float32(scale)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)) @ V


def numpy_mha(xq: np.ndarray, xk: np.ndarray, xv: np.ndarray, sd: dict[str, np.ndarray], heads: int):
    """torch-style MHA for batch-first [B, L, E] inputs; returns (output, head-averaged weights)."""
    E = xq.shape[-1]
    hd = E // heads
    Wq, Wk, Wv = np.split(sd["in_proj_weight"], 3)
    bq, bk, bv = np.split(sd["in_proj_bias"], 3)
    B, L, S = xq.shape[0], xq.shape[1], xk.shape[1]
    q = ((xq @ Wq.T + bq) / np.float32(math.sqrt(hd))).reshape(B, L, heads, hd).transpose(0, 2, 1, 3)
    k = (xk @ Wk.T + bk).reshape(B, S, heads, hd).transpose(0, 2, 1, 3)
    v = (xv @ Wv.T + bv).reshape(B, S, heads, hd).transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    w = e / e.sum(axis=-1, keepdims=True)
    o = (w @ v).transpose(0, 2, 1, 3).reshape(B, L, E)
    return o @ sd["out_proj.weight"].T + sd["out_proj.bias"], w.mean(axis=1)


# -- timing ----------------------------------------------------------------------------------------
def side_by_side(ours: Callable[[], Any], ref: Callable[[], Any], budget: float, min_reps: int,
                 max_reps: int) -> tuple[float, float, int]:
    """Median seconds of ``ours`` and ``ref``, alternating calls (and their order) so both see the
    same load. The number of calls follows from ``budget`` and a warm-up estimate."""
    for _ in range(2):
        ours()
        ref()
    t0 = time.perf_counter()
    ours()
    ref()
    est = max(time.perf_counter() - t0, 1e-7)
    reps = int(min(max(budget / est * 2, min_reps), max_reps))
    t_ours, t_ref = [], []
    for i in range(reps):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            fn, store = (ours, t_ours) if which == 0 else (ref, t_ref)
            t = time.perf_counter()
            fn()
            store.append(time.perf_counter() - t)
    return float(np.median(t_ours)), float(np.median(t_ref)), reps


def blas_info() -> str:
    """Which BLAS numpy uses (threadpoolctl when installed, else numpy's build configuration)."""
    try:
        from threadpoolctl import threadpool_info  # optional

        libs = [f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} threads, "
                f"{d.get('threading_layer', '?')})" for d in threadpool_info() if d.get("user_api") == "blas"]
        if libs:
            return "; ".join(libs) + " [threadpoolctl]"
    except ImportError:
        pass
    try:
        cfg = np.__config__.CONFIG["Build Dependencies"]["blas"]
        threads = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
                   if k in os.environ}
        extra = f", env {threads}" if threads else ", default thread count"
        return f"{cfg.get('name')} {cfg.get('version')} (numpy build config{extra}; threadpoolctl not installed)"
    except Exception:  # pragma: no cover - very old numpy
        return "unknown (numpy build configuration not available)"


def _limit_threads(n: int | None):
    if n is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print(f"note: --blas-threads {n} ignored (threadpoolctl not installed); "
              f"set OPENBLAS_NUM_THREADS={n} before starting instead")
        return None
    return threadpool_limits(limits=n, user_api="blas")


def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - {"single", "batch", "mha"}
    if unknown:
        print(f"error: unknown case(s) {sorted(unknown)}; choose from single, batch, mha")
        return 2
    limiter = _limit_threads(args.blas_threads)
    d, B, H = args.dim, args.batch, args.heads
    rng = np.random.default_rng(args.seed)
    print(f"attention benchmark: d={d}, batch={B}, heads={H}, float32, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"BLAS: {blas_info()}")
    rows, results = [], []
    att = ScaledDotProductAttention(dim=d, max_keys=max(sizes))
    for case in cases:
        for N in sizes:
            K = rng.standard_normal((N, d), dtype=np.float32)
            V = rng.standard_normal((N, d), dtype=np.float32)
            per = 1
            if case == "single":
                q = rng.standard_normal(d, dtype=np.float32)
                ours = lambda: att.forward(q, K, V)  # noqa: E731
                ref = lambda: numpy_single(q, K, V, att.scale)  # noqa: E731
                diff = np.abs(ours() - ref()).max()
            elif case == "batch":
                Q = rng.standard_normal((B, d), dtype=np.float32)
                per = B
                ours = lambda: att.forward_batch(Q, K, V)  # noqa: E731
                ref = lambda: numpy_batch(Q, K, V, att.scale)  # noqa: E731
                diff = np.abs(ours() - ref()).max()
            else:
                mha = MultiHeadAttention(embed_dim=d, num_heads=H, rng=args.seed, max_keys=max(sizes)).eval()
                sd = mha.state_dict()
                xq = rng.standard_normal((1, 1, d), dtype=np.float32)
                xk, xv = K[None], V[None]
                ours = lambda: mha(xq, xk, xv)  # noqa: E731
                ref = lambda: numpy_mha(xq, xk, xv, sd, H)  # noqa: E731
                (o1, w1), (o2, w2) = ours(), ref()
                diff = max(np.abs(o1 - o2).max(), np.abs(w1 - w2).max())
            t_ours, t_ref, reps = side_by_side(ours, ref, args.budget, args.min_reps, args.max_reps)
            ratio = t_ref / t_ours
            target = ""
            if N >= 10_000:
                target = "ok" if ratio >= 1.0 else "SLOWER"
            if case == "single" and N == 1000:
                target = ("ok" if t_ours * 1e6 < 50 else "MISSED") + " (<50 µs)"
            label = {"single": "single query", "batch": f"batch of {B}", "mha": f"MHA {H} heads"}[case]
            rows.append([label, f"{N:,}", t_ours * 1e6, t_ref * 1e6, f"{ratio:.2f}x",
                         t_ours * 1e6 / per, reps, f"{diff:.1e}", target])
            results.append(dict(case=case, n=N, ours_us=t_ours * 1e6, numpy_us=t_ref * 1e6, ratio=ratio,
                                ours_us_per_query=t_ours * 1e6 / per, reps=reps, max_abs_diff=float(diff)))
            print(f"  {label:<14} N={N:>7,}: ours {t_ours * 1e6:,.1f} µs, numpy {t_ref * 1e6:,.1f} µs, "
                  f"ratio {ratio:.2f}x", flush=True)
    print_table(["case", "N", "ours µs (median)", "numpy µs (median)", "speed-up", "ours µs / query",
                 "calls", "max |diff|", "target"], rows,
                title="Attention: library vs plain numpy/BLAS, same run (speed-up = numpy / ours)")
    if limiter is not None:
        limiter.unregister() if hasattr(limiter, "unregister") else None
    if args.json:
        write_json_atomic(args.json, dict(benchmark="attention", dim=d, batch=B, heads=H, blas=blas_info(),
                                    results=results))
    return 0


def main() -> int:
    return run(build_parser().parse_args())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
