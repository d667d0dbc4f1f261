"""Batch re-ranking on Dask: query blocks in, a Dask DataFrame of ranked hits out.

Every worker process holds one :class:`~ruvector_graph_attn.GraphReranker` per
:class:`RerankSpec`, built from *paths* -- an index directory
(:meth:`HNSWIndex.save <ruvector_graph_attn.HNSWIndex.save>`), a graph directory
(:class:`~ruvector_graph_attn.store.MmapGraph`) and, for the layer scorers, a checkpoint
(:func:`~ruvector_graph_attn.save_checkpoint`). :class:`RerankerPlugin` (a Dask worker plugin)
loads it when a worker starts (and when a replacement worker joins); a task that lands on
a process without it loads it on first use. Tasks carry only the small spec and their
block of queries, never the index, graph or model.

Each block runs ``GraphReranker.search_batch`` -- the same code as in-process callers -- so
the rows equal a single-process ``search_batch`` over the same queries, row for row.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import CorruptFileError, DimensionMismatchError, InvalidInputError
from ..validation import as_float_array, check_positive_int

__all__ = ["RerankSpec", "RerankerPlugin", "rerank", "get_reranker", "COLUMNS"]

#: output columns, in order
COLUMNS = ("query", "rank", "id", "score", "vector_score")


def _require_dask():
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"distributed re-ranking needs dask, distributed and pandas ({exc}); "
            "install them with: pip install 'ruvector-graph-attn[distributed]'") from exc


@dataclass(frozen=True)
class RerankSpec:
    """Where a worker finds what it needs to re-rank, and how to configure the re-ranker.

    ``index``: an HNSW index directory; ``graph``: an :class:`MmapGraph` directory;
    ``scorer``: a :class:`GraphReranker` scorer name; ``checkpoint``: a model checkpoint for the
    ``"gat"``/``"sage"``/``"gin"`` scorers; ``options``: further ``GraphReranker`` keyword
    arguments (``hops``, ``candidates``, ``temperature``, ``blend``, ``direction``,
    ``max_neighbors``, ``ef``, ``seed``, ``curvature``), JSON values only.
    """

    index: str
    graph: str
    scorer: str = "attention"
    checkpoint: Optional[str] = None
    options: tuple = field(default_factory=tuple)

    @classmethod
    def make(cls, index: Any, graph: Any, scorer: str = "attention", checkpoint: Any = None,
             **options: Any) -> "RerankSpec":
        for v, name in ((index, "index"), (graph, "graph")):
            if not isinstance(v, (str, os.PathLike)):
                raise InvalidInputError(f"{name} must be a path (workers load it), got {type(v).__name__}")
        if not isinstance(scorer, str):
            raise InvalidInputError(f"scorer must be a scorer name, got {type(scorer).__name__}")
        if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
            raise InvalidInputError(f"checkpoint must be a path, got {type(checkpoint).__name__}")
        try:
            json.dumps(options)
        except TypeError as exc:
            raise InvalidInputError(f"re-ranker options must be JSON values ({exc})") from exc
        return cls(index=os.fspath(index), graph=os.fspath(graph), scorer=scorer,
                   checkpoint=None if checkpoint is None else os.fspath(checkpoint),
                   options=tuple(sorted(options.items())))

    @property
    def key(self) -> str:
        raw = json.dumps([self.index, self.graph, self.scorer, self.checkpoint, list(self.options)])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def build(self) -> Any:
        """A :class:`GraphReranker` loaded from the paths (done once per process)."""
        from ..index.hnsw import HNSWIndex
        from ..rerank.pipeline import GraphReranker
        from ..store.graph import MmapGraph

        index = HNSWIndex.load(self.index, num_threads=1)
        graph = MmapGraph.open(self.graph)
        layer = None
        if self.checkpoint is not None:
            from ..training.checkpoint import load_checkpoint

            layer = load_checkpoint(self.checkpoint)
            if hasattr(layer, "eval"):
                layer.eval()
        return GraphReranker(index=index, graph=graph, scorer=self.scorer, layer=layer, **dict(self.options))


_RERANKERS: dict = {}
_LOCK = threading.Lock()
#: how many times this process built a re-ranker (per spec key), for tests and benchmarks
LOADS: dict = {}


def get_reranker(spec: RerankSpec) -> Any:
    """This process's re-ranker for ``spec`` (built on first use)."""
    rr = _RERANKERS.get(spec.key)
    if rr is None:
        with _LOCK:
            rr = _RERANKERS.get(spec.key)
            if rr is None:
                rr = spec.build()
                _warm(rr)
                _RERANKERS[spec.key] = rr
                LOADS[spec.key] = LOADS.get(spec.key, 0) + 1
    return rr


