"""A graph in memory-mapped files, served as a :class:`~ruvector_graph_attn.connectors.GraphSource`.

:class:`MmapGraph` holds what :class:`~ruvector_graph_attn.connectors.NetworkXGraph` keeps
in its snapshot -- node ids, sampling keys, one adjacency per expansion direction and the
features -- in files that are mapped read-only, so a graph larger than memory can back the
re-ranker without NetworkX, and many worker processes on one machine share one copy in
the page cache. Expansion runs the same kernel on the same arrays, so
``MmapGraph.expand`` returns exactly the ``Subgraph`` that ``NetworkXGraph.expand`` returns
on the same graph (same node order, edges, hops, edge origins, sampling and missing ids;
see connectors/networkx.py for the semantics).

On disk a directory::

    manifest.json             format, version, nodes, edges, dim, directed, id kind, "complete"
    ids.npy                   [N] int64 or unicode: the node id at each position
    id_sorted.npy, id_order.npy   ids sorted, and their positions (lookup by binary search)
    keys.npy                  [N] int64 sampling keys (see connectors/networkx.py)
    <dir>_indptr.npy, <dir>_nbr.npy, <dir>_efwd.npy, <dir>_ebwd.npy
                              one adjacency per direction: "both" (undirected graphs) or
                              "out", "in", "both" (directed graphs)
    features/                 a FeatureStore (float32, float16 or int8 with row scales)
    edge_attr/                optional FeatureStore of edge features (float32)
"""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any, Hashable, Iterable, Optional, Sequence, Union

import numpy as np

from ..connectors.base import Subgraph, check_direction, check_hops
from ..connectors.networkx import check_expand_args, direction_csrs, expand_csr
from ..kernels.hashing import id_key as _id_key
from ..validation import is_integer as _is_int_id
from ..errors import CorruptFileError, InvalidInputError, UnknownIdError
from ..fileio import write_atomic
from ..validation import DEFAULT_MAX_KEYS, check_size
from .features import FeatureStore
from .manifest import read_manifest

__all__ = ["MmapGraph"]

FORMAT_NAME = "ruvector-graph-attn/mmap-graph"
FORMAT_VERSION = 1
_PARTS = ("indptr", "nbr", "efwd", "ebwd")


def _save(path: Path, name: str, arr: np.ndarray) -> None:
    np.save(path / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)


