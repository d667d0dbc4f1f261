"""Attention-guided traversal and user Cypher as subgraphs (methods of :class:`Neo4jGraph`).

``traverse(start_ids, steps, query=None, ...)``: attention-ranked paths; the rules live in
``connectors/traversal.py`` and are shared with :meth:`NetworkXGraph.traverse`, so the same
graph gives the same paths and scores in both. Here each step is one Cypher query for the
whole frontier.

``subgraph_from_cypher(cypher, params)`` runs a user's query in a READ-access session (a write
clause fails on the server) and turns what it returns -- node ids, nodes, relationships or paths,
possibly in lists -- into a :class:`~ruvector_graph_attn.connectors.Subgraph`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ruvector_graph_attn.errors import InputTooLargeError, InvalidInputError
from ruvector_graph_attn.validation import DEFAULT_MAX_KEYS

from ..base import Subgraph
from ..traversal import MAX_PATHS, TraversalPath, TraversalStep, run_traversal  # noqa: F401 (re-exported)
from ._expand import plain_ids
from .cypher import rel_type_pattern

__all__ = ["TraversalStep", "TraversalPath", "traverse", "subgraph_from_cypher"]

_ARROWS = {"out": ("-", "->"), "in": ("<-", "-"), "both": ("-", "-")}


def traverse(self, start_ids: Sequence[Any], steps: Sequence[Any], query: Any = None,
             temperature: float = 1.0, allow_revisit: bool = False,
             step_scorer: Optional[Callable[[np.ndarray, np.ndarray], Any]] = None) -> list:
    """Attention-ranked paths from ``start_ids`` (rules in ``connectors/traversal.py``, shared
    with :meth:`NetworkXGraph.traverse`): one query for the start nodes, then one per step for
    the whole frontier. ``step_scorer``: ``(q_rows, x_rows) -> scores`` replacing the scaled dot
    product."""

    def fetch_start(starts: list) -> dict:
        recs = self.read(f"UNWIND $ids AS i MATCH (n:{self._label} {{{self._idp}: i}}) RETURN i, {self._feat('n')} AS e",
                         {"ids": starts}, what="traverse (start nodes)")
        return {r["i"]: r["e"] for r in recs}

    def fetch_step(end_ids: list, step: TraversalStep) -> dict:
        types = step.relationship_types if step.relationship_types is not None else self.relationship_types
        rel = rel_type_pattern(types)
        left, right = _ARROWS[step.direction]
        recs = self.read(
            f"UNWIND $ids AS i MATCH (u:{self._label} {{{self._idp}: i}}) "
            f"RETURN i, COLLECT {{ MATCH (u){left}[{rel}]{right}(v:{self._label}) "
            f"RETURN DISTINCT [v.{self._idp}, {self._feat('v')}] }} AS nb",
            {"ids": end_ids}, what="traverse (step)")
        return {r["i"]: r["nb"] for r in recs}

    return run_traversal(start_ids, steps, self.dim, fetch_start, fetch_step,
                         lambda ids, embs: self._to_x(ids, embs, "traverse"), query=query,
                         temperature=temperature, allow_revisit=allow_revisit, step_scorer=step_scorer)


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
