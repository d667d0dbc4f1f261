"""RerankerTrainer epoch time on the 80K-node / 384-d taxonomy-shaped graph: per-batch
computation subgraphs (the default) vs the whole graph per batch (``full_graph=True``).

``python benchmarks/reranker_train_bench.py [--pairs 80000] [--full-batches 8] [--layer sage|dirgnn]``

``--layer dirgnn`` trains the direction-aware residual layer
(``DirGNNConv(SAGEConv(384, 384)).residual_init()``, whose computation subgraphs span both
edge directions) instead of the plain ``SAGEConv``.

The subgraph path trains one full epoch over ``--pairs`` (query, relevant node) pairs
(``graph_query_pairs``) with a ``SAGEConv(384, 384)`` layer, batch 256, 64 negatives. The
full-graph path is timed on ``--full-batches`` batches and its epoch time extrapolated
(one batch runs the layer over all 80K nodes). Quality: both paths train the same fresh
layer for one epoch on ``--quality-pairs`` pairs; the exact subgraph path computes the same
loss, so the validation MRR / recall@10 must agree.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=80_000)
    ap.add_argument("--full-batches", type=int, default=8)
    ap.add_argument("--quality-pairs", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layer", choices=("sage", "dirgnn"), default="sage")
    args = ap.parse_args(argv)
    import numba

    from ruvector_graph_attn import graph as _graph

    def SAGEConv(i, o, rng=None):  # noqa: N802  (the layer under test)
        if args.layer == "sage":
            return _graph.SAGEConv(i, o, rng=rng)
        return _graph.DirGNNConv(_graph.SAGEConv(i, o, rng=rng), rng=rng).residual_init()
    from ruvector_graph_attn.training import Adam, RerankerTrainer, graph_query_pairs
    from ruvector_graph_attn.training.datasets import taxonomy_like

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    ds = taxonomy_like()
    print(ds.description, flush=True)
    x, ei = ds.x, ds.edge_index
    q, pos = graph_query_pairs(x, ei, args.pairs, seed=1)
    vq, vpos = graph_query_pairs(x, ei, 2000, seed=2)

    def trainer(layer, full, epochs=1):
        return RerankerTrainer(layer, Adam(layer.parameters(), lr=0.005), max_epochs=epochs, batch_size=256,
                               num_negatives=64, progress=False, full_graph=full, restore_best=False)

    warm = SAGEConv(384, 384, rng=9)
    trainer(warm, False).fit(x, ei, q[:512], pos[:512])          # compile the kernels
    t0 = time.perf_counter()
    layer = SAGEConv(384, 384, rng=0)
    tr = trainer(layer, False)
    tr.fit(x, ei, q, pos)
    t_sub = time.perf_counter() - t0
    nb = -(-args.pairs // 256)
    n_full = args.full_batches * 256
    t0 = time.perf_counter()
    trainer(SAGEConv(384, 384, rng=0), True).fit(x, ei, q[:n_full], pos[:n_full])
    t_full_batch = (time.perf_counter() - t0) / args.full_batches
    print(f"epoch over {args.pairs} pairs ({nb} batches): subgraph batches {t_sub:.1f} s "
          f"({t_sub / nb * 1e3:.1f} ms/batch); full graph {t_full_batch * 1e3:.0f} ms/batch -> "
          f"{t_full_batch * nb:.0f} s/epoch (extrapolated); speed-up {t_full_batch * nb / t_sub:.1f}x", flush=True)
    print(f"after one subgraph epoch over {args.pairs} pairs: val {tr.evaluate(x, ei, vq, vpos)}", flush=True)
    m = args.quality_pairs
    res = {}
    for full in (False, True):
        lay = SAGEConv(384, 384, rng=3)
        t = trainer(lay, full)
        hist = t.fit(x, ei, q[:m], pos[:m])
        res[full] = (hist[-1]["loss"], t.evaluate(x, ei, vq, vpos))
    print(f"same {m} pairs, one epoch: subgraph loss {res[False][0]:.6f} val {res[False][1]} | "
          f"full graph loss {res[True][0]:.6f} val {res[True][1]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