class MmapGraph:
    """A read-only graph in memory-mapped files (see the module docstring).

    Make one with :meth:`build` (from node ids, an edge list and features) or
    :meth:`from_networkx` (from a :class:`NetworkXGraph`), then :meth:`open` it anywhere the
    directory is readable (every worker of a cluster, for instance).
    """

    def __init__(self, path: Path) -> None:
        path = Path(path)
        man = read_manifest(path, FORMAT_NAME, FORMAT_VERSION, "graph directory")
        if not man.get("complete"):
            raise CorruptFileError(f"{path}: the graph was not completely written")
        self.path = path
        self.num_nodes = int(man["nodes"])
        self.num_edges = int(man["edges"])
        self.directed = bool(man["directed"])
        self.id_kind = man["id_kind"]
        n = self.num_nodes

        def load(name: str, shape: tuple, kinds: str) -> np.ndarray:
            try:
                a = np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise CorruptFileError(f"{path}: {name}.npy unreadable ({exc})") from exc
            if a.shape != shape or a.dtype.kind not in kinds:
                raise CorruptFileError(f"{path}: {name}.npy is {a.dtype}{a.shape}, expected {shape}")
            return a

        id_kinds = "iu" if self.id_kind == "int" else "U"
        self._ids = load("ids", (n,), id_kinds)
        self._id_sorted = load("id_sorted", (n,), id_kinds)
        self._id_order = load("id_order", (n,), "i")
        self._keys = load("keys", (n,), "i")
        self._csr: dict = {}
        dirs = ("out", "in", "both") if self.directed else ("both",)
        for d in dirs:
            indptr = load(f"{d}_indptr", (n + 1,), "i")
            m = int(indptr[-1])
            if int(indptr[0]) != 0:
                raise CorruptFileError(f"{path}: {d}_indptr does not start at 0")
            self._csr[d] = tuple([indptr] + [load(f"{d}_{p}", (m,), "i") for p in _PARTS[1:]])
        if not self.directed:
            self._csr["out"] = self._csr["in"] = self._csr["both"]
        self.features_store = FeatureStore.open(path / "features")
        if self.features_store.num_rows != n:
            raise CorruptFileError(f"{path}: features hold {self.features_store.num_rows} rows for {n} nodes")
        self.edge_attr_store = FeatureStore.open(path / "edge_attr") if (path / "edge_attr").exists() else None
        self._scratch = np.full(n, -1, np.int64)
        self._scratch_lock = threading.Lock()

    open = classmethod(lambda cls, path: cls(Path(path)))

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, path: Union[str, Path], ids: Any, edge_index: Any, features: Any, directed: bool = True,
              edge_attr: Any = None, feature_dtype: str = "float32", overwrite: bool = False) -> "MmapGraph":
        """Write a graph: ``ids`` ``[N]`` (distinct ints or strings), ``edge_index`` ``[2, E]``
        dense positions (messages ``edge_index[0] -> edge_index[1]``), ``features`` ``[N, D]``
        (or a :class:`FeatureStore` to copy), optional ``edge_attr`` ``[E, F]``. Repeated edges
        are collapsed to the first (for undirected graphs ``(u, v)`` and ``(v, u)`` are one
        edge), as :class:`NetworkXGraph` collapses multigraphs. The adjacency arrays are built
        in memory (``O(E)``); the features are copied in blocks."""
        ids_arr = np.asarray(ids)
        if ids_arr.ndim != 1 or ids_arr.size == 0:
            raise InvalidInputError(f"ids must be a non-empty 1-D array, got shape {ids_arr.shape}")
        n = ids_arr.shape[0]
        if ids_arr.dtype.kind in "iu":
            kind = "int"
            ids_arr = ids_arr.astype(np.int64)
            keys = ids_arr.copy()
        elif ids_arr.dtype.kind in "UO" and all(isinstance(v, str) for v in ids_arr.tolist()):
            kind = "str"
            ids_arr = ids_arr.astype(str)
            keys = np.fromiter((_id_key(v) for v in ids_arr.tolist()), dtype=np.int64, count=n)
        else:
            raise InvalidInputError(f"ids must be integers or strings, got dtype {ids_arr.dtype}")
        order = np.argsort(ids_arr, kind="stable")
        srt = ids_arr[order]
        if n > 1 and (srt[1:] == srt[:-1]).any():
            raise InvalidInputError("ids contain duplicates; every node needs a distinct id")
        ei = np.asarray(edge_index)
        if ei.ndim != 2 or ei.shape[0] != 2 or (ei.size and ei.dtype.kind not in "iu"):
            raise InvalidInputError(f"edge_index must be an int array of shape [2, E], got {ei.dtype}{ei.shape}")
        ei = ei.astype(np.int64)
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise InvalidInputError(f"edge_index references a node outside 0..{n - 1}")
        if isinstance(features, FeatureStore):
            fshape = features.shape
        else:
            features = np.asarray(features)
            if features.ndim != 2:
                raise InvalidInputError(f"features must be [N, D], got shape {features.shape}")
            fshape = features.shape
        if fshape[0] != n:
            raise InvalidInputError(f"features have {fshape[0]} rows for {n} ids")
        src, dst = ei[0], ei[1]
        # collapse repeated edges to the first occurrence (NetworkX keeps one edge per pair)
        if directed:
            key = src * np.int64(n) + dst
        else:
            key = np.minimum(src, dst) * np.int64(n) + np.maximum(src, dst)
        _, first = np.unique(key, return_index=True)
        keep = np.sort(first)
        src, dst = src[keep], dst[keep]
        ea = None
        if edge_attr is not None:
            ea = np.asarray(edge_attr, dtype=np.float32)
            if ea.ndim == 1:
                ea = ea.reshape(-1, 1)
            if ea.shape[0] != ei.shape[1]:
                raise InvalidInputError(f"edge_attr has {ea.shape[0]} rows for {ei.shape[1]} edges")
            ea = ea[keep]
        m = src.shape[0]
        csr = direction_csrs(src, dst, n, directed)
        if not directed:
            csr = {"both": csr["both"]}
        path = cls._fresh(path, overwrite)
        try:
            _save(path, "ids", ids_arr)
            _save(path, "id_sorted", srt)
            _save(path, "id_order", order.astype(np.int64))
            _save(path, "keys", keys)
            for d, arrs in csr.items():
                for p, a in zip(_PARTS, arrs):
                    _save(path, f"{d}_{p}", a)
            del csr
            if isinstance(features, FeatureStore):
                st = FeatureStore.create(path / "features", n, fshape[1], dtype=feature_dtype)
                for a in range(0, n, 1 << 16):
                    st.write(a, features[a:a + (1 << 16)])
                st.finish()
            else:
                FeatureStore.from_array(path / "features", features, dtype=feature_dtype)
            if ea is not None:
                FeatureStore.from_array(path / "edge_attr", ea, dtype="float32")
            man = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "nodes": int(n), "edges": int(m),
                   "dim": int(fshape[1]), "directed": bool(directed), "id_kind": kind, "complete": True}
            write_atomic(path / "manifest.json", json.dumps(man, indent=2))
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return cls(path)

    @staticmethod
    def _fresh(path: Union[str, Path], overwrite: bool) -> Path:
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise InvalidInputError(f"{path} exists; pass overwrite=True to replace it")
            if not path.is_dir():
                raise InvalidInputError(f"{path} exists and is not a directory")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    @classmethod
    def from_networkx(cls, graph: Any, path: Union[str, Path], feature_dtype: str = "float32",
                      overwrite: bool = False) -> "MmapGraph":
        """Write the snapshot of a :class:`NetworkXGraph` (node ids must be all ints or all strings)."""
        from ..connectors.networkx import NetworkXGraph

        if not isinstance(graph, NetworkXGraph):
            raise InvalidInputError(f"graph must be a NetworkXGraph, got {type(graph).__name__}")
        snap = graph._snapshot()
        nodes = snap.nodes
        if all(_is_int_id(v) for v in nodes):
            ids = np.asarray([int(v) for v in nodes], dtype=np.int64)
        elif all(isinstance(v, str) for v in nodes):
            ids = np.asarray(nodes, dtype=str)
        else:
            raise InvalidInputError("MmapGraph stores integer or string node ids (one kind per graph)")
        ea = snap.edge_attr
        src_dst = cls._edges_of(snap)
        return cls.build(path, ids, src_dst, snap.x, directed=snap.directed,
                         edge_attr=ea if ea is not None and ea.shape[1] else None,
                         feature_dtype=feature_dtype, overwrite=overwrite)

    @staticmethod
    def _edges_of(snap: Any) -> np.ndarray:
        """The snapshot's edge list ``[2, E]`` in edge-id order (recovered from its CSR)."""
        indptr, nbr, e_fwd, _ = snap.csr["out"]
        u = np.repeat(np.arange(snap.num_nodes, dtype=np.int64), np.diff(indptr))
        has = e_fwd >= 0
        u, v, e = u[has], nbr[has], e_fwd[has]
        src = np.empty(snap.num_edges, np.int64)
        dst = np.empty(snap.num_edges, np.int64)
        # undirected: an edge appears under both endpoints; the first write per id wins below
        order = np.argsort(e, kind="stable")
        e, u, v = e[order], u[order], v[order]
        first = np.ones(e.size, dtype=bool)
        first[1:] = e[1:] != e[:-1]
        src[e[first]] = u[first]
        dst[e[first]] = v[first]
        return np.stack([src, dst])

    # ------------------------------------------------------------------ GraphSource
    @property
    def dim(self) -> int:
        return self.features_store.dim

    def __len__(self) -> int:
        return self.num_nodes

    def positions(self, ids: Any) -> np.ndarray:
        """Dense positions of ``ids`` (int64), -1 for ids not in the graph."""
        if ids is None:
            raise InvalidInputError("ids is None; expected a sequence of node ids")
        if isinstance(ids, (str, bytes)) or not isinstance(ids, (Iterable, np.ndarray)):
            raise InvalidInputError(f"ids must be a sequence of node ids, got {type(ids).__name__}")
        if isinstance(ids, np.ndarray) and ids.ndim != 1:
            raise InvalidInputError(f"ids must be 1-D, got shape {ids.shape}")
        if isinstance(ids, np.ndarray) and self.id_kind == "int" and ids.dtype.kind in "iu" \
                and (ids.dtype.kind == "i" or ids.dtype.itemsize < 8 or not ids.size or ids.max() < 2 ** 63):
            return self._lookup(ids.astype(np.int64, copy=False))       # fast path: no Python loop
        items = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
        out = np.full(len(items), -1, np.int64)
        if not items:
            return out
        if self.id_kind == "int":
            ok = np.fromiter((_is_int_id(v) and -2 ** 63 <= int(v) < 2 ** 63 for v in items), dtype=bool,
                             count=len(items))
            if not ok.any():
                return out
            q = np.asarray([int(v) for v, o in zip(items, ok) if o], dtype=np.int64)
        else:
            ok = np.fromiter((isinstance(v, str) for v in items), dtype=bool, count=len(items))
            if not ok.any():
                return out
            q = np.asarray([v for v, o in zip(items, ok) if o], dtype=str)
        out[np.flatnonzero(ok)] = self._lookup(q)
        return out

    def _lookup(self, q: np.ndarray) -> np.ndarray:
        """Positions of ids ``q`` (of the graph's id kind), -1 when absent: binary search."""
        if q.size == 0:
            return np.empty(0, np.int64)
        srt = self._id_sorted
        j = np.minimum(np.searchsorted(srt, q), srt.shape[0] - 1)
        return np.where(srt[j] == q, np.asarray(self._id_order)[j], -1).astype(np.int64)

    def contains(self, ids: Iterable[Hashable]) -> np.ndarray:
        return self.positions(ids) >= 0

    def features(self, ids: Sequence[Hashable]) -> np.ndarray:
        """``[len(ids), dim]`` float32 features; unknown ids raise :class:`UnknownIdError`."""
        items = ids.tolist() if isinstance(ids, np.ndarray) else list(ids) if ids is not None else None
        if not items:
            raise InvalidInputError("ids is empty; expected at least one node id")
        p = self.positions(items)
        if (p < 0).any():
            raise UnknownIdError([items[i] for i in np.flatnonzero(p < 0)], "memory-mapped graph")
        return self.features_store.read(p)

    def node_ids(self, positions: Any) -> list:
        return np.asarray(self._ids)[np.asarray(positions, dtype=np.int64)].tolist()

    def expand(self, ids: Sequence[Hashable], hops: int = 1, direction: str = "out",
               max_neighbors: Optional[int] = None, seed: int = 0) -> Subgraph:
        """The neighbourhood of ``ids`` within ``hops``: the semantics of
        :meth:`NetworkXGraph.expand <ruvector_graph_attn.connectors.NetworkXGraph.expand>`."""
        hops = check_hops(hops)
        direction = check_direction(direction)
        check_expand_args(max_neighbors, seed)
        if ids is None or isinstance(ids, (str, bytes)) or not isinstance(ids, (Iterable, np.ndarray)):
            raise InvalidInputError(f"ids must be a sequence of node ids, got {type(ids).__name__}")
        items = ids if isinstance(ids, np.ndarray) else list(ids)
        if len(items) == 0:
            raise InvalidInputError("ids is empty; expected at least one node id to expand")
        check_size(len(items), DEFAULT_MAX_KEYS, "number of ids to expand")
        p = self.positions(items)
        ok = p >= 0
        missing = [] if ok.all() else [items[i] for i in np.flatnonzero(~ok)]
        seeds = p[ok]
        if seeds.size > 1:
            _, first = np.unique(seeds, return_index=True)
            if first.size != seeds.size:
                seeds = seeds[np.sort(first)]
        nodes, hop, src, dst, eid, org = expand_csr(self._csr[direction], self._keys, seeds, hops, max_neighbors,
                                                    int(seed), self._scratch, self._scratch_lock, self.num_nodes)
        edge_attr = self.edge_attr_store.read(eid) if self.edge_attr_store is not None else None
        return Subgraph(node_ids=np.asarray(self._ids)[nodes].tolist(), edge_index=np.stack([src, dst]),
                        x=self.features_store.read(nodes), hop=hop, seeds=np.arange(seeds.size, dtype=np.int64),
                        edge_attr=edge_attr, missing=missing, edge_origin=org)

    def __repr__(self) -> str:
        return (f"MmapGraph({str(self.path)!r}, {self.num_nodes} nodes, {self.num_edges} edges, dim={self.dim}, "
                f"features={self.features_store.dtype})")
