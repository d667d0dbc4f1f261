"""``ruvector-graph-attn bench compress``: size, accuracy and speed of compressed models against
the uncompressed model in the same run.

Each model of ``bench train`` (GAT, GraphSAGE, GIN on the Cora-shaped graph) is trained in
float32 with the same recipe; the trained model is then compressed three ways: int8 weights
(per-output-channel scales), magnitude pruning (50% of every weight matrix), low-rank
factorisation of the weight matrices (rank 16). Pruned matrices are stored dense (the zeros
still take space; sparse storage pays only at much higher sparsity). Reported per
variant: parameter bytes, test accuracy of the final weights, its difference to float32 in
points, and the median evaluation-forward time as a ratio to float32 (> 1x: faster).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from .common import print_table


def build_parser(prog: str = "ruvector-graph-attn bench compress") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="gat,sage,gin", help="comma-separated subset of gat,sage,gin")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rank", type=int, default=16, help="rank of the low-rank variant")
    p.add_argument("--prune", type=float, default=0.5, help="fraction pruned by the pruning variant")
    p.add_argument("--repeat", type=int, default=7, help="timed evaluation forwards per variant")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    return p


def _accuracy(model, ds) -> float:
    model.eval()
    pred = model(ds.x, ds.edge_index).argmax(1)
    return float((pred[ds.test_mask] == ds.y[ds.test_mask]).mean())


def _forward_s(model, ds, repeat: int) -> float:
    model.eval()
    model(ds.x, ds.edge_index)                       # warm-up (compilation, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model(ds.x, ds.edge_index)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run(args: argparse.Namespace) -> int:
    from .. import nn as rnn
    from ..compress import low_rank, model_nbytes, prune, quantize_int8
    from ..training.datasets import cora_like
    from .train import LR, build_ours, model_names, train_ours

    names = model_names(args.models)
    ds = cora_like(seed=0)
    f, c = ds.x.shape[1], ds.num_classes
    print(ds.description, flush=True)
    results: dict[str, Any] = {"epochs": args.epochs, "seed": args.seed, "rank": args.rank,
                               "prune": args.prune, "models": {}}
    rows = []
    for name in names:
        import copy

        rnn.seed(1000 + args.seed)
        model = build_ours(name, f, c, seed=args.seed)
        train_ours(model, ds, LR[name], args.epochs)
        variants = {
            "float32": model,
            "int8": quantize_int8(model),
            f"pruned {int(100 * args.prune)}%": copy.deepcopy(model),
            f"low-rank r={args.rank}": low_rank(model, args.rank),
        }
        prune(variants[f"pruned {int(100 * args.prune)}%"], args.prune)
        base_acc = _accuracy(model, ds)
        base_s = _forward_s(model, ds, args.repeat)
        base_bytes = model_nbytes(model)
        results["models"][name] = {}
        for vname, m in variants.items():
            acc = _accuracy(m, ds)
            fs = base_s if m is model else _forward_s(m, ds, args.repeat)
            nbytes = model_nbytes(m)
            results["models"][name][vname] = {"bytes": nbytes, "test_acc": acc, "forward_s": fs}
            rows.append([name, vname, f"{nbytes / 1024:.0f}", f"{base_bytes / nbytes:.2f}x", f"{100 * acc:.1f}",
                         f"{100 * (acc - base_acc):+.1f}", f"{fs * 1e3:.2f}", f"{base_s / fs:.2f}x"])
        print(f"{name}: done", flush=True)
    print_table(["model", "variant", "KiB", "smaller", "test acc %", "vs float32 (points)", "forward ms",
                 "speed vs float32"], rows,
                title=f"compression of trained models ({args.epochs} epochs, seed {args.seed}); same run")
    if args.json:
        from ..fileio import write_json_atomic

        write_json_atomic(args.json, results)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
