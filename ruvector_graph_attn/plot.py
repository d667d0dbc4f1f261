"""Pictures (matplotlib, optional extra ``plot``): why results rank where they do, and how
training went.

``rerank_figure(hits, path)``    one query's re-ranked neighbourhood: the hits and the
                                 neighbours they attended to, placed by a spring layout; node
                                 area by score, edge width by attention weight; beside it the
                                 vector-only rank of each hit joined to its re-ranked rank
``training_figure(metrics, path)``  training curves (loss; accuracy / AUC / MRR when present)
                                 from the metrics JSON that ``train --metrics`` writes

``hits`` are :class:`~ruvector_graph_attn.RankedNeighbour` objects or their ``to_dict()``
form (what ``search --json`` prints). The format follows the file name: ``.png`` or ``.svg``
(SVG keeps text as text, so node ids are searchable in the file).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .errors import InvalidInputError

__all__ = ["rerank_figure", "training_figure", "hits_from_json"]

_FORMATS = (".png", ".svg")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise InvalidInputError("pictures need matplotlib: pip install 'ruvector-graph-attn[plot]'") from exc
    matplotlib.rcParams["svg.fonttype"] = "none"
    return plt


def _target(path: Union[str, os.PathLike]) -> Path:
    p = Path(path)
    if p.suffix.lower() not in _FORMATS:
        raise InvalidInputError(f"picture path must end in .png or .svg, got {p.name!r}")
    if p.parent and not p.parent.exists():
        raise InvalidInputError(f"the folder {str(p.parent)!r} does not exist")
    return p


def _save(fig, path: Path) -> Path:
    import io

    from .fileio import write_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix[1:].lower(), dpi=120, bbox_inches="tight")
    write_atomic(path, buf.getvalue())
    return path


def _hit_dict(h: Any) -> dict:
    d = h.to_dict() if hasattr(h, "to_dict") else dict(h)
    for key in ("id", "score", "rank", "vector_rank"):
        if key not in d:
            raise InvalidInputError(f"a hit lacks {key!r}: pass RankedNeighbour objects or search --json results")
    att = d.get("attention") or []
    if isinstance(att, Mapping):
        att = list(att.items())
    d["attention"] = [(a[0], float(a[1])) for a in att]
    return d


def hits_from_json(path: Union[str, os.PathLike], query: int = 0) -> list[dict]:
    """The hits of query number ``query`` in a ``search --json`` output file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read search results from {str(path)!r}: {exc}") from exc
    queries = doc.get("queries") if isinstance(doc, dict) else None
    if not isinstance(queries, list) or not queries:
        raise InvalidInputError(f"{str(path)!r} is not `search --json` output (no 'queries' list)")
    if not 0 <= query < len(queries):
        raise InvalidInputError(f"query {query} is out of range: the file holds {len(queries)} queries")
    results = queries[query].get("results")
    if not isinstance(results, list):
        raise InvalidInputError(f"query {query} of {str(path)!r} has no 'results' list")
    return [_hit_dict(h) for h in results]


