"""Attention-guided traversal, shared by every connector (``Neo4jGraph.traverse``,
``NetworkXGraph.traverse``): the same rules, so the same graph gives the same paths and scores.

``traverse(start_ids, steps, query=None, temperature=1.0, allow_revisit=False, step_scorer=None)``:
from each start node, each step fetches the neighbours of the current path ends over that
step's relationship types and direction (one fetch per step for the whole frontier), scores
them and keeps the ``top_k`` best per path end:

* logits ``l_v = score(q, x_v) / temperature`` over the candidate neighbours ``v`` of a path end
  ``u``, where ``q`` is the ``query`` vector when given, else ``x_u`` (the current node's own
  embedding), and ``score`` the ``step_scorer`` -- by default the scaled dot product
  ``<q, x_v> / sqrt(D)``; any callable ``(q_rows [M, D], x_rows [M, D]) -> [M]`` (float64 rows,
  one per candidate) can replace it;
* weights ``a_v = softmax_v(l_v)`` over those candidates (nodes already on the path are not
  candidates unless ``allow_revisit=True``);
* the ``top_k`` largest weights are kept (ties: smaller node id first); a path whose end has no
  candidate stops there and is dropped (only paths with one node per step are returned);
* a path's ``score`` is the product of its step weights (the probability of the path under the
  step-wise attention policy); paths are returned best first (ties: node ids in order).

Unknown start ids are skipped (no path starts there); an empty ``steps`` returns the start
nodes as one-node paths with score 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ruvector_graph_attn.errors import DimensionMismatchError, InputTooLargeError, InvalidInputError
from ruvector_graph_attn.kernels.csr import indptr_from_counts, rank_in_runs
from ruvector_graph_attn.kernels.segment import segment_softmax_runs
from ruvector_graph_attn.validation import as_float_array, check_float, check_int

from .base import check_direction

__all__ = ["TraversalStep", "TraversalPath", "run_traversal", "scaled_dot_step", "MAX_PATHS"]

MAX_PATHS = 100_000


@dataclass(frozen=True)
class TraversalStep:
    """One hop of a traversal.

    Attributes:
        relationship_types: types to follow (``None``: the graph's default -- for Neo4j its
            ``relationship_types``, for NetworkX every edge).
        direction: ``"out"`` (default), ``"in"`` or ``"both"``.
        top_k: neighbours kept per path end (>= 1).
    """

    relationship_types: Optional[Sequence[str]] = None
    direction: str = "out"
    top_k: int = 3

    def __post_init__(self) -> None:
        check_direction(self.direction)
        check_int(self.top_k, "TraversalStep.top_k", lo=1)
        if isinstance(self.relationship_types, str):
            object.__setattr__(self, "relationship_types", (self.relationship_types,))
        elif self.relationship_types is not None:
            object.__setattr__(self, "relationship_types", tuple(self.relationship_types))


@dataclass(frozen=True)
class TraversalPath:
    """A ranked traversal result: ``nodes`` (start first), ``weights[i]`` the attention weight of
    ``nodes[i + 1]`` at step ``i``, ``score`` their product, ``rank`` 0-based."""

    nodes: tuple
    weights: tuple
    score: float
    rank: int


def scaled_dot_step(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The default step scorer: ``<q, x> / sqrt(D)`` per row."""
    return np.einsum("ij,ij->i", q, x) / math.sqrt(q.shape[1])


def _as_step(s: Any) -> TraversalStep:
    if isinstance(s, TraversalStep):
        return s
    if isinstance(s, Mapping):
        return TraversalStep(**s)
    raise InvalidInputError(f"each step must be a TraversalStep or a dict of its fields, got {type(s).__name__}")


def _id_rank(uni_ids: list) -> np.ndarray:
    from .neo4j._expand import _id_array

    r = np.empty(len(uni_ids), np.int64)
    r[np.argsort(_id_array(uni_ids), kind="stable")] = np.arange(len(uni_ids))
    return r


