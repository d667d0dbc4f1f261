"""An in-process projection of a Neo4j graph: read once, expand locally, keep it fresh.

:class:`Neo4jProjection` reads the topology and the features of a :class:`Neo4jGraph`'s
nodes (its label, id property, features, relationship types and edge properties) once,
in pages read in parallel, into the same array snapshot :class:`NetworkXGraph` uses
(CSR adjacency per direction, one feature matrix), and serves ``expand`` / ``features`` /
``contains`` from it with NetworkX's code: sub-millisecond expansions instead of one
Bolt round trip each. It is a :class:`GraphSource`, so a ``GraphReranker`` takes it
where it takes the ``Neo4jGraph``; server-side expansion stays available as
:meth:`Neo4jProjection.expand_server` (and on the ``Neo4jGraph`` itself).

Reading
    Nodes are split into ``pages`` partitions by ``id(n) % pages`` (the internal id, used for
    nothing else); each partition is one query returning its ids and features as columns,
    and up to ``workers`` partitions are read at once. Relationships are read the same way,
    partitioned by their start node, as pairs of *user* ids. Features come from the
    graph's ``blob_property`` (little-endian float32 bytes, 4 bytes per value) when it is
    configured, else from the float lists; configure a blob property (the loaders and
    ``write_embeddings`` keep it) for large graphs: it is about 4x less to read and decode.

Same results as server-side expansion
    The same graph gives the same subgraph by id (hop numbers, traversed edges, edge
    origins, features, caps sampled by ``pair_hash`` of the ids, missing ids); rows are in
    NetworkX's discovery order, not the server's (hop, id) order: compare by id.
    The snapshot's rows are in id order (whatever the page partition), so a NetworkX graph
    whose nodes were added in id order has the identical snapshot and gives bit-identical
    re-ranking scores (otherwise they may differ in the last bits: neighbours are summed in
    snapshot order). Nodes added by an incremental sync follow until the next refresh.
    Differences: a node without features fails when the projection is built (server-side
    expansion fails only when an expansion reaches it); parallel relationships between the
    same pair keep the edge properties of one of them (so does the server path).

Staying fresh
    ``refresh()`` re-reads everything. ``max_staleness`` (seconds) bounds the age of what calls
    see without putting the server in their path: a background thread ``sync()``-s every
    ``sync_interval`` seconds (default ``max_staleness / 2``), and a call only compares a clock
    with the last sync's time; only when the background thread has fallen behind (a sync
    failing or slower than ``max_staleness - sync_interval``) does a call find the projection
    older than ``max_staleness`` and sync first itself. ``sync()`` is incremental when a
    ``change_property`` is configured, a number that writers set on every node and
    relationship they create or modify (e.g. ``SET n.updated_at = timestamp()``): it reads
    the nodes and relationships whose value is ``>=`` the largest value seen so far (the
    watermark; equal values are re-read, which is harmless: applying a change twice is
    idempotent), updates features, adds nodes and relationships, and rebuilds the CSR
    arrays (no server reads beyond the changed rows). Without ``change_property``,
    ``sync()`` is ``refresh()``.

    Limits (no transaction log is read; Neo4j Community has no change-data-capture):
    * deletions leave no changed row behind. ``sync(detect_deletions=True)`` (the default)
      compares the server's count of nodes and of distinct related pairs with the
      projection's and falls back to a full ``refresh()`` when they differ (an O(N + E) count
      on the server, no data transfer). A deletion offset exactly by an untracked addition
      is not seen; call ``refresh()`` after such edits;
    * writes that do not set ``change_property`` are not seen by ``sync`` (except through the
      counts above);
    * a transaction that commits after a sync with a value below that sync's watermark (its
      stamp taken long before its commit) is missed: stamp at commit time, or use a
      ``sync_overlap`` (re-read values down to ``watermark - sync_overlap``).
"""
from __future__ import annotations

import math
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Hashable, Optional, Sequence

import numpy as np

