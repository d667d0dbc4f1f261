"""``ruvector-graph-attn bench train``: node-classification training, this library vs PyG.

Models (Planetoid-style, two layers): GAT (8 heads x 8, ELU, dropout 0.6, attention dropout
0.6), GraphSAGE (mean, 64 hidden, ReLU, dropout 0.5) and GIN (MLP 64, ReLU, dropout 0.5),
Adam (lr 0.005 for GAT, 0.01 otherwise, weight decay 5e-4), trained full batch on the
Cora-shaped graph of :func:`ruvector_graph_attn.training.datasets.cora_like` (no download).
``--dataset taxonomy`` uses the large shape of
:func:`ruvector_graph_attn.training.datasets.taxonomy_like` instead: 80K nodes, 170K undirected
edges with a taxonomy's degree distribution (many leaves, a few hubs with hundreds of
children), 384-d unit-norm text-embedding-like features, 26 classes; there every model uses
dropout 0.5, on the input features too (GAT: on attention as well), and 30 epochs by default.

When ``torch_geometric`` is importable the same architecture is built in PyG, given the
*same initial weights* (exported with ``export_pyg_state_dict``), the same optimizer and the
same number of epochs, and trained in the same process, alternating with ours per seed.
Both use 2 threads (torch.set_num_threads, Numba threads, BLAS). Reported: test accuracy
at the epoch of best validation accuracy (mean over seeds) and the median seconds of one
training step (forward, loss, backward, optimizer step; evaluation excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from .common import print_table

MODELS = ("gat", "sage", "gin")


def model_names(arg: str) -> list[str]:
    """The ``--models`` list; raises InvalidInputError naming unknown models."""
    from ..errors import InvalidInputError

    names = [m.strip() for m in arg.split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if bad or not names:
        raise InvalidInputError(f"unknown model(s) {bad or arg!r}; choose from {', '.join(MODELS)}")
    return names


def build_parser(prog: str = "ruvector-graph-attn bench train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of gat,sage,gin")
    p.add_argument("--dataset", default="cora", choices=("cora", "taxonomy"),
                   help="cora: Cora-shaped (2.7K nodes, 1,433-d); taxonomy: 80K nodes / 170K undirected edges / 384-d")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default 200 for cora, 30 for taxonomy)")
    p.add_argument("--seeds", type=int, default=3, help="number of runs (weight seeds) per model")
    p.add_argument("--dataset-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-pyg", action="store_true", help="skip the PyTorch Geometric side")
    p.add_argument("--threading-layer", default="default", choices=("workqueue", "omp", "tbb", "default"),
                   help="Numba threading layer; 'default' leaves Numba's choice (the "
                        "package sets OMP_WAIT_POLICY=PASSIVE so OpenMP threads do not spin against BLAS threads)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    return p


# -- model definitions (ours and PyG's, same layout) -----------------------------------------
def build_ours(name: str, f: int, c: int, seed: int, gat_dropout: float = 0.6, input_dropout: float = 0.0):
    from .. import nn
    from ..graph import GATConv, GINConv, GraphSequential, SAGEConv

    r = np.random.default_rng(seed)
    if name == "gat":
        p = gat_dropout
        return GraphSequential([nn.Dropout(p), GATConv(f, 8, heads=8, dropout=p, rng=r), nn.ELU(),
                                nn.Dropout(p), GATConv(64, c, heads=1, concat=False, dropout=p, rng=r)])
    pre = [nn.Dropout(input_dropout)] if input_dropout else []
    if name == "sage":
        return GraphSequential(pre + [SAGEConv(f, 64, aggr="mean", rng=r), nn.ReLU(), nn.Dropout(0.5),
                                      SAGEConv(64, c, aggr="mean", rng=r)])
    if name == "gin":
        return GraphSequential(pre + [
            GINConv(nn.Sequential(nn.Linear(f, 64, rng=r), nn.ReLU(), nn.Linear(64, 64, rng=r))),
            nn.ReLU(), nn.Dropout(0.5),
            GINConv(nn.Sequential(nn.Linear(64, 64, rng=r), nn.ReLU(), nn.Linear(64, c, rng=r)))])
    raise ValueError(name)


def build_pyg(name: str, f: int, c: int, gat_dropout: float = 0.6, input_dropout: float = 0.0):
    """The same layout in PyG: a ``torch.nn.ModuleList`` whose forward passes ``(x, edge_index)``
    to message-passing layers and ``x`` to the others, so parameter names are
    ``0.lin.weight`` ... (our ``layout="torch"``). (``torch_geometric.nn.Sequential`` is avoided:
    it names generated modules with a ``random`` draw, which collides when ``random`` is reseeded.)"""
    import torch
    from torch_geometric import nn as gnn

    T = torch.nn

    class Chain(T.ModuleList):
        def forward(self, x, edge_index):
            for mod in self:
                x = mod(x, edge_index) if isinstance(mod, gnn.MessagePassing) else mod(x)
            return x

    if name == "gat":
        p = gat_dropout
        mods = [T.Dropout(p), gnn.GATConv(f, 8, heads=8, dropout=p), T.ELU(), T.Dropout(p),
                gnn.GATConv(64, c, heads=1, concat=False, dropout=p)]
    elif name == "sage":
        mods = [T.Dropout(input_dropout)] * bool(input_dropout) + [gnn.SAGEConv(f, 64, aggr="mean"), T.ReLU(), T.Dropout(0.5), gnn.SAGEConv(64, c, aggr="mean")]
    else:
        mods = [T.Dropout(input_dropout)] * bool(input_dropout) + [gnn.GINConv(T.Sequential(T.Linear(f, 64), T.ReLU(), T.Linear(64, 64))), T.ReLU(), T.Dropout(0.5),
                gnn.GINConv(T.Sequential(T.Linear(64, 64), T.ReLU(), T.Linear(64, c)))]
    return Chain(mods)


LR = {"gat": 0.005, "sage": 0.01, "gin": 0.01}


# -- training loops ---------------------------------------------------------------------------
def train_ours(model, ds, lr: float, epochs: int) -> dict[str, Any]:
    from ..training import Adam, cross_entropy

    opt = Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    train_idx = np.flatnonzero(ds.train_mask)
    step_times, best_val, test_at_best = [], -1.0, 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        model.zero_grad()
        out = model(ds.x, ds.edge_index)
        _, g = cross_entropy(out, ds.y, mask=train_idx)
        model.backward(g, need_input_grad=False)  # x needs no gradient (as in PyG)
        opt.step()
        step_times.append(time.perf_counter() - t0)
        model.eval()
        pred = model(ds.x, ds.edge_index).argmax(1)
        va = float((pred[ds.val_mask] == ds.y[ds.val_mask]).mean())
        if va > best_val:
            best_val, test_at_best = va, float((pred[ds.test_mask] == ds.y[ds.test_mask]).mean())
    return {"test_acc": test_at_best, "val_acc": best_val, "step_s": float(np.median(step_times))}


def train_pyg(model, ds, lr: float, epochs: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(ds.x)
    ei = torch.from_numpy(ds.edge_index)
    y = torch.from_numpy(ds.y)
    tm, vm, sm = (torch.from_numpy(m) for m in (ds.train_mask, ds.val_mask, ds.test_mask))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    step_times, best_val, test_at_best = [], -1.0, 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad()
        out = model(x, ei)
        loss = F.cross_entropy(out[tm], y[tm])
        loss.backward()
        opt.step()
        step_times.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            pred = model(x, ei).argmax(1)
        va = float((pred[vm] == y[vm]).float().mean())
        if va > best_val:
            best_val, test_at_best = va, float((pred[sm] == y[sm]).float().mean())
    return {"test_acc": test_at_best, "val_acc": best_val, "step_s": float(np.median(step_times))}


def _pyg_available() -> bool:
    try:
        import torch  # noqa: F401
        import torch_geometric  # noqa: F401
    except Exception:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    import numba

    from ..training.checkpoint import export_pyg_state_dict
    from ..training.datasets import cora_like, taxonomy_like

    names = model_names(args.models)
    if args.threading_layer != "default" and "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = args.threading_layer  # before the first parallel kernel runs
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    use_pyg = not args.no_pyg and _pyg_available()
    if use_pyg:
        import torch

        torch.set_num_threads(args.threads)
    if args.epochs is None:
        args.epochs = 200 if args.dataset == "cora" else 30
    if args.dataset == "cora":
        ds, gat_p, in_p = cora_like(seed=args.dataset_seed), 0.6, 0.0
    else:
        ds, gat_p, in_p = taxonomy_like(seed=args.dataset_seed), 0.5, 0.5
    f, c = ds.x.shape[1], ds.num_classes
    print(ds.description, flush=True)
    print(f"split: {int(ds.train_mask.sum())} train / {int(ds.val_mask.sum())} val / {int(ds.test_mask.sum())} test; "
          f"epochs {args.epochs}, seeds {args.seeds}, threads {args.threads}, PyG {'yes' if use_pyg else 'no'}",
          flush=True)
    results: dict[str, Any] = {"dataset": ds.description, "dataset_name": args.dataset, "epochs": args.epochs, "seeds": args.seeds,
                               "threading_layer": args.threading_layer, "models": {}}
    rows = []
    layer_used = None
    for name in names:
        ours_runs, pyg_runs = [], []
        for s in range(args.seeds):
            from .. import nn as rnn

            rnn.seed(1000 + s)
            model = build_ours(name, f, c, seed=s, gat_dropout=gat_p, input_dropout=in_p)
            init = export_pyg_state_dict(model, layout="torch")
            if use_pyg:
                import torch

                torch.manual_seed(1000 + s)
                pm = build_pyg(name, f, c, gat_dropout=gat_p, input_dropout=in_p)
                pm.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in init.items()})
            # warm-up (Numba compilation) on a copy so the timed run starts from the shared weights
            if s == 0:
                train_ours(build_ours(name, f, c, seed=99, gat_dropout=gat_p, input_dropout=in_p), ds, LR[name], 2)
            ours_runs.append(train_ours(model, ds, LR[name], args.epochs))
            if use_pyg:
                pyg_runs.append(train_pyg(pm, ds, LR[name], args.epochs))
            msg = f"{name} seed {s}: ours acc {ours_runs[-1]['test_acc']:.3f} step {ours_runs[-1]['step_s'] * 1e3:.1f} ms"
            if use_pyg:
                msg += f" | PyG acc {pyg_runs[-1]['test_acc']:.3f} step {pyg_runs[-1]['step_s'] * 1e3:.1f} ms"
            print(msg, flush=True)
        if layer_used is None:
            layer_used = numba.threading_layer()
            print(f"numba threading layer: {layer_used}", flush=True)
        acc = float(np.mean([r["test_acc"] for r in ours_runs]))
        step = float(np.median([r["step_s"] for r in ours_runs]))
        entry: dict[str, Any] = {"ours": {"test_acc": acc, "step_s": step, "runs": ours_runs}}
        row: list[Any] = [name, f"{100 * acc:.1f}", f"{step * 1e3:.1f}"]
        if use_pyg:
            pacc = float(np.mean([r["test_acc"] for r in pyg_runs]))
            pstep = float(np.median([r["step_s"] for r in pyg_runs]))
            entry["pyg"] = {"test_acc": pacc, "step_s": pstep, "runs": pyg_runs}
            row += [f"{100 * pacc:.1f}", f"{100 * (acc - pacc):+.1f}", f"{pstep * 1e3:.1f}", f"{pstep / step:.2f}x"]
        results["models"][name] = entry
        rows.append(row)
    headers = ["model", "acc % (ours)", "ms/epoch (ours)"]
    if use_pyg:
        headers += ["acc % (PyG)", "delta (points)", "ms/epoch (PyG)", "speed ours vs PyG"]
    print_table(headers, rows, title=f"node classification, {args.epochs} epochs, mean of {args.seeds} seeds "
                                     "(speed > 1x: ours faster)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
