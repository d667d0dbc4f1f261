"""``ruvector-graph-attn export CKPT --format onnx|pyg``: write a checkpointed graph layer or
model as an ONNX file (dynamic ``x``/``edge_index`` sizes) or as a PyTorch Geometric
``state_dict`` (``.npz``) with its architecture (``.json``)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ._io import print_summary


def build_parser(prog: str = "ruvector-graph-attn export") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a checkpoint written by `train` or rga.save_checkpoint")
    p.add_argument("--format", default="onnx", choices=("onnx", "pyg"), help="output format (default onnx)")
    p.add_argument("--out", help="output path (default: the checkpoint's name with .onnx / .npz)")
    p.add_argument("--layout", default="torch", choices=("torch", "pyg_sequential", "basic_gnn"),
                   help="pyg: container naming of the state_dict (default torch)")
    p.add_argument("--verify", action="store_true",
                   help="onnx: run the file with onnxruntime on a random graph (duplicate edges, self loops, "
                        "an isolated node) and compare with the library's forward")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    return p


def verify_onnx(model, path, num_nodes: int = 23, num_edges: int = 61, seed: int = 0) -> float:
    """Max abs difference between onnxruntime on ``path`` and ``model``'s forward on a random
    graph with duplicate edges, self loops and an isolated node."""
    from ..export import uses_edge_features
    from ..export.onnx_graph import _edge_dim, _in_features

    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise InvalidInputError("--verify needs onnxruntime: pip install 'ruvector-graph-attn[onnx]'") from exc
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_nodes, _in_features(model))).astype(np.float32)
    ei = rng.integers(0, num_nodes - 1, size=(2, num_edges)).astype(np.int64)   # node n-1 isolated
    ei[:, 1] = ei[:, 0]                                                         # a duplicate edge
    ei[1, 2] = ei[0, 2]                                                         # a self loop
    feeds = {"x": x, "edge_index": ei}
    was_training = getattr(model, "training", False)
    model.eval()
    if uses_edge_features(model):
        feeds["edge_attr"] = rng.normal(size=(num_edges, _edge_dim(model))).astype(np.float32)
        ref = model(x, ei, feeds["edge_attr"])
    else:
        ref = model(x, ei)
    if was_training:
        model.train()
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    if out.shape != np.shape(ref):
        raise InvalidInputError(f"onnxruntime output shape {out.shape} differs from the library's {np.shape(ref)}")
    return float(np.max(np.abs(out - ref))) if out.size else 0.0


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx, export_pyg
    from ..training.checkpoint import load_checkpoint

    model = load_checkpoint(args.checkpoint)
    model.eval()
    ckpt = Path(args.checkpoint)
    summary: dict = {"checkpoint": str(ckpt), "format": args.format, "model": type(model).__name__}
    if args.format == "onnx":
        out = Path(args.out) if args.out else ckpt.with_suffix(".onnx")
        export_onnx(model, out)
        summary["out"] = str(out)
        if args.verify:
            summary["max_abs_diff"] = verify_onnx(model, out)
    else:
        if args.verify:
            raise InvalidInputError("--verify applies to --format onnx")
        npz, cfg = export_pyg(model, args.out or ckpt.with_suffix(".npz"), layout=args.layout)
        summary.update(out=str(npz), config=str(cfg), layout=args.layout)
    print_summary(summary, args.json, width=13)
    return 0
