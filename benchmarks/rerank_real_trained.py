"""The trained rows of ``bench rerank-real --task deps`` alone, with the two reference rows
(vector-only and the naive re-rank) on the same queries: the same split, candidates, training
pairs and scoring as the full benchmark, without its zero-shot grids; with the ensemble of the
hard-negative layer and the package default's attention scorer (weight chosen on the tuning split);
and the vote with a query map trained by VoteTrainer (``--skip-dirgnn``: that one alone), beside
the untrained vote with the alias defaults.

``python benchmarks/rerank_real_trained.py [rerank-real options, e.g. --quick
--max-tune-queries 100 --max-test-queries 400 --train-epochs 4 --train-queries 6000]``
"""
from __future__ import annotations

import sys
import time

import numpy as np


def main(argv=None) -> int:
    import networkx as nx

    import ruvector_graph_attn as rga
    from ruvector_graph_attn.bench import rerank_real as R
    from ruvector_graph_attn.connectors import NetworkXGraph
    from ruvector_graph_attn.rerank.metrics import ranking_metrics

    args = R.build_parser("rerank_real_trained").parse_args(argv)
    t0 = time.perf_counter()
    g, X = R.load(args)
    tune, test = R.split_queries(g, args.holdout, args.seed)
    held = np.concatenate([tune, test])
    if args.max_test_queries:
        test = test[: args.max_test_queries]
    if args.max_tune_queries:
        tune = tune[: args.max_tune_queries]
    task = R.Task(g, X, tune, test, args.candidates, held, ef_construction=100 if args.quick else 200)
    Qs = {"tune": tune, "test": test}
    C = {s: task.candidates(Qs[s]) for s in Qs}
    qx = {s: X[Qs[s]] for s in Qs}
    rows = []

    def evaluate(split, ranked):
        return ranking_metrics(ranked, task.rel(Qs[split]), R.K)

    def add(method, params, ranked, tune_ndcg=None):
        m = evaluate("test", ranked)
        rows.append((method, params, m, tune_ndcg))
        print(f"{method:<58} {params:<60} R@10 {m['recall@10']:.4f} MRR@10 {m['mrr@10']:.4f} "
              f"nDCG@10 {m['ndcg@10']:.4f}" + ("" if tune_ndcg is None else f"  (tune {tune_ndcg:.4f})"), flush=True)

    add("HNSW vector-only", f"candidates={args.candidates}", [c[: R.K] for c in C["test"]])
    M_both = task.neighbour_means(task.both_ptr, task.both_idx)
    cos = np.einsum("bd,bcd->bc", qx["test"], X[C["test"]])
    nb = task.neighbour_mean_sim(qx["test"], C["test"], M_both)
    add("naive: cos + 0.5 * mean neighbour cos", "neighbours: both", R.rank_rows(C["test"], cos + 0.5 * nb))
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(task.n))
    G.add_edges_from(zip(task.ei[0].tolist(), task.ei[1].tolist()))
    graph = NetworkXGraph(G)
    graph.refresh()

    def lib_rank(split, **kw):
        rr = rga.GraphReranker(task.index, graph, candidates=args.candidates + 1, **kw)
        ids, _ = rr.rerank_arrays(qx[split], R.K + 1)
        return [r[r != q][: R.K] for r, q in zip(ids, Qs[split])]

    # the untrained vote (alias defaults, dependencies: "out"): the reference of the trained query map
    add("vote (alias defaults, untrained)", "T=0.1, voters=20, graph_candidates=20, out",
        lib_rank("test", scorer="vote", direction="out"))
    R.trained_rows(args, task, X, lib_rank, add, evaluate, attention=R.default_attention(task.index, graph))
    vec, naive = rows[0][2]["ndcg@10"], rows[1][2]["ndcg@10"]
    print(f"\n{test.size} test queries, {tune.size} tuning queries; total {time.perf_counter() - t0:.0f} s")
    for method, params, m, _ in rows:
        print(f"| {method} | {params} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} | "
              f"{m['ndcg@10'] / vec:.2f}x | {m['ndcg@10'] / naive:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
