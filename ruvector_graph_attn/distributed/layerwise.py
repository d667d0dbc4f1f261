"""Exact layer-wise full-graph GNN inference, out of core and optionally spread over Dask workers.

A model of ``L`` graph layers is evaluated one layer at a time for *all* nodes: the
nodes are cut into blocks of ``chunk_nodes`` consecutive ids; for each block the layer
reads the block's in-edges (one contiguous slice of a target-grouped CSR), the previous
layer's rows of the block and of its in-neighbours, and writes the block's output rows to
a memory-mapped array. Only when every block of a layer is written does the next layer
start, reading that array. A node's output depends only on its own row and its
in-neighbours' rows, so this is the full-graph forward pass, exactly -- unlike sampled
mini-batch inference -- while memory holds one block at a time.

Model structure: a single graph layer, or a :class:`~ruvector_graph_attn.graph.GraphSequential`
whose non-graph modules act on each node's row independently (Linear, activations,
LayerNorm, Dropout -- evaluated in eval mode). Each graph layer plus the row-wise modules
after it form one pass; row-wise modules before the first graph layer form a pass of their
own. Layers that need edge features are not supported (the CSR holds none).

``SAGEConv`` and ``GINConv`` blocks aggregate the in-neighbour rows directly; any other graph
layer (GAT, GATv2 ...) is run on the block's local graph (block nodes first, then their
in-neighbours) and its block rows are kept.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from numba import njit

from ..errors import DimensionMismatchError, InvalidInputError
from ..kernels.segment import scatter_max, scatter_mean, scatter_sum
from ..store.csr import MmapCSR
from ..store.features import FeatureStore

__all__ = ["infer_layerwise", "split_passes"]

_CACHE_ATTRS = ("_cache", "_x", "_edge_cache", "_last", "_last_dense", "_edge_used", "_scale")


def _drop_caches(module: Any) -> None:
    """Release what forward passes kept for a backward pass (inference never needs it)."""
    for _, m in module.named_modules():
        for attr in _CACHE_ATTRS:
            if attr in m.__dict__:
                object.__setattr__(m, attr, None)


def split_passes(model: Any) -> list[tuple[Any, list]]:
    """The model as passes ``(graph_layer or None, [row-wise modules after it])``."""
    from ..graph.sequential import GraphSequential, is_graph_layer, uses_edge_attr

    if model is None or not callable(model):
        raise InvalidInputError(f"model must be a graph layer or GraphSequential, got {type(model).__name__}")
    mods = list(model) if isinstance(model, GraphSequential) else [model]
    passes: list[tuple[Any, list]] = []
    for m in mods:
        if isinstance(m, GraphSequential):
            passes.extend(split_passes(m))
            continue
        if is_graph_layer(m):
            if uses_edge_attr(m):
                raise InvalidInputError(f"{type(m).__name__} uses edge features; layer-wise inference "
                                        f"reads a CSR without edge features")
            passes.append((m, []))
        elif passes:
            passes[-1][1].append(m)
        else:
            passes.append((None, [m]))
    if not any(layer is not None for layer, _ in passes):
        raise InvalidInputError("model has no graph layer; layer-wise inference needs one")
    return passes


def _in_dim(layer: Any) -> Optional[int]:
    for attr in ("in_channels", "in_features"):
        v = getattr(layer, attr, None)
        if isinstance(v, (int, np.integer)):
            return int(v)
    return None


@njit(cache=True)
def localize(col, a, b, mark):
    """Local ids of a block's in-neighbours: block node ``a + i`` is ``i``, every other
    source gets ``b - a + j`` with ``extra[j]`` its global id (sorted ascending).

    ``mark`` is a ``[N]`` int64 scratch array of -1, restored before returning.
    Returns ``(col_local, extra)``.
    """
    nb = b - a
    m = col.shape[0]
    extra = np.empty(m, np.int64)
    ne = 0
    for e in range(m):
        c = col[e]
        if (c < a or c >= b) and mark[c] < 0:
            mark[c] = 0
            extra[ne] = c
            ne += 1
    extra = np.sort(extra[:ne])
    for j in range(ne):
        mark[extra[j]] = nb + j
    out = np.empty(m, np.int64)
    for e in range(m):
        c = col[e]
        out[e] = c - a if (c >= a and c < b) else mark[c]
    for j in range(ne):
        mark[extra[j]] = -1
    return out, extra


def _float32_rows(x: Any) -> Optional[np.ndarray]:
    """The rows as one float32 array (mapped or in memory) when they are stored that way."""
    if isinstance(x, FeatureStore):
        return x.data if x.dtype == "float32" else None
    return x if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous else None


def _rows(x: Any, idx: np.ndarray) -> np.ndarray:
    if isinstance(x, FeatureStore):
        return x.read(idx)
    return np.ascontiguousarray(np.asarray(x[idx]), dtype=np.float32)


def _block_forward(layer: Any, post: list, x: Any, csr: MmapCSR, a: int, b: int,
                   mark: Optional[np.ndarray] = None) -> np.ndarray:
    """Rows ``a..b-1`` of one pass: ``post(layer(x, graph))[a:b]``, computed from the block's
    in-edges only (``mark``: optional reusable ``[N]`` scratch of -1)."""
    from ..graph.utils import kernel_threads

    if layer is None:
        y = _rows(x, np.arange(a, b))
        for m in post:
            y = m(y)
        return np.ascontiguousarray(y, dtype=np.float32)
    ptr, col = csr.block(a, b)
    with kernel_threads(int(ptr[-1])):
        return _layer_block(layer, post, x, csr, a, b, ptr, col, mark)


def _layer_block(layer: Any, post: list, x: Any, csr: MmapCSR, a: int, b: int, ptr: np.ndarray, col: Any,
                 mark: Optional[np.ndarray]) -> np.ndarray:
    from ..graph.gin import GINConv
    from ..graph.sage import SAGEConv

    nb = b - a
    direct = _float32_rows(x)
    if direct is not None and ((isinstance(layer, SAGEConv) and not layer.project) or type(layer) is GINConv):
        # aggregate straight from the (mapped) float32 rows: no gather of the in-neighbours
        xs, cols, xr = direct, np.asarray(col, dtype=np.int64), np.ascontiguousarray(direct[a:b])
    else:
        if mark is None:
            mark = np.full(csr.num_nodes, -1, np.int64)
        cols, extra = localize(np.asarray(col), a, b, mark)
        xs = np.ascontiguousarray(_rows(x, np.concatenate([np.arange(a, b, dtype=np.int64), extra])))
        xr = xs[:nb]
    if isinstance(layer, SAGEConv):
        if layer.project:
            xs = np.ascontiguousarray(np.maximum(layer.lin(xs), 0))
        if layer.aggr == "mean":
            agg = scatter_mean(xs, ptr, cols)
        elif layer.aggr == "sum":
            agg = scatter_sum(xs, ptr, cols)
        else:
            agg = scatter_max(xs, ptr, cols)[0]
        y = layer.lin_l(agg)
        if layer.root_weight:
            y = y + layer.lin_r(xr)
        if layer.normalize:
            y = y / np.maximum(np.sqrt((y * y).sum(axis=-1, keepdims=True)), 1e-12)
    elif type(layer) is GINConv:
        agg = scatter_sum(xs, ptr, cols)
        y = layer.nn(agg + (1.0 + layer._eps_value()[0]) * xr)
    else:
        tgt = np.repeat(np.arange(nb, dtype=np.int64), np.diff(ptr))
        y = layer(xs, np.stack([cols, tgt]))
        if isinstance(y, tuple):
            y = y[0]
        y = np.asarray(y)[:nb]
    for m in post:
        y = m(y)
    return np.ascontiguousarray(y, dtype=np.float32)


def _as_csr(csr: Any, n: int) -> MmapCSR:
    if isinstance(csr, MmapCSR):
        if csr.by != "target":
            raise InvalidInputError("csr must group edges by target (MmapCSR.build(..., by='target'))")
        if csr.num_nodes != n:
            raise DimensionMismatchError(n, csr.num_nodes, "CSR nodes (feature rows)")
        return csr
    ei = np.asarray(csr)
    if ei.ndim != 2 or ei.shape[0] != 2 or (ei.size and ei.dtype.kind not in "iu"):
        raise InvalidInputError("csr must be an MmapCSR or an int edge_index [2, E]")
    if ei.size and (ei.min() < 0 or ei.max() >= n):
        raise InvalidInputError(f"edge_index references a node outside 0..{n - 1}")
    from ..graph.utils import build_csr

    c = build_csr(np.ascontiguousarray(ei, dtype=np.int64), n, by="target")
    man = {"nodes": n, "edges": int(ei.shape[1]), "by": "target"}
    return MmapCSR(Path("<memory>"), man, c.indptr, c.col)


# per-process caches of opened files (each Dask worker maps a file once)
_OPEN: dict = {}
_OPEN_LOCK = threading.Lock()


def _opened(kind: str, path: str) -> Any:
    key = (kind, path, os.stat(Path(path) / "manifest.json").st_mtime_ns)
    with _OPEN_LOCK:
        obj = _OPEN.get(key)
        if obj is None:
            obj = MmapCSR.open(path, check=False) if kind == "csr" else FeatureStore.open(path)
            if len(_OPEN) > 16:
                _OPEN.clear()
            _OPEN[key] = obj
    return obj


def _block_task(passes: Any, i: int, x_path: str, csr_path: str, out_path: str, a: int, b: int) -> tuple:
    """One block of one pass on a worker: read mapped inputs, write rows ``a..b-1`` of the output."""
    layer, post = passes[i]
    x = _opened("features", x_path)
    csr = _opened("csr", csr_path)
    y = _block_forward(layer, post, x, csr, a, b)
    out = FeatureStore.open_for_write(out_path)
    out.write(a, y)
    _drop_caches_list(layer, post)
    return (a, b)


def _drop_caches_list(layer: Any, post: list) -> None:
    for m in ([layer] if layer is not None else []) + list(post):
        _drop_caches(m)


def infer_layerwise(model: Any, features: Any, csr: Any, chunk_nodes: int = 65536,
                    out_dir: Union[str, os.PathLike, None] = None, client: Any = None,
                    keep_intermediate: bool = False) -> FeatureStore:
    """Full-graph inference of ``model`` one layer at a time over node blocks (module docstring).

    Args:
        model: a graph layer or a ``GraphSequential`` (run in eval mode; its mode is restored).
        features: ``[N, F]`` input features: a :class:`FeatureStore` (any storage dtype) or an array.
        csr: the graph as an :class:`MmapCSR` grouped by target, or an ``edge_index`` ``[2, E]``
            (messages ``edge_index[0] -> edge_index[1]``, converted to an in-memory CSR).
        chunk_nodes: nodes per block; memory per block is about
            ``(chunk_nodes + distinct in-neighbours) * F * 4`` bytes plus the block's edges.
        out_dir: folder for the per-pass outputs (``pass_0``, ``pass_1`` ...; default: a new
            temporary folder, which the caller deletes when done with the result: it is
            ``result.path.parent``). Intermediate passes are deleted unless ``keep_intermediate``.
        client: a ``distributed.Client``: the blocks of each pass run as Dask tasks on its
            workers (which must see ``features``, ``csr`` and ``out_dir`` at the same paths:
            one machine or a shared file system). ``None``: in this process.

    Returns:
        A :class:`FeatureStore` (float32, memory-mapped) with the final ``[N, out]`` rows.
    """
    if isinstance(chunk_nodes, bool) or not isinstance(chunk_nodes, (int, np.integer)) or chunk_nodes < 1:
        raise InvalidInputError(f"chunk_nodes must be a positive integer, got {chunk_nodes!r}")
    passes = split_passes(model)
    if isinstance(features, FeatureStore):
        n, f = features.shape
    else:
        arr = np.asarray(features)
        if arr.ndim != 2:
            raise InvalidInputError(f"features must be [N, F], got shape {arr.shape}")
        if arr.dtype.kind != "f" or not np.isfinite(arr).all():
            raise InvalidInputError("features must be finite floats")
        features = arr
        n, f = arr.shape
    if n == 0:
        raise InvalidInputError("features have no rows")
    first = next(layer for layer, _ in passes if layer is not None)
    want = _in_dim(first) if passes[0][0] is not None else None
    if want is not None and want != f:
        raise DimensionMismatchError(want, f, "feature dimension (model input)")
    g = _as_csr(csr, n)
    if client is not None and (not isinstance(features, FeatureStore) or str(g.path) == "<memory>"):
        raise InvalidInputError("with a Dask client, features must be a FeatureStore and csr an MmapCSR "
                                "(workers open them by path)")
    own_dir = out_dir is None
    root = Path(tempfile.mkdtemp(prefix="rga-layerwise-")) if own_dir else Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    blocks = [(a, min(a + int(chunk_nodes), n)) for a in range(0, n, int(chunk_nodes))]
    x: Any = features
    prev_path: Optional[Path] = None
    try:
        passes_future = client.scatter(passes, broadcast=True, hash=False) if client is not None else None
        for i, (layer, post) in enumerate(passes):
            out_dim = _out_dim(layer, post, x, g)
            out_path = root / f"pass_{i}"
            out = FeatureStore.create(out_path, n, out_dim, dtype="float32", overwrite=True)
            if client is None:
                mark = np.full(n, -1, np.int64)
                for a, b in blocks:
                    out.write(a, _block_forward(layer, post, x, g, a, b, mark))
                    _drop_caches_list(layer, post)
            else:
                x_path = str(x.path)
                futs = [client.submit(_block_task, passes_future, i, x_path, str(g.path), str(out_path), a, b,
                                      pure=False, retries=2) for a, b in blocks]
                done = sorted(client.gather(futs))
                if done != blocks:
                    raise RuntimeError(f"pass {i}: {len(done)} of {len(blocks)} blocks came back")
            out.finish()
            if isinstance(x, FeatureStore):
                x.close()
            if prev_path is not None and not keep_intermediate:
                shutil.rmtree(prev_path, ignore_errors=True)
            prev_path = out_path
            x = FeatureStore.open(out_path)
        return x
    except BaseException:
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        if hasattr(model, "train"):
            model.train(was_training)


def _out_dim(layer: Any, post: list, x: Any, g: MmapCSR) -> int:
    """Output width of a pass, from one tiny block (node 0 with its in-edges)."""
    y = _block_forward(layer, post, x, g, 0, 1)
    _drop_caches_list(layer, post)
    if y.ndim != 2:
        raise InvalidInputError(f"the model produced {y.ndim}-D rows; expected [N, out]")
    return int(y.shape[1])
