"""NetworkX graphs as a :class:`~ruvector_graph_attn.connectors.GraphSource` (the embedded default).

Walking NetworkX's nested dicts per query is far too slow for millisecond re-ranking, so
:class:`NetworkXGraph` takes a **snapshot** of the graph -- the node list, one feature
matrix, CSR adjacency arrays for the ``out``, ``in`` and ``both`` directions and an
optional edge-feature matrix -- lazily, on the first call that needs it, and expands
neighbourhoods on those arrays with a Numba frontier kernel.

Picking up later edits
    The snapshot is rebuilt automatically when the graph's **node count** changed since
    it was taken (an O(1) check done on every call). Edits that keep the node count --
    adding or removing edges, changing a node's features or an edge attribute -- are
    *not* detected automatically (counting edges in NetworkX is O(N)); call
    :meth:`NetworkXGraph.refresh` after such edits. ``refresh()`` always rebuilds the whole
    snapshot (about 5 s for 100K nodes / 500K edges), so call it once after a batch of edits.

Expansion semantics (the Neo4j connector implements the same)
    ``expand(ids, hops, direction, max_neighbors, seed)`` is a breadth-first search from
    the requested ids (the *seeds*, hop 0). A node reached at hop ``h < hops`` is
    *expanded*: its neighbours in ``direction`` -- ``"out"``: successors (edges
    ``u -> v``), ``"in"``: predecessors (edges ``v -> u``), ``"both"``: the union -- are
    added at hop ``h + 1`` unless already reached. For undirected graphs the three
    directions coincide. When ``max_neighbors`` is set and an expanded node has more
    neighbours than that, exactly ``max_neighbors`` of its distinct neighbours are kept:
    those with the smallest ``kernels.hashing.pair_hash(seed, key(u), key(v))`` (a splitmix64
    chain; ``key`` is the node id itself for integer ids, else the first 8 bytes of the
    BLAKE2b digest of ``str(id)``, the rule the Neo4j connector uses too). The sample of a node therefore depends only on the graph, the
    node and ``seed`` -- never on which other ids were requested or in what order -- so a
    union expansion of many seeds contains exactly every seed's own expansion.

    ``Subgraph.edge_index`` holds the **traversed edges**, not the induced subgraph:
    for every expanded node ``u`` and every kept neighbour ``v``, every graph edge
    between ``u`` and ``v`` in the expansion direction, written in the graph's own
    orientation (``"out"``: ``(u, v)``; ``"in"``: ``(v, u)``; ``"both"``: whichever of
    ``(u, v)``, ``(v, u)`` exist). Undirected edges appear in both orientations, as in
    PyTorch Geometric. Each (source, target) pair appears once. Edges among nodes of the
    last hop (which are not expanded) are not included. Self-loops of expanded nodes are
    included. ``Subgraph.edge_origin`` records, per edge, the position of the expanded node
    that traversed it (-1 when both endpoints did), so the neighbourhood of any one seed
    is recoverable exactly: follow edges from their origin to the other endpoint (both
    ways for -1). Rows of ``node_ids``/``x``/``hop`` are in discovery order: the seeds first
    (distinct, in request order), then hop 1, hop 2, ...; ``Subgraph.seeds`` are the seed
    positions and ``Subgraph.missing`` the requested ids not in the graph.

Multigraphs are collapsed to simple graphs (parallel edges become one edge carrying the
attributes of the first one NetworkX yields).
"""
from __future__ import annotations

import threading
from typing import Any, Hashable, Iterable, Optional, Sequence

import numpy as np

from ruvector_graph_attn.errors import (
    DimensionMismatchError, GraphSourceError, InvalidInputError, UnknownIdError,
)
from ruvector_graph_attn.kernels.bfs import csr_expand
from ruvector_graph_attn.kernels.csr import group_runs, indptr_from_counts
from ruvector_graph_attn.kernels.hashing import id_key
from ruvector_graph_attn.validation import DEFAULT_MAX_KEYS, check_int, check_size, next_version
from ruvector_graph_attn.validation import is_integer as _is_int_id

from .base import Subgraph, check_direction, check_hops

__all__ = ["NetworkXGraph", "expand_csr", "check_expand_args", "direction_csrs", "snapshot_from_arrays",
           "snapshot_positions"]


