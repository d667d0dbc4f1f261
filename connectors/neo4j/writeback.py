"""Loading datasets into Neo4j and writing results back (methods of :class:`Neo4jGraph`).

Write-back (like GDS's write mode) -- ``write_embeddings``, ``write_scores``,
``write_similarity`` -- sends its rows in batched ``UNWIND`` statements, **all inside one
managed write transaction per call**: either every row of the call is committed or none is
(a failure, an unknown id, or the server dying mid-call rolls the whole call back), and the
driver retries the whole call on transient failures. Every statement ``SET``s / ``MERGE``s, so
re-running a call leaves the database exactly as one run did (idempotent).

Loading (``load_arrays``, ``load_networkx``) is for datasets, tests and benchmarks: it creates
the id uniqueness constraint, then commits one transaction per batch (a large load is not
atomic; it is idempotent with ``merge=True``, the default, so an interrupted load can simply
be run again).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ruvector_graph_attn.errors import (
    DimensionMismatchError, InputTooLargeError, InvalidInputError, UnknownIdError,
)
from ruvector_graph_attn.validation import as_float_array, check_int

from ._expand import plain_ids
from .cypher import check_name, quote

__all__ = ["write_embeddings", "write_scores", "write_similarity", "load_arrays", "load_networkx",
           "ensure_constraint"]

DEFAULT_BATCH = 5000
MAX_BATCH = 100_000


def _check_batch(batch_size: Any) -> int:
    batch_size = check_int(batch_size, "batch_size", lo=1)
    if batch_size > MAX_BATCH:
        raise InputTooLargeError(MAX_BATCH, int(batch_size), "batch_size")
    return int(batch_size)


def _write_rows(self, statement: str, rows: list, batch_size: int, what: str,
                expect_matched: Optional[list] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Send ``rows`` in batches through ``statement`` (which RETURNs ``count(*) AS c`` and
    ``collect(r.id) AS ids`` of matched rows) inside ONE write transaction."""
    q = self._query(statement)
    total = len(rows)

    def work(tx):
        done = 0
        matched = []
        for start in range(0, total, batch_size):
            chunk = rows[start:start + batch_size]
            rec = tx.run(q, {"rows": chunk}).single()
            if expect_matched is not None:
                matched.extend(rec["ids"])
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        if expect_matched is not None and len(set(matched)) != len(set(expect_matched)):
            got = set(matched)
            missing = [i for i in dict.fromkeys(expect_matched) if i not in got]
            raise UnknownIdError(missing, f"Neo4j :{self.label} ({what}; nothing was written)")
        return done

    return self.write_tx(work, what)


