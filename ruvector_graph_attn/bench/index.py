"""HNSW index benchmark: recall@10 against exact search, vs ``ef``, on structured and on
uniform random unit vectors; build time and query throughput.

``ruvector-graph-attn bench index`` or ``python benchmarks/index_bench.py``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ..index.hnsw import DEFAULT_EF, HNSWIndex
from .common import print_table, structured_vectors, uniform_unit_vectors


def build_parser(prog: str = "index_bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="vectors in the index")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--efs", type=str, default=f"10,20,40,64,{DEFAULT_EF},200,400")
    p.add_argument("--M", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    return p


def exact_knn(X: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    """Exact cosine top-k by blocked BLAS products."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    out = np.empty((Q.shape[0], k), dtype=np.int64)
    for s in range(0, Q.shape[0], 256):
        sims = Qn[s:s + 256] @ Xn.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1)
        out[s:s + 256] = np.take_along_axis(part, order, 1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def run(args: argparse.Namespace) -> int:
    efs = [int(e) for e in args.efs.split(",")]
    rows = []
    for name, gen in (("structured (GMM, intrinsic dim 12)", structured_vectors),
                      ("uniform random unit vectors", uniform_unit_vectors)):
        X = gen(args.n + args.queries, args.dim, seed=7)
        X, Q = X[: args.n], X[args.n:]
        truth = exact_knn(X, Q, args.k)
        t0 = time.perf_counter()
        idx = HNSWIndex(dim=args.dim, space="cosine", M=args.M, ef_construction=args.ef_construction,
                        max_elements=args.n)
        idx.add(np.arange(args.n), X)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact_knn(X, Q, args.k)
        exact_s = time.perf_counter() - t0
        for ef in efs:
            t0 = time.perf_counter()
            ids, _ = idx.search(Q, k=args.k, ef=ef)
            dt = time.perf_counter() - t0
            single = []
            for q in Q[:200]:
                t1 = time.perf_counter()
                idx.search(q, k=args.k, ef=ef, num_threads=1)
                single.append(time.perf_counter() - t1)
            rows.append([name, ef, recall(ids, truth), args.queries / dt, np.median(single) * 1e6,
                         exact_s / dt, build])
    print_table(["data", "ef", f"recall@{args.k}", "batch QPS", "1-query p50 µs",
                 "speed-up vs exact (batch)", "build s"], rows,
                title=f"HNSW (M={args.M}, ef_construction={args.ef_construction}) on {args.n:,} x {args.dim}, "
                      f"{args.queries} queries, default ef={DEFAULT_EF}")
    return 0


def main() -> int:
    return run(build_parser().parse_args())
