"""A sharded index: HNSW shards living on different Dask workers, searched in parallel,
merged into the global top-k.

The vectors are split into ``S`` disjoint shards, each an :class:`~ruvector_graph_attn.HNSWIndex`
directory. Shard ``i`` is loaded by worker ``i mod W`` (kept in that worker process) and a
search sends the query block to every shard at once; each returns its own ``k`` best
``(id, distance)`` pairs and the client keeps the ``k`` smallest distances over all shards
(ties: lower shard number first, then the shard's own order). The global top-k is always
among the shards' top-k, so with ``exact=True`` (each shard searched by brute force over its
vectors) the result is the exact top-k of all vectors -- the ids and distances of a
brute-force search over one index holding everything. With HNSW shards each shard is
searched with the same ``ef``; a smaller graph per shard usually gives recall at least that
of one index over all vectors.

If a worker holding a shard dies, the shard's searches go to another worker, which loads
it from its path on first use.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..errors import CorruptFileError, DimensionMismatchError, InvalidInputError
from ..fileio import write_atomic
from ..validation import as_float_array, check_positive_int

__all__ = ["ShardedIndex"]

FORMAT_NAME = "ruvector-graph-attn/sharded-index"
FORMAT_VERSION = 1

_SHARDS: dict = {}
_SHARD_LOCK = threading.Lock()


def _shard(path: str) -> Any:
    """This process's copy of the shard at ``path`` (loaded on first use)."""
    idx = _SHARDS.get(path)
    if idx is None:
        from ..index.hnsw import HNSWIndex

        with _SHARD_LOCK:
            idx = _SHARDS.get(path)
            if idx is None:
                idx = HNSWIndex.load(path, num_threads=1)
                _SHARDS[path] = idx
    return idx


def _load_task(path: str) -> int:
    return len(_shard(path))


def _search_task(path: str, Q: np.ndarray, k: int, ef: Optional[int], exact: bool) -> tuple:
    idx = _shard(path)
    if exact:
        labels = np.flatnonzero(idx._alive)
        kk = min(k, labels.shape[0])
        if kk == 0:
            return idx._ids_array([]).reshape(Q.shape[0], 0), np.zeros((Q.shape[0], 0), np.float32)
        lab, dist = idx._brute_force(Q, labels, kk)
        return idx._label_array()[lab], dist
    ids, dists = idx.search(Q, k=k, ef=ef)
    return ids, dists


