"""An LRU cache of re-ranked results (``GraphReranker(cache=...)``).

Keys hold everything that changes an answer: the exact query bytes with their dtype and
shape, ``k``, the filter (an allow-list; a predicate cannot be compared, so a search with a
predicate filter bypasses the cache), for :meth:`~GraphReranker.rerank` the candidate ids and
scores, and a *state*: the reranker's parameters (hops, candidates, direction,
max_neighbors, seed, ef, space), the index's ``ef`` and ``version``, the graph's ``version``
and a fingerprint of the scorer (its class and every parameter, weights hashed), so a
different scorer or a scorer whose parameters or weights were changed in place misses.

Invalidation: :class:`~ruvector_graph_attn.HNSWIndex` counts its ``add``/``delete`` calls in
``version`` and :class:`~ruvector_graph_attn.connectors.NetworkXGraph` counts its snapshots
in ``version`` (a refresh or a node-count change takes a new one); when the state differs
from the one the cached entries were computed under, the cache is emptied before the lookup,
so an answer is never served from an older index, graph or scorer. An index or graph without
a ``version`` attribute (for example a Neo4j graph, which other clients can change at any
time) cannot be tracked: calls on such a reranker bypass the cache (counted in ``bypassed``).

Entries are stored as copies and every hit returns fresh copies (new lists, new
:class:`~ruvector_graph_attn.rerank.results.RankedNeighbour` objects with their own
``attention`` dicts), so a caller changing a result cannot change what later callers get.
All operations take one lock, so a cache may be shared by threads.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Hashable, Optional

import numpy as np

from ..errors import InvalidInputError
from ..validation import check_positive_int

__all__ = ["ResultCache", "CacheInfo", "make_cache"]

_MISS = object()
_FP_DEPTH = 5


@dataclass(frozen=True)
class CacheInfo:
    """Counters of a :class:`ResultCache`: ``hits``, ``misses``, ``bypassed`` (calls that could
    not use the cache: predicate filters, untracked index or graph), ``size`` (entries),
    ``maxsize`` and ``hit_rate = hits / (hits + misses)`` (0 before any lookup)."""

    hits: int
    misses: int
    bypassed: int
    size: int
    maxsize: int
    hit_rate: float


class ResultCache:
    """A thread-safe LRU map of at most ``maxsize`` entries (see the module docstring)."""

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = check_positive_int(maxsize, "cache maxsize")
        self._data: "OrderedDict[Hashable, tuple]" = OrderedDict()
        self._lock = threading.Lock()
        self._state: Any = _MISS
        self.hits = 0
        self.misses = 0
        self.bypassed = 0

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        i = self.info()
        return f"ResultCache(maxsize={i.maxsize}, size={i.size}, hits={i.hits}, misses={i.misses})"

    def info(self) -> CacheInfo:
        with self._lock:
            looked = self.hits + self.misses
            return CacheInfo(self.hits, self.misses, self.bypassed, len(self._data), self.maxsize,
                             self.hits / looked if looked else 0.0)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._data.clear()
            self._state = _MISS
            self.hits = self.misses = self.bypassed = 0

    def note_bypass(self, n: int = 1) -> None:
        with self._lock:
            self.bypassed += n

    def get_many(self, state: Hashable, keys: list) -> list:
        """The cached result (a fresh copy) of each key, or ``None``; a changed ``state``
        empties the cache first."""
        out = []
        with self._lock:
            if state != self._state:
                self._data.clear()
                self._state = state
            for key in keys:
                hit = self._data.get(key, _MISS)
                if hit is _MISS:
                    self.misses += 1
                    out.append(None)
                else:
                    self._data.move_to_end(key)
                    self.hits += 1
                    out.append(hit)
        return [None if h is None else _copy_row(h) for h in out]

    def put_many(self, state: Hashable, keys: list, rows: list) -> None:
        """Store copies of ``rows`` under ``keys`` (dropped when ``state`` is no longer current:
        the index, graph or scorer changed while they were computed)."""
        frozen = [tuple(_copy_row(r)) for r in rows]
        with self._lock:
            if state != self._state:
                return
            for key, row in zip(keys, frozen):
                self._data[key] = row
                self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)


def _copy_row(row: Any) -> list:
    return [replace(r, attention=dict(r.attention)) for r in row]


def make_cache(cache: Any) -> Optional[ResultCache]:
    """``GraphReranker(cache=...)``: ``None``/``False`` (no cache), ``True`` (4096 entries), an
    integer maximum size, or a :class:`ResultCache` (may be shared by rerankers: its entries
    carry each reranker's state in their keys)."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return ResultCache()
    if isinstance(cache, ResultCache):
        return cache
    if isinstance(cache, (int, np.integer)) and not isinstance(cache, bool):
        return ResultCache(int(cache))
    raise InvalidInputError(f"cache must be None, True, a maximum size (int > 0) or a ResultCache, "
                            f"got {type(cache).__name__}")


def array_key(a: np.ndarray) -> tuple:
    """The exact bytes of an array with its dtype and shape."""
    a = np.ascontiguousarray(a)
    return (a.dtype.str, a.shape, a.tobytes())


def _is_module(obj: Any) -> bool:
    """A layer (``nn.Module`` or anything shaped like one)."""
    return callable(getattr(obj, "named_modules", None)) and hasattr(obj, "_parameters")


def fingerprint(obj: Any, depth: int = _FP_DEPTH) -> Any:
    """A hashable value that changes when ``obj``'s parameters change: scalars and strings as
    they are, arrays by dtype, shape and a digest of their bytes, containers and objects
    (their ``__dict__``/``__slots__``, class included) recursively; layers (``nn.Module``)
    through every submodule whatever its depth; beyond a few levels, and for functions, the
    object's identity."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        return obj
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return ("nd", a.dtype.str, a.shape, hashlib.blake2b(a.view(np.uint8), digest_size=16).digest()
                if a.dtype != object else tuple(fingerprint(v, depth - 1) for v in a.reshape(-1).tolist()))
    if _is_module(obj):
        modules = obj.named_modules
        # a layer: every submodule at any nesting depth (wrappers such as DirGNNConv hold
        # their convolutions' weights several levels down), each with its own fields
        return ("module", type(obj).__module__, type(obj).__qualname__, tuple(
            (prefix, type(mod).__qualname__,
             fingerprint({k: v for k, v in vars(mod).items() if k != "_modules" and not _is_module(v)}, _FP_DEPTH))
            for prefix, mod in modules()))
    if depth <= 0 or callable(obj) and not hasattr(obj, "__dict__") and not hasattr(obj, "__slots__"):
        return ("id", id(obj))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__,) + tuple(fingerprint(v, depth - 1) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return ("set", frozenset(fingerprint(v, depth - 1) for v in obj))
    if isinstance(obj, dict):
        return ("dict",) + tuple((repr(k), fingerprint(v, depth - 1))
                                 for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0])))
    fields: dict = {}
    if hasattr(obj, "__dict__"):
        fields.update(vars(obj))
    for cls in type(obj).__mro__:
        for s in getattr(cls, "__slots__", ()):
            if isinstance(s, str) and s not in fields and hasattr(obj, s):
                fields[s] = getattr(obj, s)
    if not fields:
        return ("id", id(obj))
    return (type(obj).__module__, type(obj).__qualname__, fingerprint(fields, depth - 1))
