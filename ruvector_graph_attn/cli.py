"""The ``ruvector-graph-attn`` command.

Subcommands live in ``ruvector_graph_attn.commands.<name>`` and benchmarks in
``ruvector_graph_attn.bench.<name>``; each module provides ``build_parser(prog)`` and
``run(args) -> int`` and is imported only when its subcommand runs, so start-up stays fast.
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

from .errors import RgaError

#: benchmark name -> module
BENCHES: dict[str, str] = {
    "attention": "bench.attention",
    "graph": "bench.graph",
    "sparse": "bench.sparse",
    "manifold": "bench.manifold",
    "index": "bench.index",
    "rerank": "bench.rerank",
    "rerank-quality": "bench.rerank_quality",
    "rerank-real": "bench.rerank_real",
    "poincare": "bench.poincare",
    "neo4j": "bench.neo4j",
    "train": "bench.train",
    "compress": "bench.compress",
    "distributed": "bench.distributed",
    "serve": "bench.serve",
}

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("commands.demo", "build a small graph dataset, index it and show vector-only vs re-ranked results"),
    "search": ("commands.search", "re-ranked search over your own index and graph files"),
    "index": ("commands.index", "build or inspect an HNSW index from .npy/.csv vectors"),
    "train": ("commands.train", "train a graph layer (node classification / link prediction) and write a checkpoint"),
    "export": ("commands.export", "export a checkpointed model to ONNX (onnxruntime-ready) or a PyG state_dict"),
    "visualize": ("commands.visualize", "draw a query's re-ranked neighbourhood or training curves (PNG/SVG)"),
    "doctor": ("commands.doctor", "check the installation (Numba, hnswlib, extras, Java/Maven) and how to fix it"),
    "serve": ("commands.serve", "the HTTP/JSON service (search, rerank, embed, traverse) over an index and a graph"),
    "bench": ("", "run a benchmark: " + ", ".join(BENCHES)),
}


def _usage() -> str:
    lines = ["usage: ruvector-graph-attn <command> [options]", "", "commands:"]
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<9} {text}")
    lines.append("")
    lines.append("`ruvector-graph-attn <command> --help` describes a command's options.")
    return "\n".join(lines)


def _run_module(module: str, prog: str, argv: Sequence[str]) -> int:
    try:
        mod = importlib.import_module(f"ruvector_graph_attn.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("ruvector_graph_attn"):
            print(f"error: {prog} is not available in this installation ({exc.name} missing)", file=sys.stderr)
            return 2
        raise
    parser = mod.build_parser(prog)
    args = parser.parse_args(list(argv))
    return int(mod.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"ruvector-graph-attn {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "bench":
            if not rest or rest[0] in ("-h", "--help"):
                print("usage: ruvector-graph-attn bench <name> [options]\n\nbenchmarks: " + ", ".join(BENCHES))
                return 0
            name = rest[0]
            if name not in BENCHES:
                print(f"error: unknown benchmark {name!r}; choose from {', '.join(BENCHES)}", file=sys.stderr)
                return 2
            return _run_module(BENCHES[name], f"ruvector-graph-attn bench {name}", rest[1:])
        if cmd not in COMMANDS:
            print(f"error: unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
            return 2
        return _run_module(COMMANDS[cmd][0], f"ruvector-graph-attn {cmd}", rest)
    except RgaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
