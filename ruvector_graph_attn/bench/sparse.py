"""Sparse attention benchmark: windowed and strided self-attention against dense masked
attention (numpy/BLAS, same run, where the N x N matrix fits in memory) and against an
nnz-proportional lower bound measured on this machine.

``ruvector-graph-attn bench sparse`` or ``python benchmarks/sparse_bench.py``.

The nnz-proportional lower bound is measured in the same run, right next to each sparse
measurement: the time BLAS takes for the same ``2 * nnz * (d + dv)`` floating-point operations
as two dense products without any gather, ``S = Q @ K[:m].T`` then ``S @ V[:m]`` with
``m = nnz / N`` keys per query (the scores and the weighted sum of the sparse kernel, at the
best rate this machine reaches for matrices of this shape). It also includes no exp, no
softmax and no index reads, so no sparse implementation can reach it. A memory term
(reading Q, K, V once, writing the output and the nnz weights, at the measured copy
bandwidth) is taken when larger; for d=64 it never is. Because the machine may be shared,
the final table also gives the kernel against the same flops at the best BLAS rate seen in
the whole run ("kernel/peak bound"), the least load-disturbed form of the bound.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ..attention.sparse import SparseAttention, SparseMask
from ..kernels.sparse import csr_attention
from .common import print_table


def best_time(fn, repeat: int = 3, warmup: int = 1, min_time: float = 0.0) -> float:
    """Fastest run of ``fn()`` in seconds, over at least ``repeat`` runs and at least ``min_time``
    seconds of runs (at most 200). On a shared machine the minimum is the measurement least
    disturbed by other processes (as ``timeit`` recommends), and more runs of a cheap case give
    it more chances to land in a quiet moment."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_time and len(times) < 200):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


HEADERS = ["pattern", "N", "nnz", "keys/query", "cold call ms", "warm call ms", "pattern ms", "kernel ms",
           "kernel GFLOP/s", "BLAS same flops ms", "kernel/BLAS", "dense ms", "dense/warm", "dense/cold",
           "max abs diff"]


def build_parser(prog: str = "sparse_bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=str, default="4096,16384,65536", help="sequence lengths N (comma separated)")
    p.add_argument("--dim", type=int, default=64, help="head dimension d (= value dimension)")
    p.add_argument("--window", type=int, default=128, help="window radius w: keys with |i - j| <= w")
    p.add_argument("--stride", type=int, default=128, help="strided pattern: keys with (i - j) %% stride == 0")
    p.add_argument("--global-tokens", type=str, default="0", help="global tokens of the strided pattern")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (the fastest is kept)")
    p.add_argument("--dense-limit-gib", type=float, default=8.0,
                   help="skip the dense baseline when its N x N arrays need more than this")
    p.add_argument("--min-time", type=float, default=2.0,
                   help="keep repeating each sparse and bound measurement for at least this many seconds")
    p.add_argument("--threads", type=int, default=None,
                   help="Numba threads (default: all); for BLAS set OPENBLAS_NUM_THREADS before starting")
    p.add_argument("--seed", type=int, default=0)
    return p


# -- baselines -----------------------------------------------------------------------------------
def dense_blocked_mask(n: int, window: int, stride: int, global_tokens: np.ndarray) -> np.ndarray:
    """Boolean [N, N], True where attention is NOT allowed (built in row blocks with numpy)."""
    blocked = np.empty((n, n), dtype=bool)
    j = np.arange(n, dtype=np.int64)[None, :]
    for s in range(0, n, 1024):
        i = np.arange(s, min(s + 1024, n), dtype=np.int64)[:, None]
        allowed = np.abs(i - j) <= window
        if stride:
            allowed |= (i - j) % stride == 0
        if global_tokens.size:
            allowed[:, global_tokens] = True
            allowed[np.isin(i[:, 0], global_tokens)] = True
        blocked[s:s + i.shape[0]] = ~allowed
    return blocked


def dense_masked_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, blocked: np.ndarray,
                           scale: float) -> np.ndarray:
    """softmax(scale * Q K^T, -inf where blocked) V with the full N x N matrix (BLAS + numpy)."""
    s = q @ k.T
    s *= scale
    np.putmask(s, blocked, -np.inf)
    s -= s.max(axis=1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=1, keepdims=True)
    return s @ v


# -- the lower bound ----------------------------------------------------------------------------
def blas_same_flops(q: np.ndarray, k: np.ndarray, v: np.ndarray, m: int):
    """A callable doing ``2 * N * m * (d + dv)`` flops as two BLAS products (no gather, no softmax)."""
    km, vm = k[:m], v[:m]
    s = np.empty((q.shape[0], m), dtype=q.dtype)
    out = np.empty((q.shape[0], v.shape[1]), dtype=q.dtype)

    def fn():
        np.matmul(q, km.T, out=s)
        np.matmul(s, vm, out=out)
    return fn


def copy_bandwidth() -> float:
    """Bytes/s moved (read + write) by a 256 MiB numpy copy."""
    src = np.ones(64 * 1024 * 1024, dtype=np.float32)
    dst = np.empty_like(src)
    t = best_time(lambda: np.copyto(dst, src), repeat=10, warmup=1)
    return 2.0 * src.nbytes / t


