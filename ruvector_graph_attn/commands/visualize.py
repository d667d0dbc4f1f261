"""``ruvector-graph-attn visualize rerank|training``: pictures (PNG or SVG) of one query's
re-ranked neighbourhood, from the JSON that ``search --json`` prints, or of training curves,
from the metrics JSON that ``train --metrics`` writes."""
from __future__ import annotations

import argparse


def build_parser(prog: str = "ruvector-graph-attn visualize") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("rerank", help="one query's re-ranked hits and the neighbours they attend to")
    r.add_argument("results", help="JSON written by `ruvector-graph-attn search ... --json`")
    r.add_argument("--query", type=int, default=0, help="which query of the file (default 0)")
    r.add_argument("--neighbours", type=int, default=5, help="attention edges drawn per hit (default 5)")
    r.add_argument("--out", required=True, help="output .png or .svg")
    t = sub.add_parser("training", help="training curves")
    t.add_argument("metrics", help="metrics JSON written by `ruvector-graph-attn train --metrics`")
    t.add_argument("--out", required=True, help="output .png or .svg")
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import InvalidInputError
    from ..plot import hits_from_json, rerank_figure, training_figure

    if args.what == "rerank":
        if args.neighbours < 0:
            raise InvalidInputError(f"--neighbours must be >= 0, got {args.neighbours}")
        out = rerank_figure(hits_from_json(args.results, args.query), args.out, max_neighbours=args.neighbours)
    else:
        out = training_figure(args.metrics, args.out)
    print(f"wrote {out}")
    return 0
