"""``ruvector-graph-attn train``: train a GAT / GraphSAGE / GIN model on your graph files.

Node classification (``--task node``) needs ``--labels`` (integer class per node; ``-1`` marks
unlabelled nodes); link prediction (``--task link``) holds out edges and learns node
embeddings. Writes a checkpoint (``--out``, loadable with ``rga.load_checkpoint``) and a
metrics JSON (``--metrics``) with the final scores and the per-epoch history.

Graph file formats: ``.npy`` (an int array ``[2, E]`` or ``[E, 2]``), ``.npz`` (key
``edge_index``), or a text edge list (``.txt``/``.csv``/``.tsv``/``.edgelist``: two integer
node ids per line, separated by whitespace or commas; ``#`` starts a comment). Node ids are
row numbers of the feature matrix.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from ..errors import CorruptFileError, DimensionMismatchError, InvalidInputError
from ..fileio import read_npy_checked, read_text_file, write_json_atomic

METRICS_FORMAT_VERSION = 1


def build_parser(prog: str = "ruvector-graph-attn train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--graph", required=True, help="edge list file (.npy, .npz, or text)")
    p.add_argument("--features", required=True, help="node features .npy [N, F]")
    p.add_argument("--labels", default=None, help="node labels .npy [N] (int; -1 = unlabelled); --task node")
    p.add_argument("--task", choices=("node", "link"), default="node")
    p.add_argument("--model", choices=("gat", "sage", "gin"), default="sage")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--heads", type=int, default=8, help="GAT heads (hidden must be divisible by it)")
    p.add_argument("--out-dim", type=int, default=64, help="embedding size for --task link")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=50, help="early-stopping patience (0 = none)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--val-ratio", type=float, default=0.2)
    p.add_argument("--test-ratio", type=float, default=0.2)
    p.add_argument("--train-mask", default=None, help=".npy boolean mask or index array (overrides the random split)")
    p.add_argument("--val-mask", default=None)
    p.add_argument("--test-mask", default=None)
    p.add_argument("--undirected", action="store_true", help="add the reverse of every edge")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch training with neighbour sampling")
    p.add_argument("--fanouts", default=None, help="per-layer sample sizes, e.g. 10,10 (-1 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--metrics", default=None, help="metrics JSON file to write")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--threading-layer", default="default", choices=("workqueue", "omp", "tbb", "default"),
                   help="Numba threading layer (ignored when NUMBA_THREADING_LAYER is set); 'default' "
                        "keeps Numba's choice (the package sets OMP_WAIT_POLICY=PASSIVE so OpenMP threads do not "
                        "spin against BLAS threads; docs/training.md)")
    return p


def _load_npy(path: str, what: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise InvalidInputError(f"{what} file {path!r} does not exist")
    return read_npy_checked(path, f"{what} file")


def load_edge_index(path: str) -> np.ndarray:
    """Read an edge list file into an int64 ``[2, E]`` array (formats in the module docstring)."""
    if not os.path.isfile(path):
        raise InvalidInputError(f"graph file {path!r} does not exist")
    low = path.lower()
    if low.endswith(".npy"):
        arr = _load_npy(path, "graph")
    elif low.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                if "edge_index" not in z.files:
                    raise InvalidInputError(f"{path!r} has no 'edge_index' array (found {z.files})")
                arr = z["edge_index"]
        except (ValueError, OSError, EOFError) as exc:
            raise CorruptFileError(f"cannot read {path!r}: {exc}") from exc
    else:
        rows = []
        text = read_text_file(path, "graph")
        for lineno, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace(",", " ").replace("\t", " ").split()
            if len(parts) < 2:
                raise InvalidInputError(f"{path}:{lineno}: expected two node ids, got {line!r}")
            try:
                rows.append((int(parts[0]), int(parts[1])))
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{lineno}: node ids must be integers, got {line!r}") from exc
        arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
    arr = np.asarray(arr)
    if arr.dtype.kind not in "iu":
        raise InvalidInputError(f"graph {path!r} must hold integer node ids, got dtype {arr.dtype}")
    if arr.ndim != 2 or 2 not in arr.shape:
        raise InvalidInputError(f"graph {path!r} must have shape [2, E] or [E, 2], got {arr.shape}")
    if arr.shape[0] != 2:
        arr = arr.T
    return np.ascontiguousarray(arr, dtype=np.int64)


def _mask(path: str | None, n: int, what: str) -> np.ndarray | None:
    if path is None:
        return None
    m = _load_npy(path, what)
    if m.dtype == np.bool_:
        if m.shape != (n,):
            raise DimensionMismatchError((n,), m.shape, f"{what} shape")
        return np.flatnonzero(m)
    if m.dtype.kind not in "iu" or m.ndim != 1:
        raise InvalidInputError(f"{what} must be a boolean mask [N] or a 1-D index array")
    return m.astype(np.int64)


def _random_split(labelled: np.ndarray, val_ratio: float, test_ratio: float, seed: int):
    if not (0 <= val_ratio < 1 and 0 <= test_ratio < 1 and val_ratio + test_ratio < 1):
        raise InvalidInputError("--val-ratio + --test-ratio must be in [0, 1)")
    perm = np.random.default_rng(seed).permutation(labelled)
    n_val, n_test = int(round(perm.size * val_ratio)), int(round(perm.size * test_ratio))
    if perm.size - n_val - n_test < 1:
        raise InvalidInputError("no labelled nodes left for training after the split")
    return perm[n_val + n_test:], perm[:n_val], perm[n_val:n_val + n_test]


def run(args: argparse.Namespace) -> int:
    from ..training import Adam, LinkPredictionTrainer, NodeClassificationTrainer, save_checkpoint
    from ..training.models import make_model
    from ..validation import as_float_array, check_edge_index

    if args.threading_layer != "default" and "NUMBA_THREADING_LAYER" not in os.environ:
        import numba

        numba.config.THREADING_LAYER = args.threading_layer  # effective before the first parallel kernel
        from ..threading_policy import guard_kernels

        guard_kernels()  # a workqueue choice serialises kernel calls (see threading_policy)
    x = as_float_array(_load_npy(args.features, "features"), "features", ndim=2)
    n = x.shape[0]
    ei = check_edge_index(load_edge_index(args.graph), n, "graph edges")
    if args.undirected:
        ei = np.ascontiguousarray(np.concatenate([ei, ei[::-1]], axis=1))
    fanouts = None if args.fanouts is None else [int(v) for v in args.fanouts.split(",")]
    patience = args.patience if args.patience and args.patience > 0 else None
    progress = not args.no_progress
    metrics: dict[str, Any] = {"format_version": METRICS_FORMAT_VERSION, "task": args.task, "model": args.model,
                               "num_nodes": int(n), "num_edges": int(ei.shape[1])}
    if args.task == "node":
        if args.labels is None:
            raise InvalidInputError("--task node needs --labels")
        y = _load_npy(args.labels, "labels")
        if y.dtype.kind not in "iu" or y.ndim != 1:
            raise InvalidInputError(f"labels must be a 1-D integer array, got {y.dtype} {y.shape}")
        if y.shape[0] != n:
            raise DimensionMismatchError(n, y.shape[0], "number of labels (must equal feature rows)")
        y = y.astype(np.int64)
        labelled = np.flatnonzero(y >= 0)
        if labelled.size == 0:
            raise InvalidInputError("no labelled nodes (all labels are -1)")
        tr, va, te = (_mask(args.train_mask, n, "train mask"), _mask(args.val_mask, n, "val mask"),
                      _mask(args.test_mask, n, "test mask"))
        if tr is None:
            tr, va0, te0 = _random_split(labelled, args.val_ratio, args.test_ratio, args.seed)
            va = va0 if va is None else va
            te = te0 if te is None else te
        num_classes = int(y[labelled].max()) + 1
        y_safe = np.where(y >= 0, y, 0)
        for name, idx in (("train", tr), ("val", va), ("test", te)):
            if idx is not None and idx.size and (y[idx] < 0).any():
                raise InvalidInputError(f"the {name} split contains unlabelled nodes (label -1)")
        model = make_model(args.model, x.shape[1], args.hidden, num_classes, heads=args.heads,
                           dropout=args.dropout, seed=args.seed)
        opt = Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        trainer = NodeClassificationTrainer(model, opt, max_epochs=args.epochs, patience=patience,
                                            batch_size=args.batch_size, fanouts=fanouts, seed=args.seed,
                                            progress=progress)
        history = trainer.fit(x, ei, y_safe, tr, va if va is not None and va.size else None)
        final = {"train_acc": trainer.evaluate(x, ei, y_safe, tr)}
        if va is not None and va.size:
            final["val_acc"] = trainer.evaluate(x, ei, y_safe, va)
        if te is not None and te.size:
            final["test_acc"] = trainer.evaluate(x, ei, y_safe, te)
        metrics.update(num_classes=num_classes, split_sizes={"train": int(tr.size),
                                                             "val": int(0 if va is None else va.size),
                                                             "test": int(0 if te is None else te.size)})
    else:
        model = make_model(args.model, x.shape[1], args.hidden, args.out_dim, heads=args.heads,
                           dropout=args.dropout, seed=args.seed)
        opt = Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        trainer = LinkPredictionTrainer(model, opt, max_epochs=args.epochs, patience=patience, seed=args.seed,
                                        progress=progress)
        history = trainer.fit(x, ei, val_ratio=args.val_ratio, test_ratio=args.test_ratio, undirected=True)
        final = {f"test_{k}": v for k, v in trainer.evaluate("test").items()}
    metrics.update(final=final, best_epoch=trainer.best_epoch, epochs_run=len(history), history=history)
    save_checkpoint(model, args.out, metadata={"task": args.task, "model": args.model, "final": final})
    if args.metrics:
        write_json_atomic(args.metrics, metrics, indent=1)
    shown = ", ".join(f"{k}={v:.4f}" for k, v in final.items())
    print(f"trained {args.model} ({args.task}) for {len(history)} epochs (best epoch {trainer.best_epoch}): {shown}")
    print(f"checkpoint: {args.out}" + (f"; metrics: {args.metrics}" if args.metrics else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