class ShardedIndex:
    """``ShardedIndex.open(path, client)``: the shards of ``path`` placed on ``client``'s workers.

    ``search(queries, k, ef=None)`` has :meth:`HNSWIndex.search`'s batch contract
    (``(ids [B, k], dists [B, k])``, smaller distance is closer), so a ``ShardedIndex`` can be
    the ``index`` of a :class:`~ruvector_graph_attn.GraphReranker`.
    """

    def __init__(self, shard_paths: Sequence[str], client: Any, dim: int, space: str, ef: int,
                 exact: bool = False) -> None:
        if client is None:
            raise InvalidInputError("ShardedIndex needs a distributed.Client (its shards live on workers)")
        if not shard_paths:
            raise InvalidInputError("ShardedIndex needs at least one shard")
        self.shard_paths = [os.fspath(p) for p in shard_paths]
        self.client = client
        self.dim = int(dim)
        self.space = space
        self.ef = int(ef)
        self.exact = bool(exact)
        self.placement: list[str] = []
        self.place()

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, path: Union[str, os.PathLike], ids: Any, vectors: Any, shards: int, space: str = "cosine",
              M: int = 16, ef_construction: int = 200, ef: Optional[int] = None, seed: int = 100) -> Path:
        """Split ``vectors`` (with ``ids``) into ``shards`` contiguous parts, build and save one HNSW
        index per part under ``path`` (``shard_0`` ...), and write ``path/manifest.json``."""
        from ..index.hnsw import DEFAULT_EF, HNSWIndex

        X = as_float_array(vectors, "vectors", ndim=2)
        ids_arr = np.asarray(ids)
        if ids_arr.ndim != 1 or ids_arr.shape[0] != X.shape[0]:
            raise DimensionMismatchError(X.shape[0], ids_arr.shape, "number of ids (one per vector)")
        shards = check_positive_int(shards, "shards")
        if shards > X.shape[0]:
            raise InvalidInputError(f"{shards} shards for {X.shape[0]} vectors; expected at most one shard per vector")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        bounds = np.linspace(0, X.shape[0], shards + 1).astype(np.int64)
        names = []
        for i in range(shards):
            a, b = int(bounds[i]), int(bounds[i + 1])
            idx = HNSWIndex(dim=X.shape[1], space=space, M=M, ef_construction=ef_construction,
                            ef=ef or DEFAULT_EF, max_elements=max(16, b - a), seed=seed)
            idx.add(ids_arr[a:b], X[a:b])
            idx.save(path / f"shard_{i}")
            names.append(f"shard_{i}")
        man = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "dim": int(X.shape[1]), "space": space,
               "ef": int(ef or DEFAULT_EF), "shards": names, "count": int(X.shape[0])}
        write_atomic(path / "manifest.json", json.dumps(man, indent=2))
        return path

    @classmethod
    def open(cls, path: Union[str, os.PathLike], client: Any, exact: bool = False) -> "ShardedIndex":
        """Place the shards written by :meth:`build` on ``client``'s workers."""
        from ..store.manifest import read_manifest

        path = Path(path)
        man = read_manifest(path, FORMAT_NAME, FORMAT_VERSION, "sharded index")
        names = man.get("shards")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and "/" not in n and
                                                                  ".." not in n for n in names):
            raise CorruptFileError(f"{path}/manifest.json lists invalid shard names")
        return cls([str(path / n) for n in names], client, dim=man["dim"], space=man["space"], ef=man["ef"],
                   exact=exact)

    def place(self) -> list[str]:
        """Load shard ``i`` on worker ``i mod W`` (sorted addresses); returns the placement."""
        workers = sorted(self.client.scheduler_info()["workers"])
        if not workers:
            raise InvalidInputError("the Dask cluster has no workers")
        self.placement = [workers[i % len(workers)] for i in range(len(self.shard_paths))]
        futs = [self.client.submit(_load_task, p, workers=[w], allow_other_workers=True, pure=False)
                for p, w in zip(self.shard_paths, self.placement)]
        self.client.gather(futs)
        return self.placement

    # ------------------------------------------------------------------ search
    def __len__(self) -> int:
        return int(sum(self.client.gather([self.client.submit(_load_task, p, workers=[w], allow_other_workers=True,
                                                              pure=False)
                                           for p, w in zip(self.shard_paths, self.placement)])))

    def to_similarity(self, dists: np.ndarray) -> np.ndarray:
        d = np.asarray(dists)
        return (1.0 - d) if self.space in ("cosine", "ip") else -d

    def search(self, queries: Any, k: int = 10, ef: Optional[int] = None):
        """Global top-``k`` over all shards: ``(ids, dists)``, ``[B, k]`` (``[k]`` for one query)."""
        single = np.ndim(queries) == 1
        Q = as_float_array(queries, "queries", ndim=(1, 2))
        Q = Q.reshape(1, -1) if Q.ndim == 1 else Q
        if Q.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, Q.shape[1], "query dimension")
        k = check_positive_int(k, "k")
        ef_val = None if ef is None else check_positive_int(ef, "ef")
        qf = self.client.scatter(Q, hash=False) if len(self.shard_paths) > 1 else Q
        futs = [self.client.submit(_search_task, p, qf, k, ef_val, self.exact, workers=[w],
                                   allow_other_workers=True, pure=False)
                for p, w in zip(self.shard_paths, self.placement)]
        parts = self.client.gather(futs)
        ids, dists = self.merge(parts, k)
        if single:
            return ids[0], dists[0]
        return ids, dists

    @staticmethod
    def merge(parts: Sequence[tuple], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` smallest distances per row over shard results ``[(ids [B, k_s], dists [B, k_s]), ...]``
        (ties: earlier shard, then the shard's own order)."""
        ids = np.concatenate([np.asarray(p[0]) for p in parts], axis=1)
        dists = np.concatenate([np.asarray(p[1], dtype=np.float32) for p in parts], axis=1)
        kk = min(k, dists.shape[1])
        order = np.argsort(dists, axis=1, kind="stable")[:, :kk]
        return np.take_along_axis(ids, order, 1), np.take_along_axis(dists, order, 1)

    def __repr__(self) -> str:
        return (f"ShardedIndex({len(self.shard_paths)} shards, dim={self.dim}, space={self.space!r}, "
                f"exact={self.exact})")
