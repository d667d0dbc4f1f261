"""Neo4j as a :class:`~ruvector_graph_attn.connectors.GraphSource`, over Bolt.

:class:`Neo4jGraph` reads nodes carrying one label (``label``), identified by a property
(``id_property``, integer or string values) and holding a feature vector (``embedding_property``,
a list of floats), connected by relationships of ``relationship_types`` (``None``: any type).

Expansion (``expand``) is one Cypher round trip per call: the seeds are ``UNWIND``-ed, the
nodes within ``hops - 1`` of them are found with a quantified path pattern whose every node
carries the label, and their adjacency plus the features of every node involved come back in
one record. The breadth-first search itself -- hop numbers, the per-node neighbour cap, the
traversed edges -- runs on those arrays in the client (``_expand.py``), with exactly the rules
of :class:`~ruvector_graph_attn.connectors.NetworkXGraph`, so the same graph gives the same
subgraph in both connectors. Notes (also in ``docs/neo4j.md``):

* rows after the seeds are ordered by hop, then by database id (NetworkX: hop, then discovery
  order); compare subgraphs by id, not by position;
* the cap sample key is ``pair_hash(seed, key(u), key(v))`` on database ids (``key`` is the id
  for integer ids, else 8 bytes of BLAKE2b of ``str(id)``) -- the same rule as NetworkXGraph;
* the cap limits what is scored, not what is transferred: the uncapped ball of radius
  ``hops - 1`` is read from the server.

Reads run in managed read transactions (``execute_read``), so the driver retries transient
failures (a leader switch, a dropped connection, a server restart) for up to ``timeout``
seconds; each query also carries ``timeout`` as its server-side transaction timeout. A server
that cannot be reached raises :class:`~ruvector_graph_attn.ConnectionFailedError` naming the
URI (never the credentials).
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable, Hashable, Iterable, Optional, Sequence

import numpy as np

from ruvector_graph_attn.errors import (
    ConnectionFailedError, DimensionMismatchError, GraphSourceError, InvalidInputError, UnknownIdError,
)
from ruvector_graph_attn.kernels.csr import group_runs
from ruvector_graph_attn.validation import DEFAULT_MAX_KEYS, check_float, check_int, check_size

from ..base import Subgraph, check_direction, check_hops
from ._expand import _id_array, _lookup, capped_bfs, id_keys, plain_ids
from .cypher import check_name, quote, rel_type_pattern, safe_uri

__all__ = ["Neo4jGraph"]

_ARROWS = {"out": ("-", "->"), "in": ("<-", "-"), "both": ("-", "-")}


#: the driver's own records (retries, routing, notices) are re-emitted here
LOG = logging.getLogger("ruvector_graph_attn.connectors.neo4j")
logging.getLogger("ruvector_graph_attn").addHandler(logging.NullHandler())


class _ForwardDriverLogs(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if LOG.isEnabledFor(record.levelno):
            LOG.handle(record)


def route_driver_logs() -> None:
    """Send the ``neo4j`` driver's log records through this library's logger
    (``ruvector_graph_attn.connectors.neo4j``) instead of letting Python's last-resort
    handler print them on stderr (the driver logs a warning for each retry while a server
    is down, before the typed error arrives). Applications see them once they configure
    ``logging``; handlers attached to the ``neo4j`` logger itself keep working."""
    drv = logging.getLogger("neo4j")
    if not any(isinstance(h, _ForwardDriverLogs) for h in drv.handlers):
        drv.addHandler(_ForwardDriverLogs())
        drv.propagate = False


class Neo4jGraph:
    """A graph stored in Neo4j, read over Bolt with the official ``neo4j`` driver.

    Args:
        uri_or_driver: a Bolt/Neo4j URI (``bolt://host:7687``, ``neo4j://...``) or an existing
            ``neo4j.Driver`` (then ``auth`` and the driver options are ignored and the driver is
            not closed by :meth:`close`).
        auth: ``(user, password)`` or ``None``.
        database: database name.
        label, id_property, embedding_property: the node label, the property holding each
            node's id (ints or strings) and the one holding its feature vector.
        relationship_types: relationship types that count as edges (``None``: all).
        direction: default expansion direction (``"out"``, ``"in"``, ``"both"``).
        edge_properties: relationship properties concatenated into ``Subgraph.edge_attr``
            (numbers or lists; every traversed relationship must have them).
        dtype: float32 (default) or float64 features.
        timeout: seconds: the server-side transaction timeout of each query and the driver's
            retry window for transient failures.
        connection_timeout: seconds to wait for a TCP connection.
        verify: check connectivity (and credentials) now, raising ConnectionFailedError.
        undirected: treat relationships as undirected edges (a graph loaded from an undirected
            NetworkX graph): expansion ignores their direction and ``edge_index`` carries both
            orientations of every traversed edge, as NetworkX and PyTorch Geometric do.
        blob_property: optional name of a byte-array property holding each node's features as
            little-endian float32 (``vector.astype('<f4').tobytes()``). When set, the loaders and
            ``write_embeddings`` (of ``embedding_property``) write it next to the float list, and
            every read fetches it instead of the list (nodes without it fall back to the list):
            Neo4j reads and ships one 4*D-byte value instead of D doubles, about 4x less time for
            large expansions (docs/neo4j.md). Features then have float32 precision.
    """

    def __init__(self, uri_or_driver: Any, auth: Optional[tuple] = None, database: str = "neo4j",
                 label: str = "Item", id_property: str = "id", embedding_property: str = "embedding",
                 relationship_types: Optional[Sequence[str]] = None, direction: str = "both",
                 edge_properties: Sequence[str] = (), dtype: Any = np.float32, timeout: float = 30.0,
                 connection_timeout: float = 5.0, verify: bool = True, undirected: bool = False,
                 blob_property: Optional[str] = None):
        import neo4j

        route_driver_logs()
        self._label = quote(label, "label")
        self._idp = quote(id_property, "id property")
        self._embp = quote(embedding_property, "embedding property")
        if blob_property is not None and blob_property == embedding_property:
            raise InvalidInputError("blob_property must differ from embedding_property (it holds a float32 copy)")
        self.blob_property = blob_property
        self._blobp = None if blob_property is None else quote(blob_property, "blob property")
        self.label, self.id_property, self.embedding_property = label, id_property, embedding_property
        if isinstance(relationship_types, str):
            relationship_types = [relationship_types]
        self.relationship_types = None if relationship_types is None else list(relationship_types)
        self._rel = rel_type_pattern(self.relationship_types)
        self.direction = check_direction(direction)
        self.undirected = bool(undirected)
        if edge_properties is None:
            edge_properties = ()
        if isinstance(edge_properties, str):
            edge_properties = (edge_properties,)
        try:
            edge_properties = list(edge_properties)
        except TypeError:
            raise InvalidInputError(
                f"edge_properties must be a list of property names, got {type(edge_properties).__name__}") from None
        self.edge_properties = tuple(check_name(p, "edge property") for p in edge_properties)
        if not isinstance(database, str) or not database or len(database) > 63:
            raise InvalidInputError(f"database must be a non-empty name, got {database!r}")
        self.database = database
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise InvalidInputError(f"dtype must be float32 or float64, got {dt}")
        self.dtype = dt
        for val, what in ((timeout, "timeout"), (connection_timeout, "connection_timeout")):
            check_float(val, f"{what} (seconds)", lo=0.0, lo_open=True)
        self.timeout = float(timeout)
        self._dim: Optional[int] = None
        self._lock = threading.Lock()
        self._secrets = [str(v) for v in ((auth or ())[1:2] if isinstance(auth, (tuple, list)) else ()) if v]
        if isinstance(uri_or_driver, str):
            self._uri = safe_uri(uri_or_driver)
            if self._uri != uri_or_driver:
                self._secrets.append(uri_or_driver)
            try:
                self._driver = neo4j.GraphDatabase.driver(
                    uri_or_driver, auth=auth, max_transaction_retry_time=self.timeout,
                    connection_timeout=float(connection_timeout),
                    connection_acquisition_timeout=max(float(connection_timeout), self.timeout))
            except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
                raise InvalidInputError(f"bad Neo4j URI {self._uri!r}: {self._scrub(str(exc))}") from None
            self._own_driver = True
        elif isinstance(uri_or_driver, neo4j.Driver):
            self._driver = uri_or_driver
            self._uri = "<driver>"
            self._own_driver = False
        else:
            raise InvalidInputError(f"uri_or_driver must be a URI string or a neo4j.Driver, "
                                    f"got {type(uri_or_driver).__name__}")
        if verify:
            self.verify()

    # ------------------------------------------------------------------ plumbing
    @property
    def driver(self) -> Any:
        return self._driver

    @property
    def uri(self) -> str:
        """The server URI without credentials."""
        return self._uri

    def verify(self) -> None:
        """Connect and authenticate now (ConnectionFailedError naming the URI on failure)."""
        self._call(lambda: self._driver.verify_connectivity(), "connect")

    def close(self) -> None:
        if self._own_driver:
            self._driver.close()

    def __enter__(self) -> "Neo4jGraph":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        rel = "*" if self.relationship_types is None else "|".join(self.relationship_types)
        return (f"Neo4jGraph({self._uri!r}, database={self.database!r}, label={self.label!r}, "
                f"id_property={self.id_property!r}, embedding_property={self.embedding_property!r}, "
                f"relationship_types={rel!r}, direction={self.direction!r}"
                f"{', undirected=True' if self.undirected else ''}"
                f"{f', blob_property={self.blob_property!r}' if self.blob_property else ''})")

    def _feat(self, var: str) -> str:
        """Cypher expression of node ``var``'s features (blob first when configured)."""
        if self._blobp is None:
            return f"{var}.{self._embp}"
        return f"coalesce({var}.{self._blobp}, {var}.{self._embp})"

    def _scrub(self, text: str) -> str:
        """``text`` with the raw URI and the password replaced (driver messages may quote them)."""
        for sec in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(sec, "***")
        return text

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run ``fn`` translating driver errors into the library's (no credentials in them)."""
        import neo4j.exceptions as nx

        try:
            return fn()
        except nx.AuthError:
            raise ConnectionFailedError(
                f"Neo4j at {self._uri} rejected the credentials during {what}") from None
        except (nx.ServiceUnavailable, nx.SessionExpired, OSError) as exc:
            raise ConnectionFailedError(
                f"Neo4j at {self._uri} is unreachable during {what} (retried for up to "
                f"{self.timeout:g} s): {type(exc).__name__}: {self._scrub(str(exc))}") from None
        except nx.Neo4jError as exc:
            raise GraphSourceError(f"Neo4j at {self._uri} refused {what}: {exc.code}: {self._scrub(str(exc.message))}") from None
        except nx.DriverError as exc:
            raise GraphSourceError(f"Neo4j driver error during {what} on {self._uri}: "
                                   f"{type(exc).__name__}: {self._scrub(str(exc))}") from None

    def _query(self, text: str) -> str:
        return text

    def _uow(self, work: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``work`` as a unit of work with the server-side transaction timeout."""
        import neo4j

        return neo4j.unit_of_work(timeout=self.timeout)(work)

    def read(self, text: str, params: Optional[dict] = None, what: str = "a read") -> list:
        """Run one query in a managed READ transaction; returns the records (list)."""
        import neo4j

        q = self._query(text)
        params = params or {}

        def work(tx):
            return list(tx.run(q, params))

        def go():
            with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as s:
                return s.execute_read(self._uow(work))

        return self._call(go, what)

    def write_tx(self, work: Callable[[Any], Any], what: str) -> Any:
        """Run ``work(tx)`` as ONE managed write transaction (all or nothing; retried if transient)."""
        import neo4j

        def go():
            with self._driver.session(database=self.database, default_access_mode=neo4j.WRITE_ACCESS) as s:
                return s.execute_write(self._uow(work))

        return self._call(go, what)

    # ------------------------------------------------------------------ GraphSource
    @property
    def dim(self) -> int:
        """Length of the node feature vectors (read once from one node)."""
        if self._dim is None:
            rec = self.read(f"MATCH (n:{self._label}) WHERE n.{self._embp} IS NOT NULL "
                            f"RETURN size(n.{self._embp}) AS d LIMIT 1", what="reading the feature dimension")
            if not rec:
                raise GraphSourceError(f"no :{self.label} node with property {self.embedding_property!r} "
                                       f"in Neo4j database {self.database!r}")
            self._dim = int(rec[0]["d"])
        return self._dim

    def count(self) -> int:
        """Number of nodes with the label."""
        return int(self.read(f"MATCH (n:{self._label}) RETURN count(n) AS c", what="count")[0]["c"])

    def contains(self, ids: Iterable[Hashable]) -> np.ndarray:
        """Boolean mask: which ids are nodes (label + id property) in the database."""
        id_list = plain_ids(ids)
        if not id_list:
            return np.zeros(0, dtype=bool)
        recs = self.read(f"UNWIND $ids AS i MATCH (n:{self._label} {{{self._idp}: i}}) RETURN DISTINCT i",
                         {"ids": id_list}, what="contains")
        found = _id_array([r["i"] for r in recs]) if recs else _id_array([])
        return np.isin(_id_array(id_list), found) if found.size else np.zeros(len(id_list), dtype=bool)

    def _to_x(self, rows_ids: list, embs: list, what: str) -> np.ndarray:
        """Feature matrix from the values read: float lists and/or float32 blobs (bytes)."""
        bad = [i for i, e in zip(rows_ids, embs) if e is None]
        if bad:
            raise GraphSourceError(f"node(s) {bad[:5]!r} have no property {self.embedding_property!r} ({what})")
        if not embs:
            return np.zeros((0, self._dim or 0), dtype=self.dtype)
        blobs = [isinstance(e, (bytes, bytearray)) for e in embs]
        if all(blobs):
            sizes = {len(e) for e in embs}
            if len(sizes) != 1 or next(iter(sizes)) % 4 or next(iter(sizes)) == 0:
                raise GraphSourceError(f"blob property {self.blob_property!r} has lengths {sorted(sizes)[:5]} "
                                       f"bytes; expected one common non-zero multiple of 4 (float32)")
            x = np.frombuffer(b"".join(embs), dtype="<f4").reshape(len(embs), -1).astype(self.dtype)
        else:
            rows = [np.frombuffer(e, dtype="<f4") if b else e for e, b in zip(embs, blobs)] if any(blobs) else embs
            lens = {len(e) for e in rows}
            if len(lens) > 1:
                want = len(rows[0])
                off = next(i for i, e in zip(rows_ids, rows) if len(e) != want)
                raise DimensionMismatchError(want, len(next(e for e in rows if len(e) != want)),
                                             f"feature length of node {off!r}")
            try:
                x = np.asarray(rows, dtype=self.dtype)
            except (TypeError, ValueError) as exc:
                raise GraphSourceError(f"property {self.embedding_property!r} is not a list of numbers ({exc})") from None
        if not np.isfinite(x).all():
            raise GraphSourceError(f"property {self.embedding_property!r} contains NaN or Inf")
        if self._dim is None:
            self._dim = int(x.shape[1])
        return np.ascontiguousarray(x)

    def features(self, ids: Sequence[Hashable]) -> np.ndarray:
        """``[len(ids), dim]`` features in request order; unknown ids raise UnknownIdError."""
        id_list = plain_ids(ids)
        if not id_list:
            raise InvalidInputError("ids is empty; expected at least one node id")
        check_size(len(id_list), DEFAULT_MAX_KEYS, "number of ids")
        uniq = list(dict.fromkeys(id_list))
        recs = self.read(f"UNWIND $ids AS i MATCH (n:{self._label} {{{self._idp}: i}}) "
                         f"RETURN i, {self._feat('n')} AS e", {"ids": uniq}, what="features")
        got = {r["i"]: r["e"] for r in recs}
        missing = [i for i in uniq if i not in got]
        if missing:
            raise UnknownIdError(missing, f"Neo4j :{self.label}")
        x = self._to_x(uniq, [got[i] for i in uniq], "features")
        pos = {i: k for k, i in enumerate(uniq)}
        return x[[pos[i] for i in id_list]]

    # ------------------------------------------------------------------ expansion
    def _expand_cypher(self, hops: int, direction: str) -> str:
        L, idp, embp, rel = self._label, self._idp, self._embp, self._rel
        left, right = _ARROWS[direction]
        props = "".join(f", r.{quote(p, 'edge property')}" for p in self.edge_properties)
        if hops - 1 >= 1:
            ball = (f"CALL (seeds) {{ UNWIND seeds AS s "
                    f"MATCH (s)(()-[{rel}]-(:{L})){{0,{hops - 1}}}(n) RETURN collect(DISTINCT n) AS ball }}")
            if direction != "both":
                ball = ball.replace(f"-[{rel}]-", f"{left}[{rel}]{right}")
        elif hops == 1:
            ball = "WITH seeds, seeds AS ball"
        else:  # hops == 0: no adjacency, the seeds' features only
            ball = "WITH seeds, [] AS ball"
        return (
            f"UNWIND $ids AS sid MATCH (s:{L} {{{idp}: sid}}) "
            f"WITH collect(DISTINCT s) AS seeds "
            f"{ball} "
            f"CALL (ball) {{ UNWIND ball AS n MATCH (n){left}[r{rel}]{right}(m:{L}) "
            f"RETURN collect([n.{idp}, m.{idp}, startNode(r) = n{props}]) AS adj, "
            f"collect(DISTINCT m) AS outer }} "
            f"CALL (seeds, ball, outer) {{ UNWIND seeds + ball + outer AS x WITH DISTINCT x "
            f"RETURN collect([x.{idp}, {self._feat('x')}]) AS feats }} "
            f"RETURN [s IN seeds | s.{idp}] AS found, adj, feats"
        )

    def expand(self, ids: Sequence[Hashable], hops: int = 1, direction: Optional[str] = None,
               max_neighbors: Optional[int] = None, seed: int = 0) -> Subgraph:
        """The neighbourhood of ``ids`` within ``hops``, in one round trip (see module docstring).

        ``direction`` defaults to the graph's ``direction``. Unknown ids are listed in
        ``Subgraph.missing``; bad arguments raise :class:`InvalidInputError`.
        """
        hops = check_hops(hops)
        direction = self.direction if direction is None else check_direction(direction)
        if self.undirected:
            direction = "both"
        if max_neighbors is not None:
            check_int(max_neighbors, "max_neighbors (or None)", lo=0)
        check_int(seed, "seed", lo=0)
        id_list = plain_ids(ids)
        if not id_list:
            raise InvalidInputError("ids is empty; expected at least one node id to expand")
        check_size(len(id_list), DEFAULT_MAX_KEYS, "number of ids to expand")
        request = list(dict.fromkeys(id_list))
        rec = self.read(self._expand_cypher(hops, direction), {"ids": request},
                        what=f"expand({len(request)} ids, hops={hops})")[0]
        return self._build_subgraph(request, id_list, rec["found"], rec["adj"], rec["feats"], hops,
                                    direction, None if max_neighbors is None else int(max_neighbors), int(seed))

    def _build_subgraph(self, request: list, id_list: list, found: list, adj: list, feats: list, hops: int,
                        direction: str, cap: Optional[int], salt: int) -> Subgraph:
        found_set = set(found)
        missing = [i for i in id_list if i not in found_set]
        req_found = [i for i in request if i in found_set]
        if not req_found:
            dim = self._dim if self._dim is not None else (len(feats[0][1]) if feats else 0)
            return Subgraph(node_ids=[], edge_index=np.zeros((2, 0), np.int64),
                            x=np.zeros((0, dim), self.dtype), hop=np.zeros(0, np.int64),
                            seeds=np.zeros(0, np.int64), missing=missing)
        f_ids = _id_array([f[0] for f in feats])
        x_all = self._to_x([f[0] for f in feats], [f[1] for f in feats], "expand")
        order = np.argsort(f_ids, kind="stable")
        f_sorted = f_ids[order]
        seeds = _lookup(f_sorted, order, _id_array(req_found))
        n = f_ids.shape[0]
        if adj and hops > 0:
            a_u = _lookup(f_sorted, order, _id_array([r[0] for r in adj]))
            a_v = _lookup(f_sorted, order, _id_array([r[1] for r in adj]))
            start_is_u = np.fromiter((bool(r[2]) for r in adj), dtype=bool, count=len(adj))
            if direction == "out":
                fw, bw = np.ones(len(adj), bool), np.zeros(len(adj), bool)
            elif direction == "in":
                fw, bw = np.zeros(len(adj), bool), np.ones(len(adj), bool)
            else:
                fw, bw = start_is_u, ~start_is_u
            if self.undirected:
                fw, bw = np.ones(len(adj), bool), np.ones(len(adj), bool)
            # merge parallel relationships / both orientations into distinct (u, v) pairs
            srt, starts = group_runs(a_u * np.int64(n) + a_v)
            pu, pv = a_u[srt][starts], a_v[srt][starts]
            pf = np.logical_or.reduceat(fw[srt], starts)
            pb = np.logical_or.reduceat(bw[srt], starts)
        else:
            pu = pv = np.empty(0, np.int64)
            pf = pb = np.empty(0, bool)
        keys = id_keys(f_ids)
        nodes, hop, src, dst, org = capped_bfs(n, pu, pv, pf, pb, seeds, hops, cap, salt, keys, f_ids)
        edge_attr = None
        if self.edge_properties:
            edge_attr = self._edge_attr(adj, f_sorted, order, n, nodes, src, dst, direction)
        return Subgraph(node_ids=f_ids[nodes].tolist(), edge_index=np.stack([src, dst]),
                        x=x_all[nodes], hop=hop, seeds=np.arange(seeds.size, dtype=np.int64),
                        edge_attr=edge_attr, missing=missing, edge_origin=org)

    def _edge_attr(self, adj: list, f_sorted, order, n: int, nodes, src, dst, direction: str) -> np.ndarray:
        """Attributes of each traversed edge from the relationship in its own orientation."""
        width = len(self.edge_properties)
        if src.size == 0:
            return np.zeros((0, width), dtype=self.dtype)
        a_u = _lookup(f_sorted, order, _id_array([r[0] for r in adj]))
        a_v = _lookup(f_sorted, order, _id_array([r[1] for r in adj]))
        start_is_u = np.fromiter((bool(r[2]) if direction == "both" else direction == "out" for r in adj),
                                 dtype=bool, count=len(adj))
        gs = np.where(start_is_u, a_u, a_v)       # graph edge start (global local-universe position)
        gt = np.where(start_is_u, a_v, a_u)
        rows_all = np.arange(len(adj))
        if self.undirected:                         # both orientations carry the edge's attributes
            gs, gt = np.concatenate([gs, gt]), np.concatenate([gt, gs])
            rows_all = np.concatenate([rows_all, rows_all])
        key = gs * np.int64(n) + gt
        srt = np.argsort(key, kind="stable")
        ks = key[srt]
        want = nodes[src] * np.int64(n) + nodes[dst]
        j = np.minimum(np.searchsorted(ks, want), ks.size - 1)
        if not (ks[j] == want).all():  # pragma: no cover - edges come from adj
            raise GraphSourceError("internal: traversed edge without a relationship row")
        rows = rows_all[srt[j]]
        return self._attr_matrix(adj)[rows]

    def _attr_matrix(self, adj: list) -> np.ndarray:
        """``[len(adj), F]`` relationship property values of the adjacency rows."""
        vals = [r[3:] for r in adj]
        try:
            out = np.asarray(vals, dtype=self.dtype)          # all properties scalar numbers
            if out.ndim != 2:
                raise ValueError
        except (TypeError, ValueError):
            rows = []
            for rec in adj:                                   # vector-valued properties
                parts = []
                for p, v in zip(self.edge_properties, rec[3:]):
                    if v is None:
                        raise GraphSourceError(f"relationship ({rec[0]!r})-({rec[1]!r}) has no property {p!r}")
                    parts.append(np.atleast_1d(np.asarray(v, dtype=self.dtype)))
                rows.append(np.concatenate(parts))
            try:
                out = np.stack(rows)
            except ValueError as exc:
                raise GraphSourceError(f"edge properties {self.edge_properties} have differing lengths "
                                       f"({exc})") from None
        if not np.isfinite(out).all():
            raise GraphSourceError(f"edge properties {self.edge_properties} are missing on some relationship, or NaN/Inf")
        return np.ascontiguousarray(out, dtype=self.dtype)

    def project(self, **kwargs: Any) -> Any:
        """An in-process :class:`~ruvector_graph_attn.connectors.neo4j.Neo4jProjection` of this
        graph (read once, expanded locally; keyword arguments go to its constructor)."""
        from .projection import Neo4jProjection

        return Neo4jProjection(self, **kwargs)

    # ------------------------------------------------------------------ more API (other modules)
    from .traversal import subgraph_from_cypher, traverse  # noqa: E402  (methods)
    from .writeback import (  # noqa: E402  (methods)
        ensure_constraint, load_arrays, load_networkx, write_embeddings, write_scores, write_similarity,
    )