from ruvector_graph_attn.errors import GraphSourceError, InvalidInputError
from ruvector_graph_attn.validation import next_version

from ..base import Subgraph, check_direction
from ..networkx import NetworkXGraph, _Snapshot, snapshot_from_arrays
from .cypher import quote

__all__ = ["Neo4jProjection"]


def _positive(value: Any, what: str, integer: bool = False, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer) if integer else (int, float, np.number))
    if not ok or not math.isfinite(float(value)) or value <= 0:
        raise InvalidInputError(f"{what} must be a positive {'integer' if integer else 'number'}, got {value!r}")
    return int(value) if integer else float(value)


class _Store:
    """The projection's own copy of what it read, from which snapshots are (re)built."""

    __slots__ = ("ids", "pos", "x", "src", "dst", "attr", "pair_index")

    def __init__(self, ids: list, x: np.ndarray, src: np.ndarray, dst: np.ndarray, attr: Optional[np.ndarray]):
        self.ids = ids
        self.pos = {i: k for k, i in enumerate(ids)}
        self.x = x
        self.src, self.dst, self.attr = src, dst, attr
        self.pair_index: Optional[dict] = None

    def pairs(self) -> dict:
        if self.pair_index is None:
            n = np.int64(max(len(self.ids), 1))
            self.pair_index = {int(k): e for e, k in enumerate((self.src * n + self.dst).tolist())}
        return self.pair_index