def _warm(rr: Any) -> None:
    """Compile the kernels on one query so the first real block does not pay for it."""
    q = np.asarray(rr.graph.features_store.read(np.array([0])), dtype=np.float32)
    if q.shape[1] == getattr(rr.index, "dim", q.shape[1]) and np.isfinite(q).all() and np.abs(q).sum() > 0:
        rr.search_batch(q, k=1)


def _load_count(key: str) -> int:
    return LOADS.get(key, 0)


try:  # the plugin base class when distributed is installed; a plain object otherwise
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPluginBase
except ImportError:  # pragma: no cover - exercised only without the extra
    _WorkerPluginBase = object


class RerankerPlugin(_WorkerPluginBase):
    """A Dask worker plugin that builds the re-ranker of ``spec`` when a worker starts."""

    def __init__(self, spec: RerankSpec) -> None:
        self.spec = spec
        self.name = f"rga-reranker-{spec.key}"

    def setup(self, worker: Any = None) -> None:
        get_reranker(self.spec)


def _frame(hits: list, keys: np.ndarray, id_kind: str):
    import pandas as pd

    rows = sum(len(h) for h in hits)
    q = np.empty(rows, keys.dtype if keys.dtype.kind in "iu" else object)
    rank = np.empty(rows, np.int32)
    score = np.empty(rows, np.float64)
    vscore = np.empty(rows, np.float64)
    ids: list = []
    t = 0
    for b, row in enumerate(hits):
        for h in row:
            q[t] = keys[b]
            rank[t] = h.rank
            score[t] = h.score
            vscore[t] = h.vector_score
            ids.append(h.id)
            t += 1
    id_col = np.asarray(ids, dtype=np.int64) if id_kind == "int" else np.asarray(ids, dtype=object)
    if id_kind == "int" and rows == 0:
        id_col = np.zeros(0, np.int64)
    return pd.DataFrame({"query": q, "rank": rank, "id": id_col, "score": score, "vector_score": vscore})


def _rerank_block(spec: RerankSpec, Q: np.ndarray, keys: np.ndarray, k: int, id_kind: str):
    rr = get_reranker(spec)
    Q = np.asarray(Q)
    if Q.shape[0] == 0:
        return _frame([], keys, id_kind)
    return _frame(rr.search_batch(Q, k), keys, id_kind)


def _rerank_offset(spec: RerankSpec, Q: np.ndarray, offset: int, k: int, id_kind: str):
    Q = np.asarray(Q)
    return _rerank_block(spec, Q, np.arange(offset, offset + Q.shape[0], dtype=np.int64), k, id_kind)


def _rerank_series(part: Any, spec: RerankSpec, k: int, id_kind: str):
    vals = part.to_list()
    if any(isinstance(v, (str, bytes)) for v in vals):
        raise InvalidInputError("the query column holds strings; store vectors as lists or arrays "
                                "(e.g. a pyarrow list<float> column, as Parquet list columns are read)")
    if vals:
        try:
            Q = np.stack([np.asarray(v, dtype=np.float32) for v in vals])
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"query vectors in the column are not numeric vectors of one length ({exc})") from exc
    else:
        Q = np.zeros((0, 1), np.float32)
    return _rerank_block(spec, Q, np.asarray(part.index), k, id_kind)


def _index_manifest(path: str) -> dict:
    mp = Path(path) / "manifest.json"
    try:
        return json.loads(mp.read_bytes())
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path} is not a readable index directory ({exc})") from exc


def _meta(id_kind: str, query_dtype: Any = np.int64):
    import pandas as pd

    return pd.DataFrame({
        "query": pd.Series([], dtype=query_dtype), "rank": pd.Series([], dtype=np.int32),
        "id": pd.Series([], dtype=np.int64 if id_kind == "int" else object),
        "score": pd.Series([], dtype=np.float64), "vector_score": pd.Series([], dtype=np.float64)})


def register(client: Any, spec: RerankSpec) -> None:
    """Install :class:`RerankerPlugin` for ``spec`` on every worker of ``client`` (idempotent)."""
    plugin = RerankerPlugin(spec)
    if hasattr(client, "register_plugin"):
        client.register_plugin(plugin, name=plugin.name)
    else:  # pragma: no cover - older distributed
        client.register_worker_plugin(plugin, name=plugin.name)