def run_traversal(start_ids: Sequence[Any], steps: Any, dim: int,
                  fetch_start: Callable[[list], dict],
                  fetch_step: Callable[[list, TraversalStep], dict],
                  to_x: Callable[[list, list], np.ndarray],
                  query: Any = None, temperature: float = 1.0, allow_revisit: bool = False,
                  step_scorer: Optional[Callable[[np.ndarray, np.ndarray], Any]] = None) -> list:
    """The traversal of the module docstring over a connector's fetch functions.

    Args:
        fetch_start: ``ids -> {id: embedding}`` for the start ids that exist.
        fetch_step: ``(end ids, step) -> {end id: [(neighbour id, embedding), ...]}`` (distinct
            neighbours over the step's relationship types and direction).
        to_x: ``(ids, embeddings) -> [n, D]`` checked feature rows.
    """
    from .neo4j._expand import _segments, plain_ids   # (here: the neo4j package imports this module)

    starts = list(dict.fromkeys(plain_ids(start_ids, "start_ids")))
    if not starts:
        raise InvalidInputError("start_ids is empty; expected at least one node id")
    if isinstance(steps, (TraversalStep, Mapping)):
        steps = [steps]
    steps = [_as_step(s) for s in steps]
    temperature = check_float(temperature, "temperature", lo=0.0, lo_open=True)
    if step_scorer is not None and not callable(step_scorer):
        raise InvalidInputError(f"step_scorer must be a callable (q_rows, x_rows) -> scores, "
                                f"got {type(step_scorer).__name__}")
    q = None
    if query is not None:
        q = as_float_array(query, "query", ndim=1).astype(np.float64)
        if q.shape[0] != dim:
            raise DimensionMismatchError(dim, q.shape[0], "query dimension")

    # the node universe: ids, features (rows added as nodes are seen)
    uni_ids: list = []
    uni_pos: dict = {}
    uni_x: list = []

    def add(i: Any, emb: Any) -> int:
        k = uni_pos.get(i)
        if k is None:
            k = uni_pos[i] = len(uni_ids)
            uni_ids.append(i)
            uni_x.append(emb)
        return k

    got = fetch_start(starts)
    present = [i for i in starts if i in got]
    if not present:
        return []
    for i in present:
        add(i, got[i])
    paths = np.asarray([[uni_pos[i]] for i in present], dtype=np.int64)   # [P, s+1]
    pw = np.zeros((paths.shape[0], 0), np.float64)                          # [P, s]
    pscore = np.ones(paths.shape[0], np.float64)
    scale = 1.0 / (math.sqrt(dim) * float(temperature))

    for step in steps:
        ends = np.unique(paths[:, -1])
        end_ids = [uni_ids[e] for e in ends.tolist()]
        nb_of = fetch_step(end_ids, step)
        # CSR over the distinct ends: neighbour universe positions
        counts = np.zeros(ends.size, np.int64)
        flat: list = []
        for t, i in enumerate(end_ids):
            lst = nb_of.get(i, [])
            counts[t] = len(lst)
            flat.extend(add(v, e) for v, e in lst)
        ptr = indptr_from_counts(counts)
        nbr = np.asarray(flat, dtype=np.int64)
        X = np.asarray(to_x(uni_ids, uni_x), dtype=np.float64)
        row_of_end = np.searchsorted(ends, paths[:, -1])
        idx, _ = _segments(ptr, row_of_end)              # candidate entries, path by path
        path_counts = counts[row_of_end]
        path_of = np.repeat(np.arange(paths.shape[0], dtype=np.int64), path_counts)
        cand = nbr[idx] if idx.size else np.empty(0, np.int64)
        if idx.size and not allow_revisit:
            on_path = (paths[path_of] == cand[:, None]).any(axis=1)
            cand, path_of = cand[~on_path], path_of[~on_path]
        if cand.size == 0:
            return []
        qv = np.broadcast_to(q, (cand.size, q.shape[0])) if q is not None else X[paths[path_of, -1]]
        if step_scorer is None:
            logits = np.einsum("ij,ij->i", qv, X[cand]) * scale
        else:
            try:
                raw = np.asarray(step_scorer(np.ascontiguousarray(qv), X[cand]), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"step_scorer must return one number per row: {exc}") from exc
            if raw.shape != (cand.size,):
                raise DimensionMismatchError((cand.size,), raw.shape, "step_scorer output (one score per row)")
            if not np.isfinite(raw).all():
                raise InvalidInputError("step_scorer returned NaN or Inf")
            logits = raw / float(temperature)
        w = segment_softmax_runs(logits, indptr_from_counts(np.bincount(path_of, minlength=paths.shape[0])))
        # top_k per path: weight desc, then id order
        id_rank = _id_rank(uni_ids)
        srt = np.lexsort((id_rank[cand], -w, path_of))
        cand, path_of, w = cand[srt], path_of[srt], w[srt]
        keep = rank_in_runs(path_of) < step.top_k
        cand, path_of, w = cand[keep], path_of[keep], w[keep]
        if cand.size > MAX_PATHS:
            raise InputTooLargeError(MAX_PATHS, int(cand.size), "number of traversal paths")
        paths = np.concatenate([paths[path_of], cand[:, None]], axis=1)
        pw = np.concatenate([pw[path_of], w[:, None]], axis=1)
        pscore = pscore[path_of] * w

    id_rank = _id_rank(uni_ids)
    keys = [id_rank[paths[:, c]] for c in range(paths.shape[1] - 1, -1, -1)]
    order = np.lexsort(keys + [-pscore])
    ids_arr = np.empty(len(uni_ids), dtype=object)
    ids_arr[:] = uni_ids
    return [TraversalPath(nodes=tuple(ids_arr[paths[p]].tolist()), weights=tuple(pw[p].tolist()),
                          score=float(pscore[p]), rank=r) for r, p in enumerate(order.tolist())]