class Neo4jProjection(NetworkXGraph):
    """``Neo4jProjection(graph, pages=None, workers=4, max_staleness=None, change_property=None,
    sync_overlap=0, page_size=50_000, sync_interval=None)``: the graph of a :class:`Neo4jGraph`, projected in process
    (see the module docstring). Also ``graph.project(...)``.

    Args:
        graph: the :class:`Neo4jGraph` to read (its label, id and feature properties,
            relationship types, direction, ``undirected`` and ``edge_properties`` apply).
        pages: partitions to read (default: enough for ``page_size`` nodes each, at least ``workers``).
        workers: partitions read at once (threads; the driver's connection pool serves them).
        max_staleness: seconds; the most a call's view may lag the last sync. A background
            thread syncs every ``sync_interval`` seconds; a call finding the projection older
            (the thread fell behind) runs :meth:`sync` first.
        change_property: node and relationship property holding a change stamp (a number) for
            incremental :meth:`sync`; ``None``: ``sync`` is a full :meth:`refresh`.
        sync_overlap: how far below the watermark ``sync`` re-reads (same unit as the stamps).
        page_size: nodes per page when ``pages`` is not given.
        sync_interval: seconds between background syncs (default ``max_staleness / 2``;
            without ``max_staleness``: ``None``, no background thread). The thread holds only
            a weak reference: it ends with :meth:`close` or when the projection is collected.
    """

    def __init__(self, graph: Any, pages: Optional[int] = None, workers: int = 4,
                 max_staleness: Optional[float] = None, change_property: Optional[str] = None,
                 sync_overlap: float = 0, page_size: int = 50_000, load: bool = True,
                 sync_interval: Optional[float] = None) -> None:
        from .graph import Neo4jGraph

        if not isinstance(graph, Neo4jGraph):
            raise InvalidInputError(f"graph must be a Neo4jGraph, got {type(graph).__name__}")
        self.source = graph
        self.pages = _positive(pages, "pages", integer=True, allow_none=True)
        self.workers = _positive(workers, "workers", integer=True)
        self.page_size = _positive(page_size, "page_size", integer=True)
        self.max_staleness = _positive(max_staleness, "max_staleness", allow_none=True)
        self.sync_interval = _positive(sync_interval, "sync_interval", allow_none=True)
        if self.sync_interval is None and self.max_staleness is not None:
            self.sync_interval = self.max_staleness / 2
        if self.sync_interval is not None and self.max_staleness is not None and \
                self.sync_interval >= self.max_staleness:
            raise InvalidInputError(f"sync_interval ({self.sync_interval}) must be below max_staleness "
                                    f"({self.max_staleness})")
        self.change_property = change_property
        self._chg = None if change_property is None else quote(change_property, "change property")
        if isinstance(sync_overlap, bool) or not isinstance(sync_overlap, (int, float)) or \
                not math.isfinite(sync_overlap) or sync_overlap < 0:
            raise InvalidInputError(f"sync_overlap must be a number >= 0, got {sync_overlap!r}")
        self.sync_overlap = sync_overlap
        # NetworkXGraph state (no NetworkX graph behind it)
        self.G = None
        self.feature_key = graph.embedding_property
        self.edge_feature_keys = tuple(graph.edge_properties)
        self.dtype = graph.dtype
        self._snap: Optional[_Snapshot] = None
        self._lock = threading.RLock()
        self._store: Optional[_Store] = None
        self._watermark: Optional[float] = None
        self._synced_at = -math.inf
        self._version = next_version()
        self._syncer: Optional[threading.Thread] = None
        self._stop = threading.Event()
        #: the exception of the last failed background sync (``None`` after a good one)
        self.last_sync_error: Optional[BaseException] = None
        #: syncs and refreshes done so far (by calls and by the background thread)
        self.sync_count = 0
        self.stats: dict = {}
        if load:
            self.refresh()

    # ------------------------------------------------------------------ reading
    def _pages_for(self, count: int) -> int:
        if self.pages is not None:
            return self.pages
        return max(self.workers, -(-count // self.page_size))

    def _parallel(self, fn, parts: int) -> list:
        if parts == 1 or self.workers == 1:
            return [fn(k) for k in range(parts)]
        with ThreadPoolExecutor(max_workers=min(self.workers, parts)) as pool:
            return list(pool.map(fn, range(parts)))

    def _node_query(self, where: str) -> str:
        g = self.source
        stamp = f", collect(n.{self._chg}) AS c" if self._chg else ""
        return (f"MATCH (n:{g._label}) WHERE {where} "
                f"RETURN collect(n.{g._idp}) AS i, collect({g._feat('n')}) AS f{stamp}")

    def _rel_query(self, where: str) -> str:
        g = self.source
        props = "".join(f", r.{quote(p, 'edge property')}" for p in g.edge_properties)
        stamp = f", collect(r.{self._chg}) AS c" if self._chg else ""
        return (f"MATCH (n:{g._label})-[r{g._rel}]->(m:{g._label}) WHERE {where} "
                f"RETURN collect([n.{g._idp}, m.{g._idp}, true{props}]) AS r{stamp}")

    def _read(self, text: str, params: dict, what: str) -> Any:
        """The single record of a read query (as ``Neo4jGraph.read``), with the server's
        deprecation notices off: the page partition uses ``id()``, which Neo4j 5 flags as
        deprecated without replacement (it is used only to split the nodes into pages)."""
        import neo4j

        g = self.source

        def work(tx):
            return list(tx.run(text, params))

        def go():
            with g.driver.session(database=g.database, default_access_mode=neo4j.READ_ACCESS,
                                  notifications_disabled_classifications=["DEPRECATION"]) as s:
                return s.execute_read(g._uow(work))

        return g._call(go, what)[0]

    def _features(self, ids: list, feats: list) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.source._dim or 0), dtype=self.dtype)
        return self.source._to_x(ids, feats, "projection")

    def _read_all(self) -> tuple[_Store, Optional[float]]:
        g = self.source
        count = g.count()
        parts = self._pages_for(count)
        nq = self._node_query("id(n) % $p = $k")
        rq = self._rel_query("id(n) % $p = $k")

        def nodes(k):
            return self._read(nq, {"p": parts, "k": k}, f"projection nodes page {k + 1}/{parts}")

        def rels(k):
            return self._read(rq, {"p": parts, "k": k}, f"projection relationships page {k + 1}/{parts}")

        t0 = time.perf_counter()
        node_pages = self._parallel(nodes, parts)
        t1 = time.perf_counter()
        rel_pages = self._parallel(rels, parts)
        t2 = time.perf_counter()
        ids = [i for p in node_pages for i in p["i"]]
        if not ids:
            raise GraphSourceError(f"no :{g.label} node in Neo4j database {g.database!r} to project")
        if len(set(ids)) != len(ids):
            raise GraphSourceError(f"property {g.id_property!r} is not unique among :{g.label} nodes "
                                   "(ensure_constraint() makes it so)")
        x = self._features(ids, [f for p in node_pages for f in p["f"]])
        order = _id_order(ids)
        if order is not None:   # rows in id order, independent of the page partition
            ids = [ids[k] for k in order.tolist()]
            x = np.ascontiguousarray(x[order])
        stamps = [c for p in node_pages for c in p.get("c", []) or [] if c is not None]
        stamps += [c for p in rel_pages for c in p.get("c", []) or [] if c is not None]
        rows = [r for p in rel_pages for r in p["r"]]
        store = _Store(ids, x, *self._rel_arrays(ids, {i: k for k, i in enumerate(ids)}, rows))
        self.stats = {"nodes": len(ids), "relationships": len(rows), "pages": parts,
                      "read_nodes_s": t1 - t0, "read_relationships_s": t2 - t1,
                      "decode_s": time.perf_counter() - t2}
        return store, (max(stamps) if stamps else None)

    def _rel_arrays(self, ids: list, pos: dict, rows: list):
        """Distinct directed (start, end) position pairs of the relationship rows, with their
        edge properties (one relationship's values per pair)."""
        m = len(rows)
        if ids and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
            arr = np.asarray(ids, dtype=np.int64)
            order = np.argsort(arr, kind="stable")
            srt = arr[order]

            def lookup(vals):
                v = np.asarray(vals, dtype=np.int64)
                j = np.minimum(np.searchsorted(srt, v), max(srt.size - 1, 0))
                return order[j]
            src = lookup([r[0] for r in rows]) if m else np.empty(0, np.int64)
            dst = lookup([r[1] for r in rows]) if m else np.empty(0, np.int64)
        else:
            src = np.fromiter((pos[r[0]] for r in rows), dtype=np.int64, count=m)
            dst = np.fromiter((pos[r[1]] for r in rows), dtype=np.int64, count=m)
        attr = self.source._attr_matrix(rows) if self.source.edge_properties and m else None
        if self.source.edge_properties and attr is None:
            attr = np.zeros((0, len(self.source.edge_properties)), dtype=self.dtype)
        if m:
            n = np.int64(len(ids))
            key = src * n + dst
            _, first = np.unique(key, return_index=True)   # parallel relationships: one pair
            if first.size != m:
                first = np.sort(first)
                src, dst = src[first], dst[first]
                attr = None if attr is None else attr[first]
        return np.ascontiguousarray(src), np.ascontiguousarray(dst), attr

    def _install(self, store: _Store) -> None:
        self._store = store
        # a new snapshot object: calls running on the previous one finish on it
        self._snap = snapshot_from_arrays(list(store.ids), store.x, store.src, store.dst,
                                          not self.source.undirected, store.attr, dict(store.pos))
        self._version = next_version()

    # ------------------------------------------------------------------ freshness
    def refresh(self) -> "Neo4jProjection":
        """Re-read the whole graph from the server and replace the snapshot."""
        with self._lock:
            store, wm = self._read_all()
            self._install(store)
            self._watermark = wm
            self._synced_at = time.monotonic()
            self.sync_count += 1
        self._start_syncer()
        return self

    def sync(self, detect_deletions: bool = True) -> str:
        """Bring the projection up to date (see the module docstring). Returns what was done:
        ``"refresh"`` (full re-read), ``"incremental"`` (changed rows applied) or ``"current"``
        (nothing changed)."""
        with self._lock:
            if self._chg is None or self._store is None:
                self.refresh()
                return "refresh"
            try:
                done = self._sync_changes()
            except _NeedRefresh:
                self.refresh()
                return "refresh"
            if detect_deletions and self._counts_differ():
                self.refresh()
                return "refresh"
            self._synced_at = time.monotonic()
            self.sync_count += 1
            return done

    def _sync_changes(self) -> str:
        g, st = self.source, self._store
        since = -math.inf if self._watermark is None else self._watermark - self.sync_overlap
        params = {"since": since if math.isfinite(since) else -1.7976931348623157e308}
        nrec = g.read(self._node_query(f"n.{self._chg} >= $since"), params, what="projection sync (nodes)")[0]
        rrec = g.read(self._rel_query(f"r.{self._chg} >= $since"), params, what="projection sync (relationships)")[0]
        stamps = [c for c in list(nrec["c"]) + list(rrec["c"]) if c is not None]
        changed = False
        ids, feats = list(nrec["i"]), list(nrec["f"])
        if ids:
            x_new = self._features(ids, feats)
            if x_new.shape[1] != st.x.shape[1]:
                raise GraphSourceError(f"changed nodes have {x_new.shape[1]} features; the projection has {st.x.shape[1]}")
            known = np.array([st.pos.get(i, -1) for i in ids], dtype=np.int64)
            old = known >= 0
            x = st.x
            if old.any() and not np.array_equal(x[known[old]], x_new[old]):
                x = x.copy()
                x[known[old]] = x_new[old]
                changed = True
            fresh = [i for i, k in zip(ids, known) if k < 0]
            if fresh:
                x = np.concatenate([x, x_new[~old]])
                for i in fresh:
                    st.pos[i] = len(st.ids)
                    st.ids.append(i)
                st.pair_index = None
                changed = True
            st.x = np.ascontiguousarray(x)
        rows = list(rrec["r"])
        if rows:
            unknown = [r[0] for r in rows if r[0] not in st.pos] + [r[1] for r in rows if r[1] not in st.pos]
            if unknown:  # a relationship to a node changed without a stamp: fall back
                raise _NeedRefresh()
            src, dst, attr = self._rel_arrays(st.ids, st.pos, rows)
            pairs = st.pairs()
            n = np.int64(len(st.ids))
            new_src, new_dst, new_attr = [], [], []
            for k, key in enumerate((src * n + dst).tolist()):
                e = pairs.get(int(key))
                if e is None:
                    pairs[int(key)] = len(st.src) + len(new_src)
                    new_src.append(src[k])
                    new_dst.append(dst[k])
                    if attr is not None:
                        new_attr.append(attr[k])
                elif attr is not None:
                    if st.attr is not None and not np.array_equal(st.attr[e], attr[k]):
                        st.attr = st.attr.copy()
                        st.attr[e] = attr[k]
                        changed = True
            if new_src:
                st.src = np.concatenate([st.src, np.asarray(new_src, dtype=np.int64)])
                st.dst = np.concatenate([st.dst, np.asarray(new_dst, dtype=np.int64)])
                if st.attr is not None:
                    st.attr = np.concatenate([st.attr, np.asarray(new_attr, dtype=self.dtype).reshape(len(new_src), -1)])
                changed = True
        if stamps:
            top = max(stamps)
            self._watermark = top if self._watermark is None else max(self._watermark, top)
        if changed:
            self._install(st)
            return "incremental"
        return "current"

    def _counts_differ(self) -> bool:
        g, st = self.source, self._store
        rec = g.read(f"MATCH (n:{g._label}) RETURN count(n) AS c", what="projection sync (node count)")[0]
        if int(rec["c"]) != len(st.ids):
            return True
        rec = g.read(f"MATCH (n:{g._label})-[r{g._rel}]->(m:{g._label}) "
                     f"RETURN count(DISTINCT [elementId(n), elementId(m)]) AS c",
                     what="projection sync (relationship count)")[0]
        return int(rec["c"]) != int(st.src.shape[0])

    def _snapshot(self) -> _Snapshot:
        # the hot path: a clock comparison, no lock, no server I/O (the background thread syncs)
        if self.max_staleness is not None and time.monotonic() - self._synced_at > self.max_staleness:
            with self._lock:        # the background sync fell behind (or failed): catch up here
                if time.monotonic() - self._synced_at > self.max_staleness:
                    self.sync()
        snap = self._snap
        if snap is None:
            self.refresh()
            snap = self._snap
        return snap

    @property
    def version(self) -> int:
        """Changes with every new snapshot (refresh, or a sync that changed something; unique
        across graphs): the re-ranking result cache keys on it. No server I/O."""
        self._snapshot()
        return self._version

    def _start_syncer(self) -> None:
        if self.sync_interval is None or self._stop.is_set():
            return
        with self._lock:
            if self._syncer is not None and self._syncer.is_alive():
                return
            t = threading.Thread(target=_background_sync, args=(weakref.ref(self), self._stop, self.sync_interval),
                                 name="rga-neo4j-projection-sync", daemon=True)
            self._syncer = t
            t.start()

    @property
    def age(self) -> float:
        """Seconds since the last refresh or sync."""
        return time.monotonic() - self._synced_at

    # ------------------------------------------------------------------ GraphSource
    def expand(self, ids: Sequence[Hashable], hops: int = 1, direction: Optional[str] = None,
               max_neighbors: Optional[int] = None, seed: int = 0) -> Subgraph:
        """As :meth:`Neo4jGraph.expand` (same defaults, same subgraph by id), served from the projection."""
        direction = self.source.direction if direction is None else check_direction(direction)
        if self.source.undirected:
            direction = "both"
        return super().expand(ids, hops=hops, direction=direction, max_neighbors=max_neighbors, seed=seed)

    def expand_server(self, ids: Sequence[Hashable], hops: int = 1, direction: Optional[str] = None,
                      max_neighbors: Optional[int] = None, seed: int = 0) -> Subgraph:
        """Server-side expansion through the underlying :class:`Neo4jGraph` (one Bolt round trip)."""
        return self.source.expand(ids, hops=hops, direction=direction, max_neighbors=max_neighbors, seed=seed)

    def count(self) -> int:
        return self.num_nodes

    def close(self) -> None:
        """Stop the background sync thread and close the underlying graph's driver."""
        self._stop.set()
        t = self._syncer
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5.0)     # a sync in flight ends with the driver closed below
        self.source.close()

    def __repr__(self) -> str:
        state = "empty" if self._snap is None else \
            f"{self._snap.num_nodes} nodes, {self._snap.num_edges} relationships, dim={self._snap.dim}"
        return f"Neo4jProjection({self.source!r}, {state})"


def _id_order(ids: list) -> Optional[np.ndarray]:
    """Positions that sort ``ids`` (all ints or all strings), ``None`` for mixed ids."""
    if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        try:
            return np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
        except OverflowError:
            pass
    if all(isinstance(i, str) for i in ids):
        return np.asarray(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)
    return None


def _background_sync(ref: "weakref.ref", stop: threading.Event, interval: float) -> None:
    """Body of the background sync thread: sync whenever the projection is ``interval`` old.
    Holds the projection only while syncing (ends when it is collected or closed)."""
    while True:
        proj = ref()
        if proj is None:
            return
        wait = max(0.0, interval - (time.monotonic() - proj._synced_at))
        del proj
        if stop.wait(wait):
            return
        proj = ref()
        if proj is None:
            return
        if time.monotonic() - proj._synced_at >= interval:
            try:
                proj.sync()
                proj.last_sync_error = None
            except Exception as exc:  # noqa: BLE001 - kept for the caller; calls past max_staleness sync themselves
                proj.last_sync_error = exc
                stop.wait(min(interval, 1.0))   # do not spin on a failing server
        del proj


class _NeedRefresh(Exception):
    """Raised inside an incremental sync that cannot be applied (a full refresh follows)."""