def rerank(queries: Any, index: Any, graph: Any, scorer: str = "attention", client: Any = None, k: int = 10,
           checkpoint: Any = None, batch_size: int = 1024, check_paths: bool = True,
           id_kind_hint: Optional[str] = None, **options: Any):
    """Re-rank many queries on Dask; returns a lazy Dask DataFrame.

    Args:
        queries: ``[B, D]`` query vectors: a numpy array (cut into blocks of ``batch_size``
            rows), a Dask array (its row chunks are the blocks), or a Dask Series (one
            DataFrame column) whose values are vectors (each partition is a block).
        index: path of an HNSW index directory; graph: path of an :class:`MmapGraph`
            directory; both must be readable by every worker at that path.
        scorer: a :class:`GraphReranker` scorer name; ``checkpoint``: model checkpoint path
            for the layer scorers; ``options``: other ``GraphReranker`` arguments.
        client: a ``distributed.Client``: :class:`RerankerPlugin` is registered on its
            workers (each loads the index, graph and model once). ``None``: the current
            default scheduler (each process loads them on first use).
        k: hits per query.
        check_paths: verify on this machine that the paths exist and read the index's id
            kind and dimension (turn off when only the workers see the paths; then pass
            ``id_kind_hint="str"`` for an index with string ids).

    Returns:
        A Dask DataFrame with columns ``query`` (the query's row number; for a Series input,
        its index label), ``rank`` (0-based), ``id``, ``score``, ``vector_score``, ``k`` rows per
        query in rank order (fewer when the index holds fewer vectors). Write it with
        ``.to_parquet(path)`` or bring it back with ``.compute()``.
    """
    _require_dask()
    import dask
    import dask.array as da
    import dask.dataframe as dd

    k = check_positive_int(k, "k")
    batch_size = check_positive_int(batch_size, "batch_size")
    spec = RerankSpec.make(index, graph, scorer=scorer, checkpoint=checkpoint, **options)
    id_kind, dim = "int", None
    if check_paths:
        from ..rerank.pipeline import SCORERS
        from ..store.graph import MmapGraph

        for p, name in ((spec.index, "index"), (spec.graph, "graph"), (spec.checkpoint, "checkpoint")):
            if p is not None and not Path(p).exists():
                raise InvalidInputError(f"{name} path {p!r} does not exist")
        man = _index_manifest(spec.index)
        id_kind, dim = man.get("id_kind", "int"), man.get("dim")
        MmapGraph.open(spec.graph)  # cheap (maps the files): fails here on a damaged graph
        if spec.scorer not in SCORERS:
            raise InvalidInputError(f"scorer must be one of {', '.join(SCORERS)}; got {spec.scorer!r}")
    if id_kind_hint is not None:
        id_kind = id_kind_hint
    if client is not None:
        register(client, spec)

    if isinstance(queries, dd.Series):
        return queries.map_partitions(_rerank_series, spec, k, id_kind,
                                      meta=_meta(id_kind, queries.index.dtype), align_dataframes=False)
    if isinstance(queries, dd.DataFrame):
        raise InvalidInputError("pass one column of the DataFrame (a Series of vectors), e.g. df['embedding']")
    if isinstance(queries, da.Array):
        if queries.ndim != 2:
            raise InvalidInputError(f"queries must be [B, D], got a {queries.ndim}-D Dask array")
        if dim is not None and queries.shape[1] != dim:
            raise DimensionMismatchError(dim, queries.shape[1], "query dimension (index dim)")
        arr = queries.rechunk({1: -1}) if len(queries.chunks[1]) > 1 else queries
        if any(np.isnan(c) for c in arr.chunks[0]):
            arr = arr.compute_chunk_sizes()
        blocks = arr.to_delayed().ravel()
        offsets = np.concatenate([[0], np.cumsum(arr.chunks[0])[:-1]]).astype(np.int64)
    else:
        Q = as_float_array(queries, "queries", ndim=2)
        if dim is not None and Q.shape[1] != dim:
            raise DimensionMismatchError(dim, Q.shape[1], "query dimension (index dim)")
        offsets = np.arange(0, Q.shape[0], batch_size, dtype=np.int64)
        blocks = [Q[a:a + batch_size] for a in offsets.tolist()]
    task = dask.delayed(_rerank_offset, pure=True)
    parts = [task(spec, b, int(o), k, id_kind) for b, o in zip(blocks, offsets.tolist())]
    if not parts:
        return dd.from_pandas(_meta(id_kind), npartitions=1)
    return dd.from_delayed(parts, meta=_meta(id_kind), verify_meta=False)
