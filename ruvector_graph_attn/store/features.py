"""A memory-mapped node feature store: float32, float16, or int8 with one scale per row.

On disk a store is a directory::

    manifest.json   format name and version, rows, dim, dtype, "complete"
    data.npy        [rows, dim] in the storage dtype (numpy .npy, read with mmap)
    scales.npy      [rows] float32, only for int8

int8 rows are quantised symmetrically: ``scale = max_j |x_j| / 127``,
``q_j = round(x_j / scale)`` (an all-zero row gets ``scale = 0``), and read back as
``q_j * scale`` in float32. The error of each element is at most ``scale / 2``.

Rows are written with positioned writes into the file (not through a writable mapping),
so writing a store does not grow the writer's resident memory; readers map the file
read-only and the operating system pages rows in on demand. A store whose writer did not
call :meth:`FeatureStore.finish` is marked incomplete and refused by :meth:`FeatureStore.open`.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import CorruptFileError, DimensionMismatchError, InvalidInputError
from ..fileio import write_atomic
from .manifest import read_manifest

__all__ = ["FeatureStore", "STORE_DTYPES"]

FORMAT_NAME = "ruvector-graph-attn/features"
FORMAT_VERSION = 1
STORE_DTYPES = ("float32", "float16", "int8")
PathLike = Union[str, "os.PathLike[str]"]


def _header_len(path: Path) -> int:
    """Byte offset of the data in a .npy file (damaged headers raise CorruptFileError)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
            return f.tell()
    except (ValueError, OSError) as exc:
        raise CorruptFileError(f"{path}: not a readable .npy file ({exc})") from exc