def rerank_figure(hits: Sequence[Any], path: Union[str, os.PathLike], title: str | None = None,
                  max_neighbours: int = 5, seed: int = 0) -> Path:
    """Draw one query's re-ranked hits (see the module docstring) to ``path``; returns it.

    Each hit shows at most ``max_neighbours`` of its largest attention weights on other nodes
    (its weight on itself is the part of the score that stays its own). Node labels
    are the ids; hits are labelled ``id`` with ``#rank (vector #rank)``."""
    import networkx as nx

    plt = _pyplot()
    target = _target(path)
    hs = [_hit_dict(h) for h in hits]
    if not hs:
        raise InvalidInputError("no hits to draw")
    g = nx.Graph()
    hit_ids = [str(h["id"]) for h in hs]
    for h, hid in zip(hs, hit_ids):
        g.add_node(hid)
        others = [(str(nb), w) for nb, w in h["attention"] if str(nb) != hid]
        for nb, w in sorted(others, key=lambda kv: -kv[1])[:max_neighbours]:
            g.add_edge(hid, nb, weight=w)
    pos = nx.spring_layout(g, seed=seed, k=1.5 / np.sqrt(max(g.number_of_nodes(), 1)))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 6.5), gridspec_kw={"width_ratios": [2.2, 1]})
    scores = np.array([h["score"] for h in hs], dtype=float)
    lo, hi = float(scores.min()), float(scores.max())
    size = {hid: 300 + 1500 * ((s - lo) / (hi - lo) if hi > lo else 1.0) for hid, s in zip(hit_ids, scores)}
    others = [n for n in g.nodes if n not in size]
    widths = [0.5 + 8.0 * d["weight"] for _, _, d in g.edges(data=True)]
    nx.draw_networkx_edges(g, pos, ax=ax, width=widths, edge_color="#7a8ca3", alpha=0.8)
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=others, node_size=120, node_color="#d9d9d9",
                           edgecolors="#888888")
    nx.draw_networkx_nodes(g, pos, ax=ax, nodelist=hit_ids, node_size=[size[h] for h in hit_ids],
                           node_color=[h["rank"] for h in hs], cmap="viridis_r", edgecolors="black")
    labels = {hid: f"{hid}\n#{h['rank'] + 1} (vec #{h['vector_rank'] + 1})" for hid, h in zip(hit_ids, hs)}
    labels.update({n: n for n in others})
    texts = nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=8)
    for node, text in texts.items():
        text.set_gid(f"node-{node}")          # SVG: <g id="node-ID"> around each node label
    ax.set_title(title or "re-ranked hits and the neighbours they attend to\n"
                          "(node size: score; edge width: attention weight)", fontsize=10)
    ax.axis("off")
    # rank change: vector-only rank (left) joined to the re-ranked rank (right)
    k = len(hs)
    top = max(max(h["vector_rank"] for h in hs), k - 1) + 1
    for hid, h in zip(hit_ids, hs):
        move = h["vector_rank"] - h["rank"]
        colour = "#2a9d8f" if move > 0 else ("#e76f51" if move < 0 else "#8d99ae")
        ax2.plot([0, 1], [h["vector_rank"] + 1, h["rank"] + 1], "-o", color=colour, lw=1.5)
        ax2.text(1.05, h["rank"] + 1, hid, va="center", fontsize=8)
        ax2.text(-0.05, h["vector_rank"] + 1, hid, va="center", ha="right", fontsize=8)
    ax2.set_xlim(-0.6, 1.6)
    ax2.set_ylim(top + 0.5, 0.5)
    ax2.set_xticks([0, 1], ["vector-only rank", "re-ranked rank"])
    ax2.set_ylabel("rank")
    ax2.set_title("rank change (green: up, red: down, grey: same)", fontsize=10)
    for s in ("top", "right"):
        ax2.spines[s].set_visible(False)
    try:
        return _save(fig, target)
    finally:
        plt.close(fig)


def training_figure(metrics: Union[Mapping[str, Any], str, os.PathLike], path: Union[str, os.PathLike],
                    title: str | None = None) -> Path:
    """Training curves from a metrics dict or the JSON file ``train --metrics`` writes; returns
    the path written. Plots ``loss`` and ``val_loss`` on one panel and every other per-epoch
    number (``train_acc``, ``val_acc``, ``val_auc``, ``val_mrr`` ...) on a second."""
    plt = _pyplot()
    target = _target(path)
    if not isinstance(metrics, Mapping):
        try:
            metrics = json.loads(Path(metrics).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"cannot read training metrics from {str(metrics)!r}: {exc}") from exc
    history = metrics.get("history") if isinstance(metrics, Mapping) else None
    if not isinstance(history, list) or not history or not all(isinstance(r, Mapping) for r in history):
        raise InvalidInputError("the metrics hold no per-epoch 'history' list")
    keys = [k for k in history[0] if k not in ("epoch", "lr", "seconds")
            and all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in history)]
    if not keys:
        raise InvalidInputError("the history has no numeric series to plot")
    epochs = [r.get("epoch", i) for i, r in enumerate(history)]
    loss_keys = [k for k in keys if "loss" in k]
    other = [k for k in keys if k not in loss_keys]
    panels = [p for p in (loss_keys, other) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, series in zip(axes[0], panels):
        for k in series:
            ax.plot(epochs, [r[k] for r in history], label=k)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    best = metrics.get("best_epoch")
    if isinstance(best, int):
        for ax in axes[0]:
            ax.axvline(best, color="gray", ls="--", lw=1)
    fig.suptitle(title or f"training: {metrics.get('model', '')} {metrics.get('task', '')}".strip())
    try:
        return _save(fig, target)
    finally:
        plt.close(fig)
