"""Poincaré embeddings: reconstruction of the WordNet mammal subtree (Nickel and Kiela, 2017).

Data: the hyponym closure of ``mammal.n.01`` read from the WordNet 3.0 noun database of the
Debian package ``wordnet-base`` (``/usr/share/wordnet``); the pairs ``(u, a)`` with ``a`` a
hypernym ancestor of ``u`` inside the subtree. Training: ``PoincareEmbedding`` (negative
sampling, Riemannian SGD, burn-in); evaluation: reconstruction mean rank and MAP over all
training pairs, as in the paper's section 4.1. The paper reports mean rank 1.26 / MAP 0.927
for this subtree at dimension 5. WordNet serves only this reproduction.
"""
from __future__ import annotations

import argparse
import json
import time

from .common import print_table

PAPER = {"mean_rank": 1.26, "map": 0.927}


def build_parser(prog: str = "poincare") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--wordnet-dir", default="/usr/share/wordnet")
    p.add_argument("--root", default="mammal.n.01")
    p.add_argument("--dim", type=int, default=5)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--lr", type=float, default=0.03, help="per-pair Riemannian SGD learning rate")
    p.add_argument("--negatives", type=int, default=50)
    p.add_argument("--burn-in", type=int, default=20)
    p.add_argument("--burn-in-factor", type=float, default=0.01)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..datasets.wordnet import subtree_closure
    from ..training.poincare import PoincareEmbedding

    names, pairs = subtree_closure(args.root, args.wordnet_dir)
    pe = PoincareEmbedding(len(names), dim=args.dim, lr=args.lr, negatives=args.negatives,
                           burn_in_epochs=args.burn_in, burn_in_factor=args.burn_in_factor, seed=args.seed)
    rows = []
    t_train = 0.0
    done = 0
    while done < args.epochs:
        step = min(args.eval_every, args.epochs - done)
        t0 = time.perf_counter()
        pe.fit(pairs, epochs=step)
        t_train += time.perf_counter() - t0
        done += step
        m = pe.evaluate(pairs)
        rows.append({"epochs": done, "train_seconds": t_train, "loss": pe.history[-1]["loss"], **m})
        if not args.json:
            print(f"  epoch {done}: mean rank {m['mean_rank']:.3f}, MAP {m['map']:.4f} "
                  f"(training {t_train:.1f}s)", flush=True)
    out = {"nodes": len(names), "pairs": int(pairs.shape[0]), "dim": args.dim, "paper": PAPER, "curve": rows,
           "params": {k: getattr(args, k) for k in ("lr", "negatives", "burn_in", "burn_in_factor", "seed")}}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    last = rows[-1]
    print_table(["", "mean rank", "MAP", "training time"],
                [["paper (dim 5)", PAPER["mean_rank"], PAPER["map"], ""],
                 [f"this run (dim {args.dim}, {last['epochs']} epochs)", last["mean_rank"], last["map"],
                  f"{last['train_seconds']:.1f}s"]],
                title=f"WordNet {args.root} closure: {len(names)} nodes, {pairs.shape[0]} pairs")
    return 0


def main() -> int:
    return run(build_parser().parse_args())
