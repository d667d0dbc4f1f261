"""Graph utilities: edge_index validation, self loops, CSR orderings and degrees.

Conventions (as in PyTorch Geometric): ``edge_index`` is an int64 ``[2, E]`` array and
messages flow from ``edge_index[0]`` (source ``j``) to ``edge_index[1]`` (target ``i``).
Duplicate edges are kept (each is a separate message).

API
---
``validate_edge_index(edge_index, num_nodes)`` -> int64 C-contiguous ``[2, E]`` (raises
    :class:`InvalidInputError` on wrong shape, float dtype, negative or out-of-range ids).
``remove_self_loops(edge_index, edge_attr=None)`` -> ``(edge_index, edge_attr)``.
``add_self_loops(edge_index, num_nodes, edge_attr=None, fill_value=None)`` ->
    ``(edge_index, edge_attr)``: appends one loop ``(i, i)`` per node AFTER the existing
    edges (existing loops are not removed; call :func:`remove_self_loops` first, as
    GATConv does). Loop features follow PyG's ``add_self_loops``: ``None`` -> 1.0,
    a number -> that value, an array of shape ``edge_attr.shape[1:]`` -> that array,
    ``"add"``/``"sum"``/``"mean"``/``"max"``/``"min"`` -> that reduction of the
    features of each node's INCOMING edges (``edge_index[1] == i``); a node with no
    incoming edge gets 0 (PyG's scatter convention).
``append_self_loops(edge_index, num_loops, edge_attr, fill_value, num_groups)``: the
    unchecked core used by layers (bipartite-safe); ``self_loop_attr_backward`` is its
    gradient w.r.t. ``edge_attr`` for reduction fills.
``build_csr(edge_index, num_nodes, by="target")`` -> :class:`CSR` with ``indptr[N+1]``,
    ``perm[E]`` (stable order of edges by target or source), ``col[E]`` (the other
    endpoint in CSR order) and ``index[E]`` (the grouping endpoint, original order).
    Build it once per call and pass it to every kernel (all heads, forward and backward).
    Large graphs are cached by content (:func:`set_csr_cache`, :func:`clear_csr_cache`).
``degree(index, num_nodes, dtype=np.int64)`` -> counts per node.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..kernels.segment import (
    csr_from_index, scatter_max, scatter_max_backward_split, scatter_mean, scatter_min, scatter_sum,
    scatter_sum_backward,
)
from ..kernels.csr import csr_grouped, fingerprint
from ..kernels.threads import serial_below as _serial_below
from ..validation import as_float_array, check_edge_index, check_int

_REDUCES = ("add", "sum", "mean", "max", "min")


def validate_edge_index(edge_index: Any, num_nodes: int, name: str = "edge_index") -> np.ndarray:
    """Check a ``[2, E]`` integer edge index against ``num_nodes``; returns int64, C-contiguous."""
    return check_edge_index(edge_index, check_int(num_nodes, "num_nodes", lo=0), name)


def _check_edge_attr(edge_attr: Any, num_edges: int) -> np.ndarray | None:
    if edge_attr is None:
        return None
    ea = as_float_array(edge_attr, "edge_attr", allow_empty=True)
    if ea.ndim == 0:
        raise InvalidInputError("edge_attr must be 1-D [E] or 2-D [E, D], got a scalar")
    if ea.shape[0] != num_edges:
        raise DimensionMismatchError(num_edges, ea.shape[0], "edge_attr rows (must equal the number of edges)")
    return ea


def remove_self_loops(edge_index: Any, edge_attr: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop every edge ``(i, i)``; ``edge_attr`` rows are dropped alongside."""
    ei = np.asarray(edge_index)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise InvalidInputError(f"edge_index must have shape [2, E], got {ei.shape}")
    ei = check_edge_index(ei, np.iinfo(np.int64).max)
    ea = _check_edge_attr(edge_attr, ei.shape[1])
    keep = ei[0] != ei[1]
    ei = np.ascontiguousarray(ei[:, keep])
    if ea is not None:
        ea = np.ascontiguousarray(ea[keep])
    return ei, ea