def _merge_pairs(u: np.ndarray, v: np.ndarray, ef: np.ndarray, eb: np.ndarray, n: int):
    """CSR of distinct (u, v) neighbour pairs; e_fwd/e_bwd of merged duplicates are combined."""
    if u.size == 0:
        return (np.zeros(n + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.int64),
                np.empty(0, np.int64))
    order, starts = group_runs(u * np.int64(n) + v)
    uu = u[order][starts]
    vv = v[order][starts]
    e_fwd = np.maximum.reduceat(ef[order], starts)
    e_bwd = np.maximum.reduceat(eb[order], starts)
    indptr = indptr_from_counts(np.bincount(uu, minlength=n))
    return indptr, np.ascontiguousarray(vv), np.ascontiguousarray(e_fwd), np.ascontiguousarray(e_bwd)


def direction_csrs(src: np.ndarray, dst: np.ndarray, n: int, directed: bool) -> dict:
    """The expansion adjacency of each direction for edges ``src[e] -> dst[e]`` (edge id
    ``e``): ``{"out", "in", "both"} -> (indptr, nbr, e_fwd, e_bwd)`` (one shared ``"both"``
    for undirected graphs), as :func:`expand_csr` reads them."""
    m = src.shape[0]
    eids = np.arange(m, dtype=np.int64)
    neg = np.full(m, -1, np.int64)
    csr = {}
    if directed:
        csr["out"] = _merge_pairs(src, dst, eids, neg, n)
        csr["in"] = _merge_pairs(dst, src, neg, eids, n)
        csr["both"] = _merge_pairs(np.concatenate([src, dst]), np.concatenate([dst, src]),
                                   np.concatenate([eids, neg]), np.concatenate([neg, eids]), n)
    else:
        loops = src == dst
        u = np.concatenate([src, dst[~loops]])
        v = np.concatenate([dst, src[~loops]])
        e = np.concatenate([eids, eids[~loops]])
        csr["out"] = csr["in"] = csr["both"] = _merge_pairs(u, v, e, e, n)
    return csr


def check_expand_args(max_neighbors: Any, seed: Any) -> None:
    """The argument checks of ``expand`` shared by the array-backed sources."""
    if max_neighbors is not None:
        check_int(max_neighbors, "max_neighbors (or None)", lo=0)
    check_int(seed, "seed", lo=0)


def expand_csr(csr: tuple, keys: np.ndarray, seeds: np.ndarray, hops: int, max_neighbors: Optional[int],
               seed: int, scratch: np.ndarray, scratch_lock: Any, num_nodes: int):
    """Expansion over snapshot arrays (the semantics of the module docstring), shared by every
    array-backed source: ``csr`` is ``(indptr, nbr, e_fwd, e_bwd)`` of one direction, ``keys``
    the per-node sampling keys, ``scratch`` a reusable ``[num_nodes]`` array of -1 guarded by
    ``scratch_lock``. Returns ``(nodes, hop, src, dst, eid, org)`` with duplicate traversals of
    one edge merged (their origin becomes -1 when both endpoints traversed it)."""
    indptr, nbr, e_fwd, e_bwd = csr
    cap = -1 if max_neighbors is None else int(max_neighbors)
    seeds = seeds.astype(np.int64)
    if scratch_lock.acquire(blocking=False):
        try:
            nodes, hop, src, dst, eid, org = csr_expand(indptr, nbr, e_fwd, e_bwd, seeds, hops, cap, seed,
                                                        scratch, keys)
        finally:
            scratch_lock.release()
    else:  # another thread is expanding: use a private scratch array
        nodes, hop, src, dst, eid, org = csr_expand(indptr, nbr, e_fwd, e_bwd, seeds, hops, cap, seed,
                                                    np.full(num_nodes, -1, np.int64), keys)
    if src.size and hops > 0:
        # duplicates only arise between two expanded nodes that sampled each other:
        # keep one copy; its origin becomes -1 when the copies came from both endpoints
        both_exp = (hop[src] < hops) & (hop[dst] < hops)
        if both_exp.any():
            idx = np.flatnonzero(both_exp)
            order, starts = group_runs(src[idx] * np.int64(nodes.size) + dst[idx])
            if starts.size != idx.size:
                o = org[idx][order]
                lo_o = np.minimum.reduceat(o, starts)
                hi_o = np.maximum.reduceat(o, starts)
                keep_idx = idx[order][starts]
                org[keep_idx] = np.where(lo_o == hi_o, lo_o, -1)
                keep = np.ones(src.size, dtype=bool)
                keep[idx] = False
                keep[keep_idx] = True
                src, dst, eid, org = src[keep], dst[keep], eid[keep], org[keep]
    return nodes, hop, src, dst, eid, org