def memory_seconds(n: int, nnz: int, d: int, dv: int, bw: float) -> float:
    # read Q, K [N, d] and V [N, dv] once; write the output [N, dv] and the nnz float32 weights
    return (4.0 * n * (2 * d + dv) + 4.0 * n * dv + 4.0 * nnz) / bw


def run(args: argparse.Namespace) -> int:
    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    globals_ = np.array([int(g) for g in args.global_tokens.split(",") if g.strip()], dtype=np.int64)
    d = args.dim
    rng = np.random.default_rng(args.seed)
    att = SparseAttention(dim=d, max_keys=max(sizes))
    # compile (cache=True makes later processes skip this)
    small = rng.standard_normal((64, d)).astype(np.float32)
    att.forward_windowed(small, small, small, 2)
    att.forward_strided(small, small, small, 2, 4, global_tokens=(0,))

    bw = copy_bandwidth()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; numba threads "
          f"{numba.get_num_threads()}; copy bandwidth: {bw / 1e9:.1f} GB/s", flush=True)

    rows: list[list] = []
    raw: list[tuple] = []
    peak = 0.0
    for n in sizes:
        q = rng.standard_normal((n, d)).astype(np.float32)
        k = rng.standard_normal((n, d)).astype(np.float32)
        v = rng.standard_normal((n, d)).astype(np.float32)
        for name in ("windowed", "strided"):
            if name == "windowed":
                make_mask = lambda: SparseMask.windowed(args.window)  # noqa: E731
                call = lambda layer: layer.forward_windowed(q, k, v, args.window)  # noqa: E731
                stride, g = 0, np.zeros(0, dtype=np.int64)
                label = f"windowed w={args.window}"
            else:
                make_mask = lambda: SparseMask.strided(args.window, args.stride, globals_)  # noqa: E731
                call = lambda layer: layer.forward_strided(q, k, v, args.window, args.stride,  # noqa: E731
                                                           global_tokens=globals_)
                stride, g = args.stride, globals_
                label = f"strided w={args.window} s={args.stride} g={len(globals_)}"
            # cold: a fresh layer generates the pattern; warm: the layer reuses it
            t_cold = best_time(lambda: call(SparseAttention(dim=d, max_keys=n)), repeat=args.repeat, warmup=0,
                               min_time=args.min_time)
            t_warm = best_time(lambda: call(att), repeat=args.repeat, warmup=1, min_time=args.min_time)
            out_sparse = call(att)
            t_pattern = best_time(lambda: make_mask().csr(n, n), repeat=args.repeat, warmup=0,
                                   min_time=args.min_time)
            indptr, indices = make_mask().csr(n, n)
            nnz = int(indices.shape[0])
            out = np.empty((n, d), dtype=np.float32)
            wts = np.empty(nnz, dtype=np.float32)
            scale = np.float32(att.scale)
            t_kernel = best_time(lambda: csr_attention(q, k, v, indptr, indices, scale, out, wts),
                                 repeat=args.repeat, warmup=1, min_time=args.min_time)
            m = max(1, int(round(nnz / n)))
            flops = 2.0 * nnz * (d + d)
            t_blas = best_time(blas_same_flops(q, k, v, m), repeat=args.repeat, warmup=1,
                               min_time=args.min_time) * nnz / (n * m)
            peak = max(peak, flops / t_blas)
            bound = max(t_blas, memory_seconds(n, nnz, d, d, bw))
            need_gib = n * n * 5 / 2**30
            if need_gib <= args.dense_limit_gib:
                blocked = dense_blocked_mask(n, args.window, stride, g)
                t_dense = best_time(lambda: dense_masked_attention(q, k, v, blocked, att.scale),
                                    repeat=args.repeat, warmup=0)
                err = float(np.abs(dense_masked_attention(q, k, v, blocked, att.scale) - out_sparse).max())
                del blocked
                dense_cells = [f"{t_dense * 1e3:,.1f}", f"{t_dense / t_warm:.1f}x", f"{t_dense / t_cold:.1f}x",
                               f"{err:.1e}"]
            else:
                dense_cells = [f"skipped (needs {need_gib:.0f} GiB)", "-", "-", "-"]
            raw.append((flops, t_kernel, n, nnz))
            rows.append([label, n, nnz, f"{nnz / n:.0f}", f"{t_cold * 1e3:,.1f}", f"{t_warm * 1e3:,.1f}",
                         f"{t_pattern * 1e3:,.1f}", f"{t_kernel * 1e3:,.1f}", f"{flops / t_kernel / 1e9:.1f}",
                         f"{bound * 1e3:,.1f}", f"{t_kernel / bound:.2f}"] + dense_cells)
            print_table(HEADERS, rows[-1:])
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    # the same bound at the best BLAS rate seen in the whole run (least disturbed by other load)
    for row, (flops, t_kernel, n, nnz) in zip(rows, raw):
        row.append(f"{t_kernel / max(flops / peak, memory_seconds(n, nnz, d, d, bw)):.2f}")
    print_table(HEADERS + ["kernel/peak bound"], rows,
                title=f"Sparse self-attention, d={d}, float32 (best of >= {args.repeat} runs each); "
                      f"best BLAS rate seen: {peak / 1e9:.0f} GFLOP/s")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
