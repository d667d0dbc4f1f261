"""``ruvector-graph-attn search``: re-ranked search over your own index and graph files.

The index is a directory written by ``ruvector-graph-attn index build``; the graph is a
GraphML file or an edge list whose node ids are the index's ids. Node features come from
``--features`` (a .npy/.csv matrix whose rows belong to ``--feature-ids``, default the
index's ids in insertion order), or, without ``--features``, from the vectors stored in the
index. Graph nodes that have no features are dropped with a warning; index items that are
not in the graph are still returned, flagged ``in_graph: false``.

``--scorer gat|sage|gin --layer CKPT`` scores with a trained graph layer or model from a
checkpoint written by ``ruvector-graph-attn train`` or ``save_checkpoint`` (loaded with
``load_checkpoint``, in eval mode). Its output dimension must equal the query dimension (for
``train --task link`` use ``--out-dim`` = the feature dimension) and it must contain a layer of
the scorer's kind. For a multi-layer model the explanation weights come from its last layer of
that kind (GAT: that layer's attention, mean over heads), and ``--hops`` defaults to its number
of graph layers.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InvalidInputError
from ._io import attach_features, parse_ids, read_graph, read_vectors


def build_parser(prog: str = "ruvector-graph-attn search") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--index", required=True, help="index directory (from `index build`)")
    p.add_argument("--graph", required=True, help="GraphML file or edge list (source target per line)")
    p.add_argument("--features", help=".npy/.csv node features (default: the index's vectors)")
    p.add_argument("--feature-ids", help="ids of the --features rows (default: the index's ids in order)")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", help="a query vector: comma-separated numbers, or a .npy/.csv file of [D] or [B, D]")
    q.add_argument("--query-id", action="append",
                   help="use the stored vector of this index id as the query (repeatable)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--scorer", default="attention",
                   choices=("vector", "attention", "hyperbolic", "sphere", "euclidean", "sparse_topk", "ppr",
                            "vote", "gat", "sage", "gin"),
                   help="gat/sage/gin score with the trained layer given by --layer; vote (neighbour vote of "
                        "the best hits: use --direction out for 'what items like the query link to') takes an "
                        "optional trained query map (a Linear checkpoint from VoteTrainer) as --layer")
    p.add_argument("--layer", metavar="CKPT",
                   help="checkpoint (from `ruvector-graph-attn train` or save_checkpoint) of the layer or model "
                        "used by --scorer gat|sage|gin")
    add_pipeline_args(p)
    p.add_argument("--json", action="store_true", help="print results as JSON")
    return p


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    """The re-ranker's options shared by ``search`` and ``serve``: --hops, --candidates,
    --temperature, --blend, --direction, --max-neighbors."""
    p.add_argument("--hops", type=int, default=None,
                   help="expansion depth (default 1; for --scorer gat|sage|gin the number of graph layers of the "
                        "model, so that it sees its whole receptive field)")
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--temperature", type=float, default=None,
                   help="softmax temperature (default: chosen per graph for the attention scorer, see docs/quality.md)")
    p.add_argument("--blend", type=float, default=None,
                   help="weight of the graph context, 0..1 (default: chosen per graph for the attention scorer)")
    p.add_argument("--direction", default="both", choices=("out", "in", "both"))
    p.add_argument("--max-neighbors", type=int, default=None)


def _queries(args, index) -> tuple[np.ndarray, list]:
    if args.query_id:
        kind_int = index.ids().dtype != object
        ids = parse_ids(args.query_id) if kind_int else [str(i) for i in args.query_id]
        return index.get(ids), [f"id {i}" for i in ids]
    text = args.query.strip()
    if Path(text).suffix.lower() in (".npy", ".csv", ".txt") and Path(text).is_file():
        Q = read_vectors(text, "query")
    else:
        try:
            Q = np.asarray([float(t) for t in text.split(",") if t.strip()], dtype=np.float32).reshape(1, -1)
        except ValueError as exc:
            raise InvalidInputError(
                f"--query must be comma-separated numbers or an existing .npy/.csv file, got {text[:40]!r}") from exc
    return Q, [f"query {b}" for b in range(Q.shape[0])]


_LAYER_KINDS = {"gat": ("GATConv", "GATv2Conv"), "sage": ("SAGEConv",), "gin": ("GINConv", "GINEConv")}


class _ExplainedModel:
    """A loaded multi-layer model as a re-ranking layer: ``model(x, edge_index)``, and for the
    GAT scorer ``return_attention_weights=True`` returns the attention of the model's last
    GAT layer (the weights the re-ranker shows as the explanation). ``eps`` is the last GIN
    layer's (the GIN scorer's explanation uses it)."""

    def __init__(self, model, scorer: str):
        from ..graph.sequential import is_graph_layer

        self.model = model
        self.mods = list(model.children())
        self.graph_layer = [is_graph_layer(m) for m in self.mods]
        kinds = _LAYER_KINDS[scorer]
        self.last = max(i for i, m in enumerate(self.mods) if type(m).__name__ in kinds)
        self.eps = getattr(self.mods[self.last], "eps", 0.0)
        self.depth = sum(self.graph_layer)

    def __call__(self, x, edge_index, return_attention_weights: bool = False):
        if not return_attention_weights:
            return self.model(x, edge_index)
        att = None
        for i, (m, g) in enumerate(zip(self.mods, self.graph_layer)):
            if i == self.last:
                x, att = m(x, edge_index, return_attention_weights=True)
            else:
                x = m(x, edge_index) if g else m(x)
        return x, att


def load_query_map(path):
    """The trained query map of ``--scorer vote`` (an ``nn.Linear`` checkpoint, e.g. saved after
    ``VoteTrainer``); ConfigError for any other checkpoint."""
    from ..nn import Linear
    from ..training.checkpoint import load_checkpoint

    model = load_checkpoint(path)
    if not isinstance(model, Linear):
        raise ConfigError(f"--scorer vote --layer needs a Linear checkpoint (the query map trained by VoteTrainer); "
                          f"{path} holds a {type(model).__name__}")
    return model


def load_scorer_layer(path, scorer: str):
    """The layer for ``GraphReranker(scorer=scorer, layer=...)`` from a checkpoint: the loaded
    module itself when it is one layer of the scorer's kind, else a :class:`_ExplainedModel`
    around the loaded model. Raises ConfigError when the checkpoint has no such layer."""
    from ..errors import ConfigError
    from ..graph import GraphSequential
    from ..training import load_checkpoint

    model = load_checkpoint(path)
    model.eval()
    kinds = _LAYER_KINDS[scorer]
    if type(model).__name__ in kinds:
        return model
    found = sorted({type(m).__name__ for _, m in model.named_modules()})
    if not isinstance(model, GraphSequential) or not any(k in found for k in kinds):
        raise ConfigError(f"--scorer {scorer} needs a checkpoint with a {' or '.join(kinds)} layer; "
                          f"{path} holds a {type(model).__name__} ({', '.join(found)})")
    if any(k in found for k in kinds) and not any(type(m).__name__ in kinds for m in model.children()):
        raise ConfigError(f"the {'/'.join(kinds)} layers of {path} are nested; use the Python API")
    return _ExplainedModel(model, scorer)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..connectors.networkx import NetworkXGraph
    from ..index.hnsw import HNSWIndex
    from ..rerank.pipeline import GraphReranker

    err = Console(stderr=True)
    layer = None
    hops = args.hops  # None: 1, or the layer's number of graph layers (GraphReranker decides)
    if args.scorer in _LAYER_KINDS:
        if not args.layer:
            raise InvalidInputError(f"--scorer {args.scorer} needs --layer CKPT (a trained layer's checkpoint, "
                                    f"from `ruvector-graph-attn train` or save_checkpoint)")
        layer = load_scorer_layer(args.layer, args.scorer)
    elif args.scorer == "vote" and args.layer:
        layer = load_query_map(args.layer)
    elif args.layer:
        raise InvalidInputError(f"--layer is only used by --scorer gat|sage|gin|vote (got --scorer {args.scorer})")
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err,
                  transient=True, disable=args.json or not err.is_terminal) as prog:
        task = prog.add_task("loading index", total=3)
        index = HNSWIndex.load(args.index)
        prog.update(task, advance=1, description="reading graph")
        G = read_graph(args.graph)
        prog.update(task, advance=1, description="attaching features")
        dropped = attach_features(G, index, args.features, args.feature_ids)
        prog.update(task, advance=1)
    if dropped and not args.json:
        err.print(f"[yellow]warning:[/] {len(dropped)} graph node(s) without features were dropped "
                  f"(e.g. {dropped[0]!r})")
    graph = NetworkXGraph(G)
    rr = GraphReranker(index, graph, scorer=args.scorer, hops=hops, candidates=args.candidates,
                       temperature="auto" if args.temperature is None else args.temperature,
                       blend="auto" if args.blend is None else args.blend,
                       direction=args.direction, max_neighbors=args.max_neighbors, layer=layer)
    Q, labels = _queries(args, index)
    results = rr.search_batch(Q, args.k)
    if args.json:
        print(json.dumps({"scorer": args.scorer, "k": args.k, "hops": rr.hops, "dropped_graph_nodes": len(dropped),
                          "queries": [{"query": lab, "results": [h.to_dict() for h in hits]}
                                      for lab, hits in zip(labels, results)]}, indent=2))
        return 0
    out = Console()
    for lab, hits in zip(labels, results):
        t = Table(title=f"{lab}: scorer={args.scorer}, k={args.k}")
        for col in ("rank", "id", "score", "vector score", "vector rank", "top attention"):
            t.add_column(col, justify="right" if col != "top attention" else "left")
        for h in hits:
            expl = ", ".join(f"{n}: {w:.2f}" for n, w in h.top_attention(3)) if h.in_graph else "(not in graph)"
            t.add_row(str(h.rank + 1), str(h.id), f"{h.score:.4f}", f"{h.vector_score:.4f}",
                      str(h.vector_rank + 1), expl)
        out.print(t)
    return 0
