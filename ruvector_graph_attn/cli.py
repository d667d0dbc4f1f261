"""The ``ruvector-graph-attn`` command.

Subcommands live in ``ruvector_graph_attn.commands.<name>`` and benchmarks in
``ruvector_graph_attn.bench.<name>``; each module provides ``build_parser(prog)`` and
``run(args) -> int`` and is imported only when its subcommand runs, so start-up stays fast.
"""
from __future__ import annotations

import argparse
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
    "rerank-defaults": "bench.rerank_defaults",
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


class UsageError(Exception):
    """A command line the parser refused (exit code 2)."""


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` (and its sub-parsers) raise :class:`UsageError` instead of printing
    the usage block and exiting, so every error is one line."""
    def error(message: str, _prog: str = parser.prog) -> None:
        raise UsageError(f"{_prog}: {message} (see --help)")

    parser.error = error  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _one_line_errors(sub)


def _run_module(module: str, prog: str, argv: Sequence[str]) -> int:
    try:
        mod = importlib.import_module(f"ruvector_graph_attn.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("ruvector_graph_attn"):
            raise UsageError(f"{prog} is not available in this installation ({exc.name} missing)") from exc
        raise
    parser = mod.build_parser(prog)
    _one_line_errors(parser)
    args = parser.parse_args(list(argv))
    return int(mod.run(args) or 0)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code: 0 success, 1 failure, 2 usage error, 130
    interrupted. Errors are one line on stderr; ``--debug`` (anywhere) re-raises them with
    the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv:
        print("error: no command given; run `ruvector-graph-attn --help` for the commands", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"ruvector-graph-attn {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "bench":
            if rest and rest[0] in ("-h", "--help"):
                print("usage: ruvector-graph-attn bench <name> [options]\n\nbenchmarks: " + ", ".join(BENCHES))
                return 0
            if not rest:
                raise UsageError(f"bench needs a benchmark name: {', '.join(BENCHES)}")
            name = rest[0]
            if name not in BENCHES:
                raise UsageError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}")
            return _run_module(BENCHES[name], f"ruvector-graph-attn bench {name}", rest[1:])
        if cmd not in COMMANDS:
            raise UsageError(f"unknown command {cmd!r}; choose from {', '.join(COMMANDS)} (see --help)")
        return _run_module(COMMANDS[cmd][0], f"ruvector-graph-attn {cmd}", rest)
    except UsageError as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RgaError as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        if debug:
            raise
        msg = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else _one_line(exc)
        print(f"error: {msg}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001  a bug or an unforeseen input: still one line
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
