"""``ruvector-graph-attn index build|info``: build an HNSW index from .npy/.csv vectors, or
describe a saved one."""
from __future__ import annotations

import argparse
import json

import numpy as np

from ..errors import InvalidInputError
from ._io import print_summary, read_ids, read_vectors


def build_parser(prog: str = "ruvector-graph-attn index") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build an index from a vectors file and save it to a directory")
    b.add_argument("--vectors", required=True, help=".npy or .csv file of [n, D] vectors")
    b.add_argument("--ids", help="ids file (.npy, or one id per line); default 0..n-1")
    b.add_argument("--out", required=True, help="output directory (written atomically)")
    b.add_argument("--space", default="cosine", choices=("cosine", "ip", "l2"))
    b.add_argument("--M", type=int, default=16)
    b.add_argument("--ef-construction", type=int, default=200)
    b.add_argument("--threads", type=int, default=-1)
    b.add_argument("--json", action="store_true", help="print a JSON summary")
    i = sub.add_parser("info", help="describe a saved index")
    i.add_argument("path", help="index directory")
    i.add_argument("--json", action="store_true")
    return p


def _summary(index, path) -> dict:
    ids = index.ids()
    return {"path": str(path), "count": len(index), "dim": index.dim, "space": index.space, "M": index.M,
            "ef_construction": index.ef_construction, "ef": index.ef,
            "id_kind": "str" if ids.dtype == object else "int",
            "first_ids": [v.item() if hasattr(v, "item") else v for v in ids[:5]]}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..index.hnsw import HNSWIndex

    console = Console(stderr=True)
    if args.action == "info":
        index = HNSWIndex.load(args.path)
        info = _summary(index, args.path)
        print_summary(info, args.json)
        return 0

    X = read_vectors(args.vectors)
    ids = read_ids(args.ids, X.shape[0]) if args.ids else list(range(X.shape[0]))
    if len(set(ids)) != len(ids):
        raise InvalidInputError("ids contain duplicates")
    index = HNSWIndex(dim=X.shape[1], space=args.space, M=args.M, ef_construction=args.ef_construction,
                      max_elements=X.shape[0], num_threads=args.threads)
    chunk = 10_000
    with Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=args.json or not console.is_terminal) as prog:
        task = prog.add_task("add", total=X.shape[0])
        for s in range(0, X.shape[0], chunk):
            part = ids[s:s + chunk]
            index.add(np.asarray(part, dtype=object if isinstance(part[0], str) else np.int64), X[s:s + chunk])
            prog.update(task, advance=len(part))
    index.save(args.out)
    info = _summary(index, args.out)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"indexed {info['count']} vectors of dim {info['dim']} ({info['space']}) -> {args.out}")
    return 0
