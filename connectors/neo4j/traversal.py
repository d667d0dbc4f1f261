"""Attention-guided traversal and user Cypher as subgraphs (methods of :class:`Neo4jGraph`).

``traverse(start_ids, steps, query=None)`` (seed design section 5.3): from each start node, each
step fetches the neighbours of the current path ends -- one query per step for the whole
frontier -- over that step's relationship types and direction, scores them by scaled
dot-product attention and keeps the ``top_k`` best per path end:

* logits ``l_v = <q, x_v> / (sqrt(D) * temperature)`` over the candidate neighbours ``v`` of a
  path end ``u``, where ``q`` is the ``query`` vector when given, else ``x_u`` (the current
  node's own embedding, as in the seed design);
* weights ``a_v = softmax_v(l_v)`` over those candidates (nodes already on the path are not
  candidates unless ``allow_revisit=True``);
* the ``top_k`` largest weights are kept (ties: smaller database id first); a path whose end has
  no candidate stops there and is dropped (only paths with one node per step are returned);
* a path's ``score`` is the product of its step weights (the probability of the path under the
  step-wise attention policy); paths are returned best first (ties: node ids in order).

``subgraph_from_cypher(cypher, params)`` runs a user's query in a READ-access session (a write
clause fails on the server) and turns what it returns -- node ids, nodes, relationships or paths,
possibly in lists -- into a :class:`~ruvector_graph_attn.connectors.Subgraph`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ruvector_graph_attn.errors import InputTooLargeError, InvalidInputError
from ruvector_graph_attn.kernels.csr import indptr_from_counts, rank_in_runs
from ruvector_graph_attn.kernels.segment import segment_softmax_runs
from ruvector_graph_attn.validation import DEFAULT_MAX_KEYS, as_float_array, check_float, check_int

from ..base import Subgraph, check_direction
from ._expand import _id_array, _segments, plain_ids
from .cypher import rel_type_pattern

__all__ = ["TraversalStep", "TraversalPath", "traverse", "subgraph_from_cypher"]

_ARROWS = {"out": ("-", "->"), "in": ("<-", "-"), "both": ("-", "-")}
MAX_PATHS = 100_000


@dataclass(frozen=True)
class TraversalStep:
    """One hop of :func:`traverse`.

    Attributes:
        relationship_types: types to follow (``None``: the graph's ``relationship_types``).
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


def _as_step(s: Any) -> TraversalStep:
    if isinstance(s, TraversalStep):
        return s
    if isinstance(s, Mapping):
        return TraversalStep(**s)
    raise InvalidInputError(f"each step must be a TraversalStep or a dict of its fields, got {type(s).__name__}")


def traverse(self, start_ids: Sequence[Any], steps: Sequence[Any], query: Any = None,
             temperature: float = 1.0, allow_revisit: bool = False) -> list:
    """Attention-ranked paths from ``start_ids`` (rules in the module docstring).

    Unknown start ids are skipped (no path starts there); an empty ``steps`` returns the
    start nodes as one-node paths with score 1.
    """
    starts = list(dict.fromkeys(plain_ids(start_ids, "start_ids")))
    if not starts:
        raise InvalidInputError("start_ids is empty; expected at least one node id")
    if isinstance(steps, (TraversalStep, Mapping)):
        steps = [steps]
    steps = [_as_step(s) for s in steps]
    temperature = check_float(temperature, "temperature", lo=0.0, lo_open=True)
    q = None
    if query is not None:
        q = as_float_array(query, "query", ndim=1).astype(np.float64)
        if q.shape[0] != self.dim:
            from ruvector_graph_attn.errors import DimensionMismatchError
            raise DimensionMismatchError(self.dim, q.shape[0], "query dimension")

    # the node universe: database ids, features (rows added as nodes are seen)
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

    recs = self.read(f"UNWIND $ids AS i MATCH (n:{self._label} {{{self._idp}: i}}) RETURN i, {self._feat('n')} AS e",
                     {"ids": starts}, what="traverse (start nodes)")
    got = {r["i"]: r["e"] for r in recs}
    present = [i for i in starts if i in got]
    if not present:
        return []
    for i in present:
        add(i, got[i])
    paths = np.asarray([[uni_pos[i]] for i in present], dtype=np.int64)   # [P, s+1]
    pw = np.zeros((paths.shape[0], 0), np.float64)                          # [P, s]
    pscore = np.ones(paths.shape[0], np.float64)
    scale = 1.0 / (math.sqrt(self.dim) * float(temperature))

    for step in steps:
        types = step.relationship_types if step.relationship_types is not None else self.relationship_types
        rel = rel_type_pattern(types)
        left, right = _ARROWS[step.direction]
        ends = np.unique(paths[:, -1])
        end_ids = [uni_ids[e] for e in ends.tolist()]
        recs = self.read(
            f"UNWIND $ids AS i MATCH (u:{self._label} {{{self._idp}: i}}) "
            f"RETURN i, COLLECT {{ MATCH (u){left}[{rel}]{right}(v:{self._label}) "
            f"RETURN DISTINCT [v.{self._idp}, {self._feat('v')}] }} AS nb",
            {"ids": end_ids}, what="traverse (step)")
        nb_of = {r["i"]: r["nb"] for r in recs}
        # CSR over the distinct ends: neighbour universe positions
        counts = np.zeros(ends.size, np.int64)
        flat: list = []
        for t, i in enumerate(end_ids):
            lst = nb_of.get(i, [])
            counts[t] = len(lst)
            flat.extend(add(v, e) for v, e in lst)
        ptr = indptr_from_counts(counts)
        nbr = np.asarray(flat, dtype=np.int64)
        X = self._to_x(uni_ids, uni_x, "traverse").astype(np.float64)
        row_of_end = np.searchsorted(ends, paths[:, -1])
        idx, owner = _segments(ptr, row_of_end)          # candidate entries, owner = path end row
        # owner from _segments is the CSR row; map entries back to paths
        path_counts = counts[row_of_end]
        path_of = np.repeat(np.arange(paths.shape[0], dtype=np.int64), path_counts)
        cand = nbr[idx] if idx.size else np.empty(0, np.int64)
        if idx.size and not allow_revisit:
            on_path = (paths[path_of] == cand[:, None]).any(axis=1)
            cand, path_of = cand[~on_path], path_of[~on_path]
        if cand.size == 0:
            return []
        qv = np.broadcast_to(q, (cand.size, q.shape[0])) if q is not None else X[paths[path_of, -1]]
        logits = np.einsum("ij,ij->i", qv, X[cand]) * scale
        w = segment_softmax_runs(logits, indptr_from_counts(np.bincount(path_of, minlength=paths.shape[0])))
        # top_k per path: weight desc, then id order
        id_rank = np.empty(len(uni_ids), np.int64)
        id_rank[np.argsort(_id_array(uni_ids), kind="stable")] = np.arange(len(uni_ids))
        srt = np.lexsort((id_rank[cand], -w, path_of))
        cand, path_of, w = cand[srt], path_of[srt], w[srt]
        keep = rank_in_runs(path_of) < step.top_k
        cand, path_of, w = cand[keep], path_of[keep], w[keep]
        if cand.size > MAX_PATHS:
            raise InputTooLargeError(MAX_PATHS, int(cand.size), "number of traversal paths")
        paths = np.concatenate([paths[path_of], cand[:, None]], axis=1)
        pw = np.concatenate([pw[path_of], w[:, None]], axis=1)
        pscore = pscore[path_of] * w
        del owner

    id_rank = np.empty(len(uni_ids), np.int64)
    id_rank[np.argsort(_id_array(uni_ids), kind="stable")] = np.arange(len(uni_ids))
    keys = [id_rank[paths[:, c]] for c in range(paths.shape[1] - 1, -1, -1)]
    order = np.lexsort(keys + [-pscore])
    ids_arr = np.empty(len(uni_ids), dtype=object)
    ids_arr[:] = uni_ids
    return [TraversalPath(nodes=tuple(ids_arr[paths[p]].tolist()), weights=tuple(pw[p].tolist()),
                          score=float(pscore[p]), rank=r) for r, p in enumerate(order.tolist())]


def _collect_values(value: Any, idp: str, ids: list, rels: list) -> None:
    import neo4j.graph as ng

    if isinstance(value, ng.Path):
        for n in value.nodes:
            _collect_values(n, idp, ids, rels)
        for r in value.relationships:
            _collect_values(r, idp, ids, rels)
    elif isinstance(value, ng.Relationship):
        s, t = value.start_node, value.end_node
        if s is None or t is None or s.get(idp) is None or t.get(idp) is None:
            raise InvalidInputError(f"a returned relationship's end nodes have no {idp!r} property")
        ids.extend([s.get(idp), t.get(idp)])
        rels.append((s.get(idp), t.get(idp)))
    elif isinstance(value, ng.Node):
        v = value.get(idp)
        if v is None:
            raise InvalidInputError(f"a returned node has no {idp!r} property; return nodes of the graph's label")
        ids.append(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_values(v, idp, ids, rels)
    elif value is None:
        return
    elif isinstance(value, (int, str)) and not isinstance(value, bool):
        ids.append(value)
    else:
        raise InvalidInputError(f"subgraph_from_cypher: cannot use a returned {type(value).__name__}; "
                                f"return node ids, nodes, relationships or paths")


def subgraph_from_cypher(self, cypher: str, params: Optional[Mapping[str, Any]] = None,
                         induced: bool = True) -> Subgraph:
    """The subgraph named by a user's READ-ONLY Cypher query.

    Nodes: every id / node (with ``id_property``) in the returned values, in order of first
    appearance (all hop 0, all seeds). Edges: the returned relationships and path segments, plus,
    with ``induced=True`` (default), every ``relationship_types`` relationship between two of those
    nodes -- each in its own orientation, once. Returned ids that are not nodes of the graph's
    label are listed in ``Subgraph.missing``. Two round trips: the user query, then one query for
    the features (and induced edges).
    """
    if not isinstance(cypher, str) or not cypher.strip():
        raise InvalidInputError("cypher must be a non-empty query string")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidInputError(f"params must be a mapping of parameter names to values, got {type(params).__name__}")
    recs = self.read(cypher, dict(params), what="the user Cypher query (read-only session)")
    ids: list = []
    rels: list = []
    for rec in recs:
        for value in rec.values():
            _collect_values(value, self.id_property, ids, rels)
    uniq = list(dict.fromkeys(plain_ids(ids, "returned ids")))
    if len(uniq) > DEFAULT_MAX_KEYS:
        raise InputTooLargeError(DEFAULT_MAX_KEYS, len(uniq), "nodes returned by the Cypher query")
    dim = self._dim or 0
    if not uniq:
        return Subgraph(node_ids=[], edge_index=np.zeros((2, 0), np.int64), x=np.zeros((0, dim), self.dtype),
                        hop=np.zeros(0, np.int64), seeds=np.zeros(0, np.int64))
    induced_part = (f", COLLECT {{ MATCH (n)-[{self._rel}]->(m:{self._label}) WHERE m IN ns "
                    f"RETURN m.{self._idp} }} AS outs") if induced else ", [] AS outs"
    frecs = self.read(
        f"UNWIND $ids AS i MATCH (n:{self._label} {{{self._idp}: i}}) WITH collect(n) AS ns "
        f"UNWIND ns AS n RETURN n.{self._idp} AS i, {self._feat('n')} AS e{induced_part}",
        {"ids": uniq}, what="subgraph_from_cypher (features)")
    got = {r["i"]: (r["e"], r["outs"]) for r in frecs}
    node_ids = [i for i in uniq if i in got]
    missing = [i for i in uniq if i not in got]
    pos = {i: k for k, i in enumerate(node_ids)}
    x = self._to_x(node_ids, [got[i][0] for i in node_ids], "subgraph_from_cypher")
    pairs = [(pos[s], pos[t]) for s, t in rels if s in pos and t in pos]
    for i in node_ids:
        pairs.extend((pos[i], pos[t]) for t in got[i][1] if t in pos)
    if pairs:
        e = np.asarray(pairs, dtype=np.int64)
        _, first = np.unique(e[:, 0] * len(node_ids) + e[:, 1], return_index=True)
        e = e[np.sort(first)].T
    else:
        e = np.zeros((2, 0), np.int64)
    n = len(node_ids)
    return Subgraph(node_ids=node_ids, edge_index=e, x=x, hop=np.zeros(n, np.int64),
                    seeds=np.arange(n, dtype=np.int64), missing=missing)