def quantize_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 quantisation: ``(q [n, d] int8, scale [n] float32)``."""
    x = np.asarray(x, dtype=np.float32)
    amax = np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0], np.float32)
    scale = (amax / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(x / safe[:, None]), -127, 127).astype(np.int8)
    return q, scale


class FeatureStore:
    """Node features in a memory-mapped file (see the module docstring for the format).

    Create with :meth:`create` (then :meth:`write` blocks of rows and :meth:`finish`) or
    :meth:`from_array`; open with :meth:`open`. Reading (``store[i]``, ``store[a:b]``,
    ``store[idx_array]``, :meth:`read`) always returns float32 ``[n, dim]``.
    """

    def __init__(self, path: Path, manifest: dict, writable: bool) -> None:
        self.path = Path(path)
        self.num_rows = int(manifest["rows"])
        self.dim = int(manifest["dim"])
        self.dtype = str(manifest["dtype"])
        self._manifest = manifest
        self._writable = writable
        self._data: Any = None
        self._scales: Any = None
        self._offset = _header_len(self.path / "data.npy")

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: PathLike, num_rows: int, dim: int, dtype: str = "float32",
               overwrite: bool = False) -> "FeatureStore":
        """An empty store of ``num_rows x dim`` (the file is allocated sparse); fill it with
        :meth:`write` and call :meth:`finish`."""
        if dtype not in STORE_DTYPES:
            raise InvalidInputError(f"dtype must be one of {', '.join(STORE_DTYPES)}, got {dtype!r}")
        for v, name in ((num_rows, "num_rows"), (dim, "dim")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if name == "num_rows" else 1):
                raise InvalidInputError(f"{name} must be a {'non-negative' if name == 'num_rows' else 'positive'} "
                                        f"integer, got {v!r}")
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise InvalidInputError(f"{path} exists; pass overwrite=True to replace it")
            if path.is_dir():
                shutil.rmtree(path)
            else:
                raise InvalidInputError(f"{path} exists and is not a directory")
        path.mkdir(parents=True)
        arr = np.lib.format.open_memmap(path / "data.npy", mode="w+", dtype=np.dtype(dtype),
                                        shape=(int(num_rows), int(dim)))
        del arr
        if dtype == "int8":
            sc = np.lib.format.open_memmap(path / "scales.npy", mode="w+", dtype=np.float32, shape=(int(num_rows),))
            del sc
        manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "rows": int(num_rows), "dim": int(dim),
                    "dtype": dtype, "complete": False}
        write_atomic(path / "manifest.json", json.dumps(manifest, indent=2))
        return cls(path, manifest, writable=True)

    @classmethod
    def from_array(cls, path: PathLike, x: Any, dtype: str = "float32", chunk_rows: int = 1 << 16,
                   overwrite: bool = False) -> "FeatureStore":
        """A store holding ``x`` ``[n, dim]`` (written in blocks of ``chunk_rows``), opened for reading."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise InvalidInputError(f"features must be 2-D [rows, dim], got shape {x.shape}")
        st = cls.create(path, x.shape[0], x.shape[1], dtype=dtype, overwrite=overwrite)
        for a in range(0, x.shape[0], chunk_rows):
            st.write(a, x[a:a + chunk_rows])
        return st.finish()

    @classmethod
    def open(cls, path: PathLike) -> "FeatureStore":
        """Open a finished store read-only (memory-mapped); damaged or unfinished stores raise
        :class:`CorruptFileError`."""
        path = Path(path)
        man = read_manifest(path, FORMAT_NAME, FORMAT_VERSION, "feature store")
        mpath = path / "manifest.json"
        if man.get("dtype") not in STORE_DTYPES or not isinstance(man.get("rows"), int) \
                or not isinstance(man.get("dim"), int):
            raise CorruptFileError(f"{mpath}: manifest fields are invalid")
        if not man.get("complete"):
            raise CorruptFileError(f"{path}: the store was not finished (its writer stopped before finish())")
        st = cls(path, man, writable=False)
        st._map()
        return st

    @classmethod
    def open_for_write(cls, path: PathLike) -> "FeatureStore":
        """Open a store made by :meth:`create` and not yet finished, to write rows (used by
        several writers at once, e.g. worker processes writing disjoint row blocks)."""
        path = Path(path)
        man = read_manifest(path, FORMAT_NAME, FORMAT_VERSION, "feature store")
        if man.get("complete"):
            raise InvalidInputError(f"{path} is finished; it is read-only")
        return cls(path, man, writable=True)

    def _map(self) -> None:
        try:
            data = np.load(self.path / "data.npy", mmap_mode="r", allow_pickle=False)
            scales = np.load(self.path / "scales.npy", mmap_mode="r", allow_pickle=False) \
                if self.dtype == "int8" else None
        except (ValueError, OSError) as exc:
            raise CorruptFileError(f"{self.path}: feature data unreadable ({exc})") from exc
        if data.shape != (self.num_rows, self.dim) or data.dtype != np.dtype(self.dtype):
            raise CorruptFileError(f"{self.path}: data.npy is {data.dtype} {data.shape}, manifest says "
                                   f"{self.dtype} {(self.num_rows, self.dim)}")
        if scales is not None and (scales.shape != (self.num_rows,) or scales.dtype != np.float32):
            raise CorruptFileError(f"{self.path}: scales.npy does not match the manifest")
        self._data, self._scales = data, scales

    # ------------------------------------------------------------------ writing
    def write(self, start: int, rows: Any) -> None:
        """Write ``rows`` ``[n, dim]`` (finite) at rows ``start .. start + n - 1``."""
        if not self._writable:
            raise InvalidInputError(f"{self.path}: the store is open read-only")
        x = np.asarray(rows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DimensionMismatchError(("n", self.dim), x.shape, "feature rows shape")
        start = int(start)
        if start < 0 or start + x.shape[0] > self.num_rows:
            raise InvalidInputError(f"rows {start}..{start + x.shape[0] - 1} are outside 0..{self.num_rows - 1}")
        if not np.isfinite(x).all():
            raise InvalidInputError("feature rows contain NaN or Inf")
        if self.dtype == "int8":
            q, scale = quantize_int8(x)
            self._pwrite("data.npy", self._offset, start, q)
            self._pwrite("scales.npy", _header_len(self.path / "scales.npy"), start, scale)
        else:
            self._pwrite("data.npy", self._offset, start, x.astype(self.dtype))

    def _pwrite(self, name: str, offset: int, start: int, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        row_bytes = arr.itemsize * (arr.shape[1] if arr.ndim == 2 else 1)
        fd = os.open(self.path / name, os.O_WRONLY)
        try:
            view = memoryview(arr).cast("B")
            pos = offset + start * row_bytes
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], pos + done)
        finally:
            os.close(fd)

    def finish(self) -> "FeatureStore":
        """Mark the store complete (after every row was written) and open it for reading."""
        if self._writable:
            for name in ("data.npy", "scales.npy"):
                fp = self.path / name
                if fp.exists():
                    fd = os.open(fp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            man = dict(self._manifest, complete=True)
            write_atomic(self.path / "manifest.json", json.dumps(man, indent=2))
            self._manifest = man
            self._writable = False
        self._map()
        return self

    # ------------------------------------------------------------------ reading
    @property
    def data(self) -> np.ndarray:
        """The raw stored array (storage dtype, memory-mapped)."""
        if self._data is None:
            self._map()
        return self._data

    @property
    def scales(self) -> np.ndarray | None:
        if self._data is None:
            self._map()
        return self._scales

    @property
    def nbytes(self) -> int:
        """Bytes of stored data (data plus scales)."""
        per = np.dtype(self.dtype).itemsize * self.dim + (4 if self.dtype == "int8" else 0)
        return int(self.num_rows) * per

    def __len__(self) -> int:
        return self.num_rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self.num_rows, self.dim)

    def read(self, idx: Any) -> np.ndarray:
        """Rows ``idx`` (int, slice or int array) as float32 ``[n, dim]``."""
        data = self.data
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
            idx = slice(int(idx), int(idx) + 1) if idx >= 0 else slice(int(idx), (int(idx) + 1) or None)
        if not isinstance(idx, slice):
            idx = np.asarray(idx)
            if idx.dtype.kind not in "iu" or idx.ndim != 1:
                raise InvalidInputError(f"row index must be an int, a slice or a 1-D int array, got {idx.dtype}")
            if idx.size and (idx.min() < -self.num_rows or idx.max() >= self.num_rows):
                raise InvalidInputError(f"row index out of range 0..{self.num_rows - 1}")
        if isinstance(idx, slice) or self.dtype == "float16":   # (Numba has no float16)
            rows = np.asarray(data[idx])
        else:
            from ..kernels.segment import gather_rows

            idx = np.where(idx < 0, idx + self.num_rows, idx).astype(np.int64)
            rows = gather_rows(data, idx)   # parallel row copy from the mapped file
        if self.dtype == "int8":
            return (rows.astype(np.float32) * np.asarray(self._scales[idx], dtype=np.float32)[:, None])
        return np.ascontiguousarray(rows, dtype=np.float32)

    __getitem__ = read

    def close(self) -> None:
        """Drop the mappings (the pages they held are released)."""
        self._data = None
        self._scales = None

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, rows={self.num_rows}, dim={self.dim}, dtype={self.dtype!r})"
