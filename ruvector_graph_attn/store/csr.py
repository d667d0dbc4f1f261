"""A memory-mapped CSR adjacency (edges grouped by target, the aggregation order of the graph layers).

On disk a directory::

    manifest.json   format name and version, nodes, edges, index dtype, "by", "complete"
    indptr.npy      [N + 1] int64
    indices.npy     [E] int32 (N < 2**31) or int64: the other endpoint of each edge

Row ``i`` lists ``indices[indptr[i]:indptr[i+1]]``. With ``by="target"`` (the default) the
row of node ``i`` holds the sources of its in-edges, so messages ``indices[k] -> i`` are
exactly ``edge_index[0] -> edge_index[1]``; duplicate edges stay separate messages, and
within a row edges keep the order they were given in (a stable counting sort).

:meth:`MmapCSR.build` makes the CSR out of core from edges supplied in chunks, in two
passes over them (degree count, then placement), so its memory is the index arrays
(mapped, paged by the operating system) plus one chunk.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Union

import numpy as np
from numba import njit

from ..errors import CorruptFileError, InvalidInputError
from ..fileio import write_atomic
from .manifest import read_manifest

__all__ = ["MmapCSR"]

FORMAT_NAME = "ruvector-graph-attn/csr"
FORMAT_VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]


@njit(cache=True)
def _place(rows, others, fill, indices):
    """Stable placement of one chunk: ``indices[fill[r]++] = other`` in input order."""
    for e in range(rows.shape[0]):
        r = rows[e]
        indices[fill[r]] = others[e]
        fill[r] += 1


@njit(cache=True)
def _count(rows, counts):
    for e in range(rows.shape[0]):
        counts[rows[e]] += 1


class MmapCSR:
    """A CSR adjacency in memory-mapped files (format in the module docstring)."""

    def __init__(self, path: Path, manifest: dict, indptr: np.ndarray, indices: np.ndarray) -> None:
        self.path = Path(path)
        self.num_nodes = int(manifest["nodes"])
        self.num_edges = int(manifest["edges"])
        self.by = str(manifest["by"])
        self.indptr = indptr
        self.indices = indices

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, path: PathLike, chunks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
              num_nodes: int, by: str = "target", overwrite: bool = False) -> "MmapCSR":
        """Build from edges in chunks: ``chunks()`` returns a fresh iterable of ``(src, dst)``
        int arrays each time it is called (it is called twice). Ids must lie in ``0..num_nodes-1``."""
        if by not in ("target", "source"):
            raise InvalidInputError(f"by must be 'target' or 'source', got {by!r}")
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 1:
            raise InvalidInputError(f"num_nodes must be a positive integer, got {num_nodes!r}")
        if not callable(chunks):
            raise InvalidInputError("chunks must be a callable returning an iterable of (src, dst) arrays")
        n = int(num_nodes)
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise InvalidInputError(f"{path} exists; pass overwrite=True to replace it")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        try:
            counts = np.zeros(n, np.int64)
            for src, dst in cls._chunks(chunks, n):
                _count(dst if by == "target" else src, counts)
            indptr = np.zeros(n + 1, np.int64)
            np.cumsum(counts, out=indptr[1:])
            del counts
            m = int(indptr[-1])
            idx_dtype = np.int32 if n < 2 ** 31 else np.int64
            np.save(path / "indptr.npy", indptr, allow_pickle=False)
            indices = np.lib.format.open_memmap(path / "indices.npy", mode="w+", dtype=idx_dtype, shape=(m,))
            fill = indptr[:-1].copy()
            seen = 0
            for src, dst in cls._chunks(chunks, n):
                rows, others = (dst, src) if by == "target" else (src, dst)
                _place(rows, others.astype(idx_dtype), fill, indices)
                seen += rows.shape[0]
            if seen != m or not np.array_equal(fill, indptr[1:]):
                raise InvalidInputError("chunks() yielded different edges on its second pass; "
                                        "it must return the same edges every time it is called")
            indices.flush()
            del indices, fill
            man = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "nodes": n, "edges": m, "by": by,
                   "index_dtype": np.dtype(idx_dtype).name, "complete": True}
            write_atomic(path / "manifest.json", json.dumps(man, indent=2))
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return cls.open(path)

    @staticmethod
    def _chunks(chunks: Callable, n: int):
        for item in chunks():
            try:
                src, dst = item
            except (TypeError, ValueError) as exc:
                raise InvalidInputError("each chunk must be a (src, dst) pair of int arrays") from exc
            src = np.ascontiguousarray(src)
            dst = np.ascontiguousarray(dst)
            if src.ndim != 1 or dst.shape != src.shape or src.dtype.kind not in "iu" or dst.dtype.kind not in "iu":
                raise InvalidInputError(f"each chunk must be two 1-D int arrays of one length, got "
                                        f"{src.dtype}{src.shape} and {dst.dtype}{dst.shape}")
            if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
                raise InvalidInputError(f"an edge endpoint is outside 0..{n - 1}")
            yield src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False)

    @classmethod
    def from_edge_index(cls, path: PathLike, edge_index: Any, num_nodes: int, by: str = "target",
                        chunk_edges: int = 1 << 22, overwrite: bool = False) -> "MmapCSR":
        """Build from an in-memory (or memory-mapped) ``[2, E]`` ``edge_index``."""
        ei = np.asarray(edge_index)
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise InvalidInputError(f"edge_index must have shape [2, E], got {ei.shape}")

        def chunks():
            for a in range(0, ei.shape[1], chunk_edges):
                yield ei[0, a:a + chunk_edges], ei[1, a:a + chunk_edges]

        return cls.build(path, chunks, num_nodes, by=by, overwrite=overwrite)

    @classmethod
    def open(cls, path: PathLike, check: bool = True) -> "MmapCSR":
        """Open read-only (memory-mapped). ``check`` verifies ``indptr`` is monotone from 0 to E
        and every index is in range (one sequential pass); damage raises :class:`CorruptFileError`."""
        path = Path(path)
        man = read_manifest(path, FORMAT_NAME, FORMAT_VERSION, "CSR directory")
        mpath = path / "manifest.json"
        if not man.get("complete") or man.get("by") not in ("target", "source"):
            raise CorruptFileError(f"{mpath}: manifest is incomplete or invalid")
        try:
            indptr = np.load(path / "indptr.npy", mmap_mode="r", allow_pickle=False)
            indices = np.load(path / "indices.npy", mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CorruptFileError(f"{path}: CSR arrays unreadable ({exc})") from exc
        n, m = int(man["nodes"]), int(man["edges"])
        if indptr.shape != (n + 1,) or indptr.dtype != np.int64 or indices.shape != (m,) \
                or indices.dtype.kind != "i":
            raise CorruptFileError(f"{path}: CSR arrays do not match the manifest ({n} nodes, {m} edges)")
        if check:
            if indptr[0] != 0 or indptr[-1] != m:
                raise CorruptFileError(f"{path}: indptr does not run from 0 to {m}")
            step = 1 << 24
            for a in range(0, n, step):
                if (np.diff(indptr[a:a + step + 1]) < 0).any():
                    raise CorruptFileError(f"{path}: indptr is not monotone")
            for a in range(0, m, step):
                blk = indices[a:a + step]
                if blk.size and (blk.min() < 0 or blk.max() >= n):
                    raise CorruptFileError(f"{path}: indices reference a node outside 0..{n - 1}")
        return cls(path, man, indptr, indices)

    # ------------------------------------------------------------------ access
    def row(self, i: int) -> np.ndarray:
        """The other endpoints of node ``i``'s edges (int64)."""
        return np.asarray(self.indices[self.indptr[i]:self.indptr[i + 1]], dtype=np.int64)

    def degree(self) -> np.ndarray:
        return np.diff(np.asarray(self.indptr))

    def block(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indptr, indices)`` of rows ``start..stop-1``: ``indptr`` rebased to 0 (int64),
        ``indices`` the global other endpoints (a view of the mapped file)."""
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        ptr = np.asarray(self.indptr[start:stop + 1], dtype=np.int64) - lo
        return ptr, self.indices[lo:hi]

    def edge_index(self) -> np.ndarray:
        """The ``[2, E]`` int64 edge list (in memory: for graphs that fit)."""
        rows = np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.degree())
        cols = np.asarray(self.indices, dtype=np.int64)
        return np.stack([cols, rows]) if self.by == "target" else np.stack([rows, cols])

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes)

    def __repr__(self) -> str:
        return f"MmapCSR({str(self.path)!r}, nodes={self.num_nodes}, edges={self.num_edges}, by={self.by!r})"