def self_loop_attr(ei: np.ndarray, ea: np.ndarray, num_nodes: int, fill_value: Any,
               num_groups: int | None = None) -> np.ndarray:
    """Features of the ``num_nodes`` new loops. ``num_groups`` (>= num_nodes) is the
    number of target ids ``ei[1]`` may take (bipartite graphs); reductions run over all
    of them and the first ``num_nodes`` rows are kept."""
    tail = ea.shape[1:]
    if fill_value is None:
        return np.ones((num_nodes,) + tail, dtype=ea.dtype)
    if isinstance(fill_value, str):
        if fill_value not in _REDUCES:
            raise InvalidInputError(
                f"fill_value {fill_value!r} is not supported; expected a number, an array or one of {_REDUCES}")
        groups = max(int(num_nodes), int(num_groups or 0))
        flat = np.ascontiguousarray(ea.reshape(ea.shape[0], int(np.prod(tail))))
        indptr, perm = csr_from_index(np.ascontiguousarray(ei[1]), groups)
        if fill_value in ("add", "sum"):
            out = scatter_sum(flat, indptr, perm)
        elif fill_value == "mean":
            out = scatter_mean(flat, indptr, perm)
        elif fill_value == "max":
            out = scatter_max(flat, indptr, perm)[0]
        else:
            out = scatter_min(flat, indptr, perm)[0]
        return np.ascontiguousarray(out[:num_nodes]).reshape((num_nodes,) + tail)
    if isinstance(fill_value, (bool, np.bool_)):
        raise InvalidInputError("fill_value must be a number, an array or a reduction name, got a bool")
    if isinstance(fill_value, (int, float, np.integer, np.floating)):
        if not np.isfinite(fill_value):
            raise InvalidInputError(f"fill_value must be finite, got {fill_value}")
        return np.full((num_nodes,) + tail, fill_value, dtype=ea.dtype)
    fv = as_float_array(_to_numpy(fill_value), "fill_value", dtype=ea.dtype)
    if fv.shape != tail:
        raise DimensionMismatchError(tail, fv.shape, "fill_value shape (must equal edge_attr.shape[1:])")
    return np.ascontiguousarray(np.broadcast_to(fv, (num_nodes,) + tail))


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor from a PyG config
        return value.detach().cpu().numpy()
    return value


def check_fill_value(fill_value: Any) -> Any:
    """Validate a ``fill_value`` at layer construction (None, finite number, array, or reduction name)."""
    if fill_value is None or isinstance(fill_value, str):
        if isinstance(fill_value, str) and fill_value not in _REDUCES:
            raise InvalidInputError(
                f"fill_value {fill_value!r} is not supported; expected a number, an array or one of {_REDUCES}")
        return fill_value
    if isinstance(fill_value, (bool, np.bool_)):
        raise InvalidInputError("fill_value must be a number, an array or a reduction name, got a bool")
    if isinstance(fill_value, (int, float, np.integer, np.floating)):
        if not np.isfinite(fill_value):
            raise InvalidInputError(f"fill_value must be finite, got {fill_value}")
        return float(fill_value)
    return as_float_array(_to_numpy(fill_value), "fill_value", dtype=np.float64)


