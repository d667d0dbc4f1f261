"""Zero-shot parameters of the default scorer chosen per graph (``temperature="auto"``,
``blend="auto"``, the defaults of :class:`~ruvector_graph_attn.GraphReranker`).

Statistics (:func:`graph_statistics`), computed once from a deterministic sample of at most
``SAMPLE`` node ids (the index's ids) and one 1-hop expansion around them (at most ``MAX_DEGREE``
neighbours read per node):

- ``degree_mean`` and ``degree_cv``: mean and coefficient of variation (standard deviation /
  mean) of the sampled nodes' numbers of distinct neighbours in the re-ranker's ``direction``;
- ``edge_cosine``: mean cosine of the features across the sampled nodes' edges;
  ``random_cosine``: mean cosine of random pairs of sampled nodes; ``homophily``:
  ``(edge_cosine - random_cosine) / (1 - random_cosine)`` (0: edges join nodes no more alike
  than random pairs; 1: identical features along edges).

Rule (:func:`auto_parameters`) for the ``"attention"`` scorer: blend ``AUTO_BLEND`` (0.9);
temperature ``0.2`` when ``degree_cv <= 1`` (degrees concentrated around their mean, as in
kNN-like or citation graphs: a candidate's neighbourhood is a small, even sample of its
surroundings) and ``0.1`` otherwise (heavy-tailed degrees, as in taxonomies and dependency
graphs: a parent or a library has tens to thousands of neighbours, and a sharper softmax keeps
the context on the few that match the query). Without statistics (no index, an index that does not list
its ids with ``ids()`` -- the Neo4j vector index does not --, or an empty sample) the temperature
is ``0.1``. ``graph_candidates="auto"``: the neighbours of the
``AUTO_GRAPH_CANDIDATES`` (5) best vector hits join the candidates of the ``"attention"``
scorer (0 for the others). Other scorers keep ``DEFAULT_TEMPERATURE`` and
``DEFAULT_BLEND``. The measurements behind the rule are in ``docs/quality.md``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

__all__ = ["AUTO", "AUTO_BLEND", "AUTO_GRAPH_CANDIDATES", "AUTO_TEMPERATURE_REGULAR", "AUTO_TEMPERATURE_HEAVY_TAILED",
           "DEGREE_CV_THRESHOLD", "SAMPLE", "graph_statistics", "auto_parameters"]

AUTO = "auto"
AUTO_BLEND = 0.9
AUTO_TEMPERATURE_REGULAR = 0.2
AUTO_TEMPERATURE_HEAVY_TAILED = 0.1
DEGREE_CV_THRESHOLD = 1.0
SAMPLE = 1000
#: neighbours read per sampled node (bounds the cost on hubs; a degree above it counts as MAX_DEGREE)
MAX_DEGREE = 1000
#: graph candidates of the "attention" scorer by default: the neighbours of the 5 best vector hits
AUTO_GRAPH_CANDIDATES = 5


def graph_statistics(graph: Any, ids: Any, direction: str = "both", seed: int = 0,
                     sample: int = SAMPLE) -> Optional[dict]:
    """The statistics of the module docstring from at most ``sample`` of ``ids`` (a
    deterministic sample for ``seed``) that are in ``graph``; ``None`` when none is."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return None
    rng = np.random.default_rng(seed)
    if ids.size > sample:
        ids = ids[np.sort(rng.choice(ids.size, sample, replace=False))]
    ids = ids[np.asarray(graph.contains(ids), dtype=bool)]
    if ids.size == 0:
        return None
    from .scorers import _unit_rows, traversed_pairs

    sg = graph.expand(ids, hops=1, direction=direction, max_neighbors=MAX_DEGREE, seed=seed)
    seeds = np.asarray(sg.seeds, dtype=np.int64)
    n = sg.num_nodes
    a, b = (np.asarray(v, np.int64) for v in traversed_pairs(sg, direction))
    is_seed = np.zeros(n, bool)
    is_seed[seeds] = True
    keep = is_seed[a] & (a != b)
    a, b = a[keep], b[keep]
    pairs = np.unique(a * np.int64(max(n, 1)) + b)
    a, b = pairs // max(n, 1), pairs % max(n, 1)
    deg = np.bincount(a, minlength=n)[seeds].astype(np.float64)
    mean = float(deg.mean())
    cv = float(deg.std() / mean) if mean > 0 else 0.0
    U = _unit_rows(np.asarray(sg.x, dtype=np.float64))
    edge_cos = float(np.einsum("ij,ij->i", U[a], U[b]).mean()) if a.size else float("nan")
    if seeds.size > 1:
        perm = np.roll(rng.permutation(seeds.size), 1)
        rand_cos = float(np.einsum("ij,ij->i", U[seeds], U[seeds[perm]]).mean())
    else:
        rand_cos = float("nan")
    hom = (edge_cos - rand_cos) / (1.0 - rand_cos) if np.isfinite(edge_cos) and np.isfinite(rand_cos) \
        and rand_cos < 1.0 else float("nan")
    return {"sampled": int(seeds.size), "degree_mean": mean, "degree_cv": cv, "degree_max": float(deg.max()),
            "edge_cosine": edge_cos, "random_cosine": rand_cos, "homophily": float(hom)}


def auto_parameters(stats: Optional[dict]) -> tuple:
    """``(temperature, blend)`` of the ``"attention"`` scorer for a graph with ``stats``
    (the rule of the module docstring)."""
    if not stats or not np.isfinite(stats.get("degree_cv", float("nan"))):
        return AUTO_TEMPERATURE_HEAVY_TAILED, AUTO_BLEND
    t = AUTO_TEMPERATURE_REGULAR if stats["degree_cv"] <= DEGREE_CV_THRESHOLD else AUTO_TEMPERATURE_HEAVY_TAILED
    return t, AUTO_BLEND