class _Snapshot:
    """Arrays taken from a NetworkX graph at one moment (see module docstring)."""

    __slots__ = ("nodes", "node_arr", "pos", "int_sorted", "int_order", "x", "edge_attr",
                 "csr", "num_nodes", "num_edges", "dim", "directed", "scratch", "scratch_lock", "keys",
                 "node_int")


def snapshot_from_arrays(nodes: list, x: np.ndarray, src: np.ndarray, dst: np.ndarray, directed: bool,
                         edge_attr: Optional[np.ndarray] = None, pos: Optional[dict] = None) -> _Snapshot:
    """A snapshot from plain arrays: ``nodes`` (ids, one per row of ``x``), the edges
    ``src[k] -> dst[k]`` as row positions (``edge_attr[k]`` their features, or ``None``), and
    whether they are directed. Other sources (a Neo4j projection) build the same in-process
    structure this way and expand on it with :class:`NetworkXGraph`'s code."""
    n = len(nodes)
    m = int(src.shape[0])
    if pos is None:
        pos = {node: i for i, node in enumerate(nodes)}
    dim = int(x.shape[1])
    csr = direction_csrs(src, dst, n, directed)

    snap = _Snapshot()
    snap.nodes = nodes
    snap.node_arr = np.empty(n, dtype=object)
    snap.node_arr[:] = nodes
    snap.pos = pos
    if all(_is_int_id(node) for node in nodes):
        ints = np.fromiter((int(node) for node in nodes), dtype=np.int64, count=n)
        order = np.argsort(ints, kind="stable")
        snap.int_sorted = ints[order]
        snap.int_order = order.astype(np.int64)
        snap.keys = ints
        # every id a plain Python int: ids of expanded nodes come from this array (the same
        # values and type as the object array, without touching Python objects per node)
        snap.node_int = ints if all(type(node) is int for node in nodes) else None
    else:
        snap.node_int = None
        snap.int_sorted = None
        snap.int_order = None
        snap.keys = np.fromiter((id_key(node) for node in nodes), dtype=np.int64, count=n)
    snap.x = x
    snap.edge_attr = edge_attr
    snap.csr = csr
    snap.num_nodes = n
    snap.num_edges = m
    snap.dim = int(dim)
    snap.directed = directed
    snap.scratch = np.full(n, -1, np.int64)   # reused by expansions (restored to -1 by the kernel)
    snap.scratch_lock = threading.Lock()
    return snap


def snapshot_positions(snap: _Snapshot, ids: Any) -> np.ndarray:
    """Dense positions of ``ids`` (a list or 1-D array) in ``snap`` (int64), -1 for ids not in it."""
    n_ids = len(ids)
    if n_ids == 0:
        return np.empty(0, np.int64)
    if snap.int_sorted is not None:
        arr = ids if isinstance(ids, np.ndarray) else None
        if arr is None:
            try:
                if all(_is_int_id(i) for i in ids):
                    arr = np.asarray(ids, dtype=np.int64)
            except OverflowError:
                arr = None
        if arr is not None and arr.dtype.kind in "iu":
            arr = arr.astype(np.int64, copy=False)
            j = np.searchsorted(snap.int_sorted, arr)
            j = np.minimum(j, snap.int_sorted.size - 1)
            hit = snap.int_sorted[j] == arr
            return np.where(hit, snap.int_order[j], -1).astype(np.int64)
    get = snap.pos.get
    out = np.empty(n_ids, np.int64)
    for t, i in enumerate(ids.tolist() if isinstance(ids, np.ndarray) else ids):
        try:
            out[t] = get(i, -1)
        except TypeError:  # unhashable id
            out[t] = -1
    return out