def append_self_loops(edge_index: np.ndarray, num_loops: int, edge_attr: np.ndarray | None = None,
                      fill_value: Any = None, num_groups: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """Unchecked core of :func:`add_self_loops` for already validated arrays (the layers
    call it): loops ``0..num_loops-1`` appended after the edges. ``num_groups`` bounds
    the target ids for bipartite graphs (default ``num_loops``)."""
    loops = np.arange(num_loops, dtype=np.int64)
    out_ei = np.empty((2, edge_index.shape[1] + num_loops), dtype=np.int64)
    out_ei[:, :edge_index.shape[1]] = edge_index
    out_ei[0, edge_index.shape[1]:] = loops
    out_ei[1, edge_index.shape[1]:] = loops
    if edge_attr is None:
        return out_ei, None
    loop_attr = self_loop_attr(edge_index, edge_attr, int(num_loops), fill_value, num_groups)
    return out_ei, np.ascontiguousarray(
        np.concatenate([edge_attr, loop_attr.astype(edge_attr.dtype, copy=False)], axis=0))


def self_loop_attr_backward(grad_loop: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray,
                            fill_value: Any, num_groups: int | None = None) -> np.ndarray | None:
    """Gradient flowing from the loop features (``grad_loop[num_loops, ...]``) back to
    ``edge_attr`` (the edges the loops were computed from) for reduction fill values:
    ``add``/``sum`` copy, ``mean`` divides by the in-degree, ``max``/``min`` split the
    gradient evenly among tied maximal edges (``torch.scatter_reduce`` convention).
    Returns ``None`` when the fill does not depend on ``edge_attr`` (a constant)."""
    if not isinstance(fill_value, str):
        return None
    num_loops = grad_loop.shape[0]
    groups = max(int(num_loops), int(num_groups or 0))
    width = int(np.prod(edge_attr.shape[1:]))
    flat = np.ascontiguousarray(edge_attr.reshape(edge_attr.shape[0], width))
    g = np.zeros((groups, flat.shape[1]), dtype=flat.dtype)
    g[:num_loops] = grad_loop.reshape(num_loops, width)
    dst = np.ascontiguousarray(edge_index[1])
    indptr, perm = csr_from_index(dst, groups)
    if fill_value in ("add", "sum"):
        out = scatter_sum_backward(g, dst)
    elif fill_value == "mean":
        cnt = np.maximum(np.diff(indptr), 1).astype(flat.dtype)
        out = scatter_sum_backward(g / cnt[:, None], dst)
    else:
        red = scatter_max(flat, indptr, perm)[0] if fill_value == "max" else scatter_min(flat, indptr, perm)[0]
        out = scatter_max_backward_split(g, flat, red, indptr, perm)
    return out.reshape(edge_attr.shape)


def add_self_loops(edge_index: Any, num_nodes: int, edge_attr: Any = None,
                   fill_value: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Append the loops ``(0,0) .. (N-1,N-1)`` after the existing edges (PyG semantics)."""
    ei = validate_edge_index(edge_index, num_nodes)
    ea = _check_edge_attr(edge_attr, ei.shape[1])
    return append_self_loops(ei, int(num_nodes), ea, fill_value)


@dataclass(frozen=True)
class CSR:
    """Edges grouped by one endpoint. ``indptr[N+1]``; ``perm[E]`` stable edge order;
    ``col[E]`` the other endpoint in CSR order; ``index[E]`` the grouping endpoint per
    original edge."""

    indptr: np.ndarray
    perm: np.ndarray
    col: np.ndarray
    index: np.ndarray
    num_nodes: int

    @property
    def num_edges(self) -> int:
        return int(self.perm.shape[0])

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)


#: graphs with at least this many edges keep their CSR in a small content-keyed cache
CSR_CACHE_MIN_EDGES = 1 << 16
_CSR_CACHE: "OrderedDict[tuple, CSR]" = OrderedDict()
_CSR_CACHE_LOCK = threading.Lock()
#: secret per-process key of the content fingerprint: cache keys cannot be predicted, so an
#: edge list made to collide with another graph's cannot be built outside the process
_CSR_KEY = np.uint64(int.from_bytes(os.urandom(8), "little"))
_csr_cache_limits = {"entries": 8, "bytes": 512 << 20}


def set_csr_cache(max_entries: int = 8, max_bytes: int = 512 << 20) -> None:
    """Bound the layers' CSR cache (``max_entries=0`` turns it off) and empty it."""
    _csr_cache_limits["entries"] = check_int(max_entries, "max_entries", lo=0)
    _csr_cache_limits["bytes"] = check_int(max_bytes, "max_bytes", lo=0)
    clear_csr_cache()


def clear_csr_cache() -> None:
    """Drop every cached CSR (frees its memory)."""
    with _CSR_CACHE_LOCK:
        _CSR_CACHE.clear()


def _csr_nbytes(c: CSR) -> int:
    return c.indptr.nbytes + c.perm.nbytes + c.col.nbytes + c.index.nbytes


def build_csr(edge_index: np.ndarray, num_nodes: int, by: str = "target") -> CSR:
    """CSR of a VALIDATED int64 ``edge_index`` grouped by ``"target"`` (``edge_index[1]``,
    the aggregation order) or ``"source"`` (``edge_index[0]``, for transposed backward
    passes). O(E + N) counting sort (``kernels.csr.csr_grouped``); duplicate edges stay
    separate.

    Graphs with at least :data:`CSR_CACHE_MIN_EDGES` edges are cached by content: the key is
    ``(by, num_nodes, E)`` and a 128-bit fingerprint of the edge values and positions
    (``kernels.csr.fingerprint``, one parallel read of the array), so a layer stack, repeated
    inference calls and every training step over the same graph sort it once, and an array
    changed in place is simply a new key. Cached arrays are read-only copies (nothing aliases
    the caller's ``edge_index``); at most 8 graphs / 512 MB are kept, least recently used
    first out (:func:`set_csr_cache`, :func:`clear_csr_cache`)."""
    if by == "target":
        row = 1
    elif by == "source":
        row = 0
    else:
        raise InvalidInputError(f"by must be 'target' or 'source', got {by!r}")
    n = int(num_nodes)
    e = int(edge_index.shape[1])
    key = None
    if e >= CSR_CACHE_MIN_EDGES and _csr_cache_limits["entries"] > 0:
        ei = np.ascontiguousarray(edge_index, dtype=np.int64)
        key = (by, n, e) + tuple(int(h) for h in fingerprint(ei, _CSR_KEY))
        with _CSR_CACHE_LOCK:
            hit = _CSR_CACHE.get(key)
            if hit is not None:
                _CSR_CACHE.move_to_end(key)
                return hit
    index = np.ascontiguousarray(edge_index[row], dtype=np.int64)
    other = np.ascontiguousarray(edge_index[1 - row], dtype=np.int64)
    indptr, perm, col = csr_grouped(index, other, n)
    if key is None:
        return CSR(indptr=indptr, perm=perm, col=col, index=index, num_nodes=n)
    if np.shares_memory(index, edge_index):
        index = index.copy()
    for a in (indptr, perm, col, index):
        a.flags.writeable = False
    csr = CSR(indptr=indptr, perm=perm, col=col, index=index, num_nodes=n)
    size = _csr_nbytes(csr)
    with _CSR_CACHE_LOCK:
        if size <= _csr_cache_limits["bytes"]:
            _CSR_CACHE[key] = csr
            total = sum(_csr_nbytes(c) for c in _CSR_CACHE.values())
            while _CSR_CACHE and (len(_CSR_CACHE) > _csr_cache_limits["entries"]
                                  or total > _csr_cache_limits["bytes"]):
                _, old = _CSR_CACHE.popitem(last=False)
                total -= _csr_nbytes(old)
    return csr


def degree(index: Any, num_nodes: int, dtype: Any = np.int64) -> np.ndarray:
    """Number of occurrences of each node id in ``index`` (e.g. ``edge_index[1]`` for in-degree)."""
    idx = np.asarray(index)
    if idx.ndim != 1:
        raise InvalidInputError(f"index must be 1-D, got shape {idx.shape}")
    if idx.size and idx.dtype.kind not in "iu":
        raise InvalidInputError(f"index must have an integer dtype, got {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < 0 or idx.max() >= num_nodes):
        raise InvalidInputError(f"index has values outside 0..{num_nodes - 1}")
    return np.bincount(idx, minlength=int(num_nodes)).astype(dtype, copy=False)


#: below this many edges the layers run their kernels on one thread: a parallel launch
#: costs tens of microseconds on an idle machine and, on a busy one, waits for the slowest
#: thread to be scheduled, which dominates sub-millisecond work
SERIAL_EDGES = 16384


def kernel_threads(num_edges: int, serial_below: int = SERIAL_EDGES, single_blas: bool = True) -> Any:
    """Thread policy for one layer call (``with kernel_threads(E): ...``), the library's one
    policy (``kernels.threads.serial_below``) with the layers' threshold:

    * Numba kernels run on one thread when ``num_edges < serial_below`` (numba's count is
      per calling thread, so other threads are unaffected).
    * With ``single_blas`` numpy's OpenBLAS (found through ctypes; left alone when it is
      not OpenBLAS) runs on one thread for the duration: a layer's dense products are small
      next to its edge kernels, and OpenBLAS's idle workers busy-wait after every product,
      taking a core from the Numba kernels that follow (measured on 2 cores: the serial CSR
      build and the products themselves ran 2-3x slower with 2 BLAS threads). The setting
      is process-wide and restored on exit.
    """
    return _serial_below(num_edges, serial_below, single_blas)


def num_edges_hint(edge_index: Any) -> int:
    """The edge count of an ``edge_index`` array before validation (0 when it is not a
    2-D array), for choosing the thread policy of :func:`kernel_threads`."""
    shape = np.shape(edge_index) if isinstance(edge_index, np.ndarray) else ()
    return int(shape[-1]) if len(shape) == 2 else 0


__all__ = [
    "CSR", "CSR_CACHE_MIN_EDGES", "SERIAL_EDGES", "clear_csr_cache", "set_csr_cache", "kernel_threads", "num_edges_hint", "add_self_loops", "append_self_loops", "build_csr", "check_fill_value", "degree",
    "remove_self_loops", "self_loop_attr", "self_loop_attr_backward", "validate_edge_index",
]