def write_embeddings(self, ids: Sequence[Any], vectors: Any, property: str = "embedding",
                     batch_size: int = DEFAULT_BATCH,
                     progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Set ``property`` of node ``ids[i]`` to ``vectors[i]`` (all or nothing; idempotent).

    Unknown ids raise :class:`UnknownIdError` and nothing is written. Returns the row count.
    ``progress(done, total)`` is called after each batch (inside the transaction).
    """
    prop = quote(property, "property")
    id_list = plain_ids(ids)
    if not id_list:
        raise InvalidInputError("ids is empty; expected at least one node id")
    v = as_float_array(vectors, "vectors", ndim=2)
    if v.shape[0] != len(id_list):
        raise DimensionMismatchError(len(id_list), v.shape[0], "vectors rows (one per id)")
    if len(set(id_list)) != len(id_list):
        raise InvalidInputError("ids contains duplicates; each node can get one vector")
    rows = _vector_rows(self, id_list, v, blob=property == self.embedding_property)
    stmt = (f"UNWIND $rows AS r MATCH (n:{self._label} {{{self._idp}: r.id}}) SET n.{prop} = r.v"
            f"{_blob_set(self, property == self.embedding_property)} "
            f"RETURN count(*) AS c, collect(r.id) AS ids")
    if property == self.embedding_property:
        self._dim = None
    return _write_rows(self, stmt, rows, _check_batch(batch_size), "write_embeddings", id_list, progress)


def _vector_rows(self, id_list: list, v: np.ndarray, blob: bool) -> list:
    """``{"id", "v"[, "b"]}`` rows: the float list and, with a blob property, its float32 bytes."""
    lists = v.astype(np.float64).tolist()
    if blob and self._blobp is not None:
        f32 = np.ascontiguousarray(v, dtype="<f4")
        return [{"id": i, "v": vec, "b": f32[k].tobytes()} for k, (i, vec) in enumerate(zip(id_list, lists))]
    return [{"id": i, "v": vec} for i, vec in zip(id_list, lists)]


def _blob_set(self, blob: bool) -> str:
    return f", n.{self._blobp} = r.b" if blob and self._blobp is not None else ""


def _score_pairs(results: Any) -> list:
    """(id, score) pairs from a mapping, RankedNeighbour lists (or lists of them), or pairs."""
    pairs: list = []
    if isinstance(results, Mapping):
        pairs = list(results.items())
    else:
        if isinstance(results, (str, bytes)) or not hasattr(results, "__iter__"):
            raise InvalidInputError(f"results must be RankedNeighbour lists, a mapping or (id, score) pairs, "
                                    f"got {type(results).__name__}")
        for item in results:
            if hasattr(item, "id") and hasattr(item, "score"):
                pairs.append((item.id, item.score))
            elif isinstance(item, (list, tuple)) and item and all(hasattr(h, "id") for h in item):
                pairs.extend((h.id, h.score) for h in item)
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise InvalidInputError(f"cannot read a score from {item!r}; expected a RankedNeighbour, "
                                        f"a list of them, or an (id, score) pair")
    out: dict = {}
    for i, s in pairs:
        try:
            s = float(s)
        except (TypeError, ValueError):
            raise InvalidInputError(f"score of id {i!r} is not a number: {s!r}") from None
        if not np.isfinite(s):
            raise InvalidInputError(f"score of id {i!r} is NaN or Inf")
        if i in out and out[i] != s:
            raise InvalidInputError(f"id {i!r} has two different scores ({out[i]} and {s}); "
                                    f"write one list of results per call")
        out[i] = s
    return list(out.items())


def write_scores(self, results: Any, property: str = "rga_score", batch_size: int = DEFAULT_BATCH) -> int:
    """Set ``property`` of each result's node to its score (all or nothing; idempotent).

    ``results``: a list of :class:`~ruvector_graph_attn.RankedNeighbour` (or a list of such
    lists, e.g. from ``search_batch``), a mapping ``id -> score``, or ``(id, score)`` pairs. An id
    appearing twice with different scores is an error. Returns the number of nodes written.
    """
    prop = quote(property, "property")
    pairs = _score_pairs(results)
    if not pairs:
        raise InvalidInputError("results is empty; nothing to write")
    ids = plain_ids([p[0] for p in pairs], "result ids")
    rows = [{"id": i, "s": s} for i, (_, s) in zip(ids, pairs)]
    stmt = (f"UNWIND $rows AS r MATCH (n:{self._label} {{{self._idp}: r.id}}) SET n.{prop} = r.s "
            f"RETURN count(*) AS c, collect(r.id) AS ids")
    return _write_rows(self, stmt, rows, _check_batch(batch_size), "write_scores", ids)


def _similarity_triples(results: Any) -> list:
    triples = []
    if isinstance(results, Mapping):
        for src, hits in results.items():
            for h in hits:
                if hasattr(h, "id") and hasattr(h, "score"):
                    triples.append((src, h.id, h.score))
                elif isinstance(h, (list, tuple)) and len(h) == 2:
                    triples.append((src, h[0], h[1]))
                else:
                    raise InvalidInputError(f"cannot read a (target, score) from {h!r} for source {src!r}")
    else:
        if isinstance(results, (str, bytes)) or not hasattr(results, "__iter__"):
            raise InvalidInputError("results must be a mapping source -> hits or (source, target, score) triples")
        for t in results:
            if not (isinstance(t, (list, tuple)) and len(t) == 3):
                raise InvalidInputError(f"expected a (source, target, score) triple, got {t!r}")
            triples.append(tuple(t))
    out: dict = {}
    for s, t, sc in triples:
        try:
            sc = float(sc)
        except (TypeError, ValueError):
            raise InvalidInputError(f"score of ({s!r}, {t!r}) is not a number: {sc!r}") from None
        if not np.isfinite(sc):
            raise InvalidInputError(f"score of ({s!r}, {t!r}) is NaN or Inf")
        if (s, t) in out and out[(s, t)] != sc:
            raise InvalidInputError(f"pair ({s!r}, {t!r}) has two different scores")
        out[(s, t)] = sc
    return [(s, t, sc) for (s, t), sc in out.items()]


def write_similarity(self, results: Any, rel_type: str = "RGA_SIMILAR", score_property: str = "score",
                     batch_size: int = DEFAULT_BATCH) -> int:
    """MERGE ``(source)-[:rel_type {score_property: score}]->(target)`` (all or nothing; idempotent).

    ``results``: a mapping ``source id -> hits`` (RankedNeighbour or ``(target, score)`` pairs)
    or ``(source, target, score)`` triples. Re-running updates the score on the same single
    relationship. Unknown source or target ids raise :class:`UnknownIdError`, nothing written.
    Returns the number of relationships written.
    """
    rel = quote(rel_type, "relationship type")
    prop = quote(score_property, "score property")
    triples = _similarity_triples(results)
    if not triples:
        raise InvalidInputError("results is empty; nothing to write")
    srcs = plain_ids([t[0] for t in triples], "source ids")
    tgts = plain_ids([t[1] for t in triples], "target ids")
    rows = [{"id": k, "s": s, "t": t, "w": w} for k, (s, t, w) in
            enumerate(zip(srcs, tgts, (x[2] for x in triples)))]
    stmt = (f"UNWIND $rows AS r MATCH (a:{self._label} {{{self._idp}: r.s}}) "
            f"MATCH (b:{self._label} {{{self._idp}: r.t}}) MERGE (a)-[e:{rel}]->(b) SET e.{prop} = r.w "
            f"RETURN count(*) AS c, collect(r.id) AS ids")
    try:
        return _write_rows(self, stmt, rows, _check_batch(batch_size), "write_similarity",
                           list(range(len(rows))))
    except UnknownIdError as exc:
        bad = sorted({x for k in exc.ids for x in (srcs[k], tgts[k])} - set(_existing(self, srcs + tgts)),
                     key=repr)
        raise UnknownIdError(bad, f"Neo4j :{self.label} (write_similarity; nothing was written)") from None


def _existing(self, ids: list) -> list:
    mask = self.contains(list(dict.fromkeys(ids)))
    return [i for i, ok in zip(dict.fromkeys(ids), mask.tolist()) if ok]


# ---------------------------------------------------------------------- loading
def ensure_constraint(self) -> None:
    """``CREATE CONSTRAINT ... IF NOT EXISTS`` making ``id_property`` unique for the label
    (also the index every id lookup uses)."""
    name = check_name(f"rga_{self.label}_{self.id_property}_unique"[:64], "constraint name")
    self.write_tx(lambda tx: tx.run(f"CREATE CONSTRAINT {quote(name)} IF NOT EXISTS FOR (n:{self._label}) "
                                    f"REQUIRE n.{self._idp} IS UNIQUE").consume(), "ensure_constraint")


def _batches(self, statement: str, rows: list, batch_size: int, what: str) -> None:
    q = self._query(statement)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        self.write_tx(lambda tx, c=chunk: tx.run(q, {"rows": c}).consume(), what)


def load_arrays(self, ids: Sequence[Any], vectors: Any, edges: Any = None, rel_type: str = "LINKS",
                edge_attr: Any = None, edge_property: str = "weight", batch_size: int = DEFAULT_BATCH,
                merge: bool = True) -> None:
    """Load nodes ``ids[i]`` with ``vectors[i]`` and relationships ``edges[k] = (src id, dst id)``.

    ``edges``: ``[E, 2]`` (or ``[2, E]`` when E != 2) of node ids, directed ``src -> dst``;
    ``edge_attr``: optional ``[E]`` numbers stored as ``edge_property``. ``merge=True`` (default)
    MERGEs nodes and relationships (idempotent re-runs); ``merge=False`` CREATEs them (faster, for
    a fresh database). Committed per batch (see module docstring).
    """
    rel = quote(rel_type, "relationship type")
    eprop = quote(edge_property, "edge property")
    batch_size = _check_batch(batch_size)
    id_list = plain_ids(ids)
    if not id_list:
        raise InvalidInputError("ids is empty; expected at least one node")
    if len(set(id_list)) != len(id_list):
        raise InvalidInputError("ids contains duplicates")
    v = as_float_array(vectors, "vectors", ndim=2)
    if v.shape[0] != len(id_list):
        raise DimensionMismatchError(len(id_list), v.shape[0], "vectors rows (one per id)")
    e_src = e_dst = None
    if edges is not None:
        e = np.asarray(edges, dtype=object if (id_list and isinstance(id_list[0], str)) else np.int64)
        if e.ndim != 2 or 2 not in e.shape:
            raise InvalidInputError(f"edges must have shape [E, 2] or [2, E], got {e.shape}")
        if e.shape[1] != 2:
            e = e.T
        e_src, e_dst = plain_ids(e[:, 0].tolist(), "edge sources"), plain_ids(e[:, 1].tolist(), "edge targets")
        known = set(id_list)
        bad = [x for x in e_src + e_dst if x not in known]
        if bad:
            raise UnknownIdError(sorted(set(bad), key=repr)[:20], "load_arrays ids (edge endpoints)")
        if edge_attr is not None:
            edge_attr = as_float_array(edge_attr, "edge_attr", ndim=1)
            if edge_attr.shape[0] != len(e_src):
                raise DimensionMismatchError(len(e_src), edge_attr.shape[0], "edge_attr length (one per edge)")
    self.ensure_constraint()
    verb = "MERGE" if merge else "CREATE"
    rows = _vector_rows(self, id_list, v, blob=True)
    _batches(self, f"UNWIND $rows AS r {verb} (n:{self._label} {{{self._idp}: r.id}}) SET n.{self._embp} = r.v"
                   f"{_blob_set(self, True)}", rows, batch_size, "load_arrays (nodes)")
    if e_src:
        w = edge_attr.astype(np.float64).tolist() if edge_attr is not None else [None] * len(e_src)
        erows = [{"s": s, "t": t, "w": x} for s, t, x in zip(e_src, e_dst, w)]
        set_w = f" SET e.{eprop} = r.w" if edge_attr is not None else ""
        _batches(self, f"UNWIND $rows AS r MATCH (a:{self._label} {{{self._idp}: r.s}}) "
                       f"MATCH (b:{self._label} {{{self._idp}: r.t}}) {verb} (a)-[e:{rel}]->(b){set_w}",
                 erows, batch_size, "load_arrays (relationships)")
    self._dim = None


def load_networkx(self, G: Any, feature_key: str = "embedding", rel_type: str = "LINKS",
                  edge_properties: Sequence[str] = (), batch_size: int = DEFAULT_BATCH, merge: bool = True) -> None:
    """Load a NetworkX graph: nodes (int or str ids) with ``G.nodes[n][feature_key]`` as the
    embedding, edges as ``rel_type`` relationships ``u -> v`` carrying ``edge_properties``
    (numbers or lists). Undirected edges become one relationship (read them with
    ``direction="both"``); multigraph parallel edges collapse to one (the first), as in
    :class:`~ruvector_graph_attn.connectors.NetworkXGraph`."""
    import networkx as nx

    if not isinstance(G, nx.Graph):
        raise InvalidInputError(f"G must be a networkx graph, got {type(G).__name__}")
    rel = quote(rel_type, "relationship type")
    if isinstance(edge_properties, str):
        edge_properties = (edge_properties,)
    eprops = [check_name(p, "edge property") for p in edge_properties]
    batch_size = _check_batch(batch_size)
    nodes = plain_ids(list(G.nodes()), "graph nodes")
    if not nodes:
        raise InvalidInputError("G has no nodes")
    vecs = []
    for n in nodes:
        val = G.nodes[n].get(feature_key)
        if val is None:
            raise InvalidInputError(f"node {n!r} has no feature {feature_key!r}; every node needs a vector")
        vecs.append(val)
    v = as_float_array(np.asarray(vecs, dtype=np.float64), f"node features {feature_key!r}", ndim=2)
    seen: dict = {}
    for u, w, data in G.edges(data=True):
        key = (u, w) if G.is_directed() else frozenset((u, w))
        if key in seen:
            continue
        props = {}
        for p in eprops:
            if data.get(p) is None:
                raise InvalidInputError(f"edge ({u!r}, {w!r}) has no attribute {p!r}")
            val = data[p]
            props[p] = np.asarray(val, dtype=np.float64).tolist() if not isinstance(val, (int, float)) else val
        seen[key] = {"s": u, "t": w, "p": props}
    self.ensure_constraint()
    verb = "MERGE" if merge else "CREATE"
    rows = _vector_rows(self, nodes, v, blob=True)
    _batches(self, f"UNWIND $rows AS r {verb} (n:{self._label} {{{self._idp}: r.id}}) SET n.{self._embp} = r.v"
                   f"{_blob_set(self, True)}", rows, batch_size, "load_networkx (nodes)")
    erows = list(seen.values())
    if erows:
        _batches(self, f"UNWIND $rows AS r MATCH (a:{self._label} {{{self._idp}: r.s}}) "
                       f"MATCH (b:{self._label} {{{self._idp}: r.t}}) {verb} (a)-[e:{rel}]->(b) SET e += r.p",
                 erows, batch_size, "load_networkx (relationships)")
    self._dim = None