class NetworkXGraph:
    """A NetworkX graph with per-node feature vectors, read through array snapshots.

    Args:
        G: a ``networkx`` Graph, DiGraph, MultiGraph or MultiDiGraph. Node ids may be any
            hashable values.
        feature_key: node attribute holding each node's feature vector (all the same length).
        edge_feature_keys: edge attributes concatenated (in this order) into
            ``Subgraph.edge_attr``; each may be a number or a vector; every edge must have them.
        dtype: float dtype of the snapshot features (float32 default, float64 kept).

    Every node must carry ``feature_key`` with a finite vector of the common length; the
    first node that does not is named in the :class:`InvalidInputError` raised when the
    snapshot is taken.
    """

    def __init__(self, G: Any, feature_key: str = "embedding", edge_feature_keys: Sequence[str] = (),
                 dtype: Any = np.float32):
        try:
            import networkx as nx
        except ImportError as exc:  # pragma: no cover - networkx is a dependency
            raise GraphSourceError("networkx is not installed") from exc
        if not isinstance(G, nx.Graph):
            raise InvalidInputError(f"G must be a networkx graph, got {type(G).__name__}")
        if not isinstance(feature_key, str) or not feature_key:
            raise InvalidInputError(f"feature_key must be a non-empty string, got {feature_key!r}")
        if isinstance(edge_feature_keys, str):
            edge_feature_keys = (edge_feature_keys,)
        edge_feature_keys = tuple(edge_feature_keys)
        for k in edge_feature_keys:
            if not isinstance(k, str) or not k:
                raise InvalidInputError(f"edge_feature_keys must be non-empty strings, got {k!r}")
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise InvalidInputError(f"dtype must be float32 or float64, got {dt}")
        self.G = G
        self.feature_key = feature_key
        self.edge_feature_keys = edge_feature_keys
        self.dtype = dt
        self._snap: Optional[_Snapshot] = None
        self._lock = threading.Lock()
        self._version = next_version()

    # ------------------------------------------------------------------ snapshot
    def refresh(self) -> "NetworkXGraph":
        """Rebuild the snapshot now (call after edge or feature edits; see module docstring)."""
        with self._lock:
            self._snap = self._build()
            self._version = next_version()
        return self

    @property
    def version(self) -> int:
        """Changes with every new snapshot (:meth:`refresh`, or a node-count change noticed
        here; unique across graphs): results computed under one version are stale under
        another (the re-ranking cache uses it)."""
        snap = self._snap
        if snap is None or snap.num_nodes != self.G.number_of_nodes():
            try:
                self._snapshot()
            except Exception:  # noqa: BLE001 - an unusable graph is reported by the call that reads it
                pass
        return self._version

    def _snapshot(self) -> _Snapshot:
        snap = self._snap
        if snap is None or snap.num_nodes != self.G.number_of_nodes():
            with self._lock:
                snap = self._snap
                if snap is None or snap.num_nodes != self.G.number_of_nodes():
                    snap = self._snap = self._build()
                    self._version = next_version()
        return snap

    def _build(self) -> _Snapshot:
        G = self.G
        nodes = list(G.nodes())
        n = len(nodes)
        if n == 0:
            raise GraphSourceError("the graph has no nodes; expected at least one node with features")
        pos = {node: i for i, node in enumerate(nodes)}
        # features: one pass, the first bad node is named
        key = self.feature_key
        rows = []
        dim = None
        for node, data in G.nodes(data=True):
            if key not in data or data[key] is None:
                raise InvalidInputError(f"node {node!r} has no feature {key!r}; every node needs a vector")
            try:
                vec = np.asarray(data[key], dtype=self.dtype)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"node {node!r}: feature {key!r} is not a numeric vector ({exc})") from exc
            if vec.ndim != 1:
                raise InvalidInputError(
                    f"node {node!r}: feature {key!r} must be a 1-D vector, got shape {vec.shape}")
            if dim is None:
                dim = vec.shape[0]
                if dim == 0:
                    raise InvalidInputError(f"node {node!r}: feature {key!r} is empty")
            elif vec.shape[0] != dim:
                raise DimensionMismatchError(dim, vec.shape[0], f"feature {key!r} length of node {node!r}")
            if not np.isfinite(vec).all():
                raise InvalidInputError(f"node {node!r}: feature {key!r} contains NaN or Inf")
            rows.append(vec)
        x = np.ascontiguousarray(np.stack(rows), dtype=self.dtype)

        # edges (multigraph parallel edges collapsed to the first)
        directed = G.is_directed()
        if G.is_multigraph():
            seen: dict = {}
            for u, v, data in G.edges(data=True):
                k = (u, v) if directed else frozenset((u, v))
                if k not in seen:
                    seen[k] = (u, v, data)
            edge_list = list(seen.values())
        else:
            edge_list = list(G.edges(data=True))
        m = len(edge_list)
        src = np.fromiter((pos[e[0]] for e in edge_list), dtype=np.int64, count=m)
        dst = np.fromiter((pos[e[1]] for e in edge_list), dtype=np.int64, count=m)
        edge_attr = None
        if self.edge_feature_keys:
            edge_attr = self._edge_features(edge_list)

        return snapshot_from_arrays(nodes, x, src, dst, directed, edge_attr, pos)

    def _edge_features(self, edge_list: list) -> np.ndarray:
        cols = []
        widths = {}
        for u, v, data in edge_list:
            parts = []
            for k in self.edge_feature_keys:
                if k not in data or data[k] is None:
                    raise InvalidInputError(f"edge ({u!r}, {v!r}) has no attribute {k!r} (edge_feature_keys)")
                val = np.atleast_1d(np.asarray(data[k], dtype=self.dtype))
                if val.ndim != 1:
                    raise InvalidInputError(f"edge ({u!r}, {v!r}): attribute {k!r} must be a number or 1-D vector")
                w = widths.setdefault(k, val.shape[0])
                if w != val.shape[0]:
                    raise DimensionMismatchError(w, val.shape[0], f"edge attribute {k!r} length of edge ({u!r}, {v!r})")
                parts.append(val)
            cols.append(np.concatenate(parts))
        if not cols:
            width = 0
            return np.zeros((0, width), dtype=self.dtype)
        out = np.ascontiguousarray(np.stack(cols), dtype=self.dtype)
        if not np.isfinite(out).all():
            bad = int(np.argwhere(~np.isfinite(out))[0, 0])
            u, v, _ = edge_list[bad]
            raise InvalidInputError(f"edge ({u!r}, {v!r}) has a NaN or Inf attribute")
        return out

    # ------------------------------------------------------------------ lookups
    @property
    def dim(self) -> int:
        """Length of the node feature vectors."""
        return self._snapshot().dim

    @property
    def num_nodes(self) -> int:
        return self._snapshot().num_nodes

    @property
    def num_edges(self) -> int:
        """Edges in the snapshot (multigraph parallel edges counted once)."""
        return self._snapshot().num_edges

    def __len__(self) -> int:
        return self.num_nodes

    def _ids_list(self, ids: Any, what: str) -> Any:
        if ids is None:
            raise InvalidInputError(f"{what} is None; expected a sequence of node ids")
        if isinstance(ids, np.ndarray):
            if ids.ndim != 1:
                raise InvalidInputError(f"{what} must be 1-D, got shape {ids.shape}")
            return ids
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise InvalidInputError(f"{what} must be a sequence of node ids, got {type(ids).__name__}")
        return list(ids)

    def positions(self, ids: Any) -> np.ndarray:
        """Dense snapshot positions of ``ids`` (int64), -1 for ids not in the graph."""
        return snapshot_positions(self._snapshot(), self._ids_list(ids, "ids"))

    def contains(self, ids: Iterable[Hashable]) -> np.ndarray:
        """Boolean mask: which ids are nodes of the graph."""
        return self.positions(ids) >= 0

    def features(self, ids: Sequence[Hashable]) -> np.ndarray:
        """``[len(ids), dim]`` features; ids not in the graph raise :class:`UnknownIdError`."""
        snap = self._snapshot()
        ids = self._ids_list(ids, "ids")
        if len(ids) == 0:
            raise InvalidInputError("ids is empty; expected at least one node id")
        p = self.positions(ids)
        if (p < 0).any():
            bad = [ids[i] for i in np.flatnonzero(p < 0)]
            raise UnknownIdError(bad, "NetworkX graph")
        return snap.x[p]

    def node_ids(self, positions: np.ndarray) -> list:
        """Node ids at snapshot ``positions``."""
        return self._snapshot().node_arr[np.asarray(positions, dtype=np.int64)].tolist()

    # ------------------------------------------------------------------ expansion
    def expand(self, ids: Sequence[Hashable], hops: int = 1, direction: str = "out",
               max_neighbors: Optional[int] = None, seed: int = 0) -> Subgraph:
        """The neighbourhood of ``ids`` within ``hops`` (semantics in the module docstring).

        Unknown ids are reported in ``Subgraph.missing`` (not an error); an empty ``ids``,
        a bad ``direction``/``hops``/``max_neighbors``/``seed`` raise :class:`InvalidInputError`.
        """
        hops = check_hops(hops)
        direction = check_direction(direction)
        check_expand_args(max_neighbors, seed)
        snap = self._snapshot()
        ids = self._ids_list(ids, "ids")
        if len(ids) == 0:
            raise InvalidInputError("ids is empty; expected at least one node id to expand")
        check_size(len(ids), DEFAULT_MAX_KEYS, "number of ids to expand")
        p = self.positions(ids)
        ok = p >= 0
        missing = [] if ok.all() else [ids[i] for i in np.flatnonzero(~ok)]
        seeds = p[ok]
        if seeds.size > 1:  # distinct, first occurrence order
            _, first = np.unique(seeds, return_index=True)
            if first.size != seeds.size:
                seeds = seeds[np.sort(first)]
        return self._expand_positions(snap, seeds, hops, direction, max_neighbors, int(seed), missing)

    def _expand_positions(self, snap: _Snapshot, seeds: np.ndarray, hops: int, direction: str,
                          max_neighbors: Optional[int], seed: int, missing: list) -> Subgraph:
        nodes, hop, src, dst, eid, org = expand_csr(snap.csr[direction], snap.keys, seeds, hops, max_neighbors,
                                                    seed, snap.scratch, snap.scratch_lock, snap.num_nodes)
        edge_attr = None
        if snap.edge_attr is not None:
            edge_attr = snap.edge_attr[eid]
        return Subgraph(
            node_ids=(snap.node_arr if snap.node_int is None else snap.node_int)[nodes].tolist(),
            edge_index=np.stack([src, dst]),
            x=snap.x[nodes],
            hop=hop,
            seeds=np.arange(seeds.size, dtype=np.int64),
            edge_attr=edge_attr,
            missing=missing,
            edge_origin=org,
        )

    # ------------------------------------------------------------------ traversal
    def traverse(self, start_ids: Sequence[Hashable], steps: Any, query: Any = None,
                 temperature: float = 1.0, allow_revisit: bool = False, step_scorer: Any = None,
                 type_key: str = "type") -> list:
        """Attention-ranked paths from ``start_ids``: the rules of ``connectors/traversal.py``,
        shared with :meth:`Neo4jGraph.traverse <ruvector_graph_attn.connectors.Neo4jGraph.traverse>`,
        so the same graph gives the same paths and scores.

        A step's ``relationship_types`` select edges whose ``type_key`` attribute (default
        ``"type"``) is one of them (``None``: every edge). ``"out"`` follows successors,
        ``"in"`` predecessors, ``"both"`` either (all three coincide on an undirected graph);
        self-loops count; parallel edges of a multigraph give one neighbour. Features come from
        the snapshot (see :meth:`refresh`). Returns a list of
        :class:`~ruvector_graph_attn.connectors.traversal.TraversalPath`.
        """
        from .traversal import run_traversal

        if not isinstance(type_key, str) or not type_key:
            raise InvalidInputError(f"type_key must be a non-empty string, got {type_key!r}")
        snap = self._snapshot()
        G = self.G
        multi = G.is_multigraph()

        def fetch_start(starts: list) -> dict:
            p = self.positions(starts)
            return {i: int(k) for i, k in zip(starts, p.tolist()) if k >= 0}

        def typed(data: Any, types: Optional[set]) -> bool:
            if types is None:
                return True
            if multi:
                return any(d.get(type_key) in types for d in data.values())
            return data.get(type_key) in types

        def fetch_step(end_ids: list, step: Any) -> dict:
            types = None if step.relationship_types is None else set(step.relationship_types)
            if G.is_directed():
                views = {"out": (G.succ,), "in": (G.pred,), "both": (G.succ, G.pred)}[step.direction]
            else:
                views = (G.adj,)
            out: dict = {}
            for u in end_ids:
                nbrs: dict = {}
                for view in views:
                    for v, data in view[u].items():
                        if v not in nbrs and typed(data, types):
                            nbrs[v] = None
                if nbrs:
                    keys = list(nbrs)
                    out[u] = list(zip(keys, self.positions(keys).tolist()))
            return out

        return run_traversal(start_ids, steps, snap.dim, fetch_start, fetch_step,
                             lambda ids, rows: snap.x[np.asarray(rows, dtype=np.int64)], query=query,
                             temperature=temperature, allow_revisit=allow_revisit, step_scorer=step_scorer)

    def __repr__(self) -> str:
        kind = type(self.G).__name__
        state = "not snapshotted" if self._snap is None else \
            f"{self._snap.num_nodes} nodes, {self._snap.num_edges} edges, dim={self._snap.dim}"
        return f"NetworkXGraph({kind}, feature_key={self.feature_key!r}, {state})"
