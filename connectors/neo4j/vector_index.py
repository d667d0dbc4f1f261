"""Neo4j's native vector index as a candidate source with :class:`~ruvector_graph_attn.HNSWIndex`'s
``search`` contract.

``Neo4jVectorIndex(graph, name, space)`` uses the nodes of ``graph`` (label, id property,
embedding property). :meth:`Neo4jVectorIndex.create` runs ``CREATE VECTOR INDEX ... IF NOT
EXISTS`` with the dimension and similarity function and waits until the index is online.

``search(queries, k, ef=None, filter=None) -> (ids, dists)`` calls
``db.index.vector.queryNodes`` for all queries in ONE round trip and returns hnswlib-style
distances (smaller is closer), converted from Neo4j's similarity scores:

============  =============================  ==============================
space         Neo4j score (5.x)              distance returned
============  =============================  ==============================
``"cosine"``  ``(1 + cos) / 2``              ``1 - cos = 2 - 2 * score``
``"l2"``      ``1 / (1 + ||q - x||^2)``      ``||q - x||^2 = 1 / score - 1``
============  =============================  ==============================

Neo4j has no inner-product similarity, so ``"ip"`` is not offered. Neo4j stores scores as
float32-ish values; the converted distances agree with exact ones to about 1e-6 relative.
``ef`` (default 64, as ``HNSWIndex``; raised to ``k``) is the number of nearest neighbours asked
from the index, of which the best ``k`` are kept: Neo4j's HNSW (Lucene) uses that number as its
beam width, so like hnswlib's ``ef`` it trades speed for recall (with ``ef = k = 10`` on 150
random 16-d vectors, 3 of 50 top-10 ids were missed; with 50 none). ``filter`` (an allow-list
of ids or a predicate ``id -> bool``): an allow-list is searched exactly over the allowed nodes'
vectors (one query); a predicate post-filters index hits, asking for 4x more until ``k`` pass or
the index is exhausted.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from ruvector_graph_attn.errors import (
    DimensionMismatchError, GraphSourceError, InvalidInputError,
)
from ruvector_graph_attn.validation import as_float_array, check_int

from ._expand import _id_array, plain_ids
from .cypher import check_name

__all__ = ["Neo4jVectorIndex"]

_SIMILARITY = {"cosine": "cosine", "l2": "euclidean"}
DEFAULT_EF = 64
FilterArg = Union[None, Iterable[Any], Callable[[Any], bool]]


def _pos_int(v: Any, what: str) -> int:
    return check_int(v, what, lo=1)


class Neo4jVectorIndex:
    """A Neo4j vector index over ``graph``'s label and embedding property.

    Args:
        graph: a :class:`~ruvector_graph_attn.connectors.Neo4jGraph`.
        name: index name (strict name pattern).
        space: ``"cosine"`` (default) or ``"l2"``.
        ef: default number of index neighbours fetched per query (raised to ``k``; default 64).
    """

    def __init__(self, graph: Any, name: str = "rga_vectors", space: str = "cosine", ef: Optional[int] = None):
        from .graph import Neo4jGraph

        if not isinstance(graph, Neo4jGraph):
            raise InvalidInputError(f"graph must be a Neo4jGraph, got {type(graph).__name__}")
        if space not in _SIMILARITY:
            raise InvalidInputError(f"space must be 'cosine' or 'l2' (Neo4j has no inner-product index), got {space!r}")
        self.graph = graph
        self.name = check_name(name, "index name")
        self.space = space
        self.ef = DEFAULT_EF if ef is None else _pos_int(ef, "ef")

    @property
    def dim(self) -> int:
        return self.graph.dim

    def __repr__(self) -> str:
        return f"Neo4jVectorIndex({self.name!r}, space={self.space!r}, graph={self.graph!r})"

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, graph: Any, name: str = "rga_vectors", dim: Optional[int] = None, space: str = "cosine",
               wait: float = 300.0, ef: Optional[int] = None, quantization: bool = False,
               M: int = 16, ef_construction: int = 100) -> "Neo4jVectorIndex":
        """``CREATE VECTOR INDEX name IF NOT EXISTS`` on the graph's label/embedding property
        with ``dim`` (default: the graph's feature dimension) and the space's similarity function,
        then wait up to ``wait`` seconds for it to be online. An existing index of that name is
        kept as it is (its options are checked: a different dimension or function is an error).

        ``quantization`` is off by default: Neo4j 5.26 otherwise stores quantized vectors in the
        index and its ranking drifts visibly from exact distances (on 150 random 16-d vectors, 2
        of 3 top-10 ids differed from brute force in our test). ``M`` and ``ef_construction`` are
        the HNSW build parameters (Neo4j's ``vector.hnsw.m`` / ``vector.hnsw.ef_construction``)."""
        idx = cls(graph, name, space, ef)
        d = graph.dim if dim is None else _pos_int(dim, "dim")
        M = _pos_int(M, "M")
        ef_construction = _pos_int(ef_construction, "ef_construction")
        stmt = (f"CREATE VECTOR INDEX {'`' + idx.name + '`'} IF NOT EXISTS FOR (n:{graph._label}) "
                f"ON (n.{graph._embp}) OPTIONS {{indexConfig: {{`vector.dimensions`: $d, "
                f"`vector.similarity_function`: $f, `vector.quantization.enabled`: $qz, "
                f"`vector.hnsw.m`: $m, `vector.hnsw.ef_construction`: $efc}}}}")
        graph.write_tx(lambda tx: tx.run(stmt, {"d": d, "f": _SIMILARITY[space], "qz": bool(quantization),
                                                 "m": M, "efc": ef_construction}).consume(),
                       "create vector index")
        graph.read("CALL db.awaitIndex($name, $t)", {"name": idx.name, "t": int(max(1, wait))},
                   what="waiting for the vector index")
        rec = graph.read("SHOW VECTOR INDEXES YIELD name, options WHERE name = $name RETURN options",
                         {"name": idx.name}, what="reading the vector index options")
        if rec:
            cfg = (rec[0]["options"] or {}).get("indexConfig", {})
            have_d, have_f = cfg.get("vector.dimensions"), str(cfg.get("vector.similarity_function", "")).lower()
            if have_d is not None and int(have_d) != d:
                raise DimensionMismatchError(d, int(have_d), f"dimensions of existing vector index {idx.name!r}")
            if have_f and have_f != _SIMILARITY[space]:
                raise InvalidInputError(f"existing vector index {idx.name!r} uses {have_f!r}, expected "
                                        f"{_SIMILARITY[space]!r} for space {space!r}")
        return idx

    def drop(self) -> None:
        """``DROP INDEX name IF EXISTS``."""
        self.graph.write_tx(lambda tx: tx.run(f"DROP INDEX `{self.name}` IF EXISTS").consume(), "drop vector index")

    # ------------------------------------------------------------------ search
    def to_similarity(self, dists: np.ndarray) -> np.ndarray:
        """Distances from :meth:`search` -> similarities (``cos`` for cosine, ``-d`` for l2)."""
        d = np.asarray(dists)
        return (1.0 - d) if self.space == "cosine" else -d

    def _score_to_dist(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        if self.space == "cosine":
            return np.maximum(2.0 - 2.0 * s, 0.0)
        return np.maximum(1.0 / np.maximum(s, 1e-300) - 1.0, 0.0)

    def _check_queries(self, queries: Any) -> tuple:
        single = np.ndim(queries) == 1
        q = as_float_array(queries, "queries", ndim=(1, 2))
        q2 = q.reshape(1, -1) if q.ndim == 1 else q
        if q2.shape[0] == 0:
            raise InvalidInputError("queries is empty; expected at least one query vector")
        if q2.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, q2.shape[1], "query dimension")
        if self.space == "cosine" and (np.linalg.norm(q2, axis=1) == 0).any():
            raise InvalidInputError("a query is the zero vector; cosine similarity needs non-zero queries")
        return single, q2

    def _query_index(self, q2: np.ndarray, n: int) -> list:
        g = self.graph
        recs = g.read(
            f"UNWIND range(0, size($qs) - 1) AS qi "
            f"CALL db.index.vector.queryNodes($name, $n, $qs[qi]) YIELD node, score "
            f"RETURN qi, node.{g._idp} AS id, score",
            {"qs": q2.astype(np.float64).tolist(), "name": self.name, "n": int(n)},
            what=f"vector search ({q2.shape[0]} queries)")
        out = [[] for _ in range(q2.shape[0])]
        for r in recs:
            out[r["qi"]].append((r["id"], float(r["score"])))
        return out

    def search(self, queries: Any, k: int = 10, ef: Optional[int] = None, filter: FilterArg = None):
        """The ``k`` nearest nodes to each query (contract of ``HNSWIndex.search``).

        Returns ``(ids, dists)``: ``[k]`` arrays for one query (``[B, k]`` for a batch), ids int64
        (object for string ids), float32 distances smaller-is-closer (module table). When fewer
        than ``k`` nodes are eligible the arrays are shorter (same width for every query).
        """
        single, q2 = self._check_queries(queries)
        k = _pos_int(k, "k")
        ef_val = self.ef if ef is None else _pos_int(ef, "ef")
        n = max(k, ef_val)
        if filter is not None and not callable(filter):
            rows = self._exact_allow(q2, k, plain_ids(list(filter), "filter ids"))
        else:
            rows = self._query_index(q2, n)
            if filter is not None:
                total = self.graph.count()
                pred = filter
                while True:
                    kept = [[(i, s) for i, s in row if pred(i)] for row in rows]
                    if all(len(r) >= k for r in kept) or n >= total:
                        rows = kept
                        break
                    n = min(n * 4, total)
                    rows = self._query_index(q2, n)
        for r in rows:
            r.sort(key=lambda t: -t[1])
        width = min(k, min(len(r) for r in rows))
        ids = [[t[0] for t in r[:width]] for r in rows]
        scores = np.asarray([[t[1] for t in r[:width]] for r in rows], dtype=np.float64).reshape(len(rows), width)
        flat = [i for r in ids for i in r]
        id_arr = _id_array(flat) if flat else np.zeros(0, np.int64)
        if id_arr.dtype.kind not in "iu":
            id_arr = np.asarray(flat, dtype=object)
        id_arr = id_arr.reshape(len(rows), width)
        dists = self._score_to_dist(scores).astype(np.float32)
        if single:
            return id_arr[0], dists[0]
        return id_arr, dists

    def _exact_allow(self, q2: np.ndarray, k: int, allow: list) -> list:
        """Exact search over an allow-list (one query for the allowed vectors)."""
        if not allow:
            return [[] for _ in range(q2.shape[0])]
        g = self.graph
        recs = g.read(f"UNWIND $ids AS i MATCH (n:{g._label} {{{g._idp}: i}}) WHERE n.{g._embp} IS NOT NULL "
                      f"RETURN i, n.{g._embp} AS e", {"ids": list(dict.fromkeys(allow))},
                      what="filtered vector search")
        if not recs:
            return [[] for _ in range(q2.shape[0])]
        ids = [r["i"] for r in recs]
        X = np.asarray([r["e"] for r in recs], dtype=np.float64)
        if X.shape[1] != q2.shape[1]:
            raise GraphSourceError(f"stored vectors have dimension {X.shape[1]}, queries {q2.shape[1]}")
        Q = q2.astype(np.float64)
        if self.space == "cosine":
            cos = (Q / np.linalg.norm(Q, axis=1, keepdims=True)) @ (X / np.linalg.norm(X, axis=1, keepdims=True)).T
            score = (1.0 + cos) / 2.0
        else:
            d2 = np.maximum((Q * Q).sum(1)[:, None] - 2.0 * Q @ X.T + (X * X).sum(1)[None, :], 0.0)
            score = 1.0 / (1.0 + d2)
        kk = min(k, len(ids))
        top = np.argsort(-score, axis=1, kind="stable")[:, :kk]
        return [[(ids[j], float(score[b, j])) for j in top[b]] for b in range(Q.shape[0])]
