"""Atomic file writes and checksums, shared by every file the library writes
(indexes, checkpoints, metrics and benchmark outputs): temp file in the same folder,
fsync, ``os.replace``; a crash leaves the old file or the new one, never half of one."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Union

from .errors import CorruptFileError, InvalidInputError, StorageError

PathLike = Union[str, "os.PathLike[str]"]


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: PathLike, data: Union[bytes, str]) -> None:
    """Write ``data`` to ``path`` atomically (the folder must exist)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InvalidInputError(f"folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise InvalidInputError(f"{path!r} is a directory; expected a file path")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise StorageError(f"cannot write in {folder!r}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise StorageError(f"cannot write {path!r}: {exc.strerror or exc}") from exc
        raise


def write_json_atomic(path: PathLike, payload: Any, indent: int = 2) -> None:
    write_atomic(path, json.dumps(payload, indent=indent) + "\n")


def fsync_dir(path: PathLike) -> None:
    """Flush a directory entry (after renames); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: largest .npy header numpy itself accepts without ``max_header_size``
_NPY_MAX_HEADER = 10000


def read_npy_checked(source: Union[PathLike, bytes], what: str, error: type = CorruptFileError):
    """Read a ``.npy`` (path or bytes) without pickles and without trusting its header.

    The header is parsed first; the array is read only when its dtype is plain numeric,
    bool or unicode and the declared shape times the item size equals the bytes that
    follow, so a header declaring terabytes never allocates anything. Problems raise
    ``error`` (default :class:`CorruptFileError`) naming ``what``.
    """
    import io

    import numpy as np
    from numpy.lib import format as npf

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = what
    else:
        label = f"{what} {os.fspath(source)!r}"
        data = _read_bytes(source, label, error)
    if not data:
        raise error(f"{label} is empty (0 bytes); expected a .npy array")
    fh = io.BytesIO(data)
    try:
        version = npf.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(fh, max_header_size=_NPY_MAX_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npf.read_array_header_2_0(fh, max_header_size=_NPY_MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, EOFError, SyntaxError, TypeError, OverflowError, RecursionError) as exc:
        raise error(f"{label} is not a valid .npy array ({exc})") from exc
    if dtype.hasobject or dtype.kind not in "biufU" or dtype.fields is not None or dtype.subdtype is not None:
        raise error(f"{label} holds dtype {dtype}; only plain numbers, bools or unicode are read (never pickles)")
    count = 1
    for d in shape:
        count *= int(d)
    if count * dtype.itemsize != len(data) - fh.tell():
        raise error(f"{label}: header declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes) but "
                    f"{len(data) - fh.tell()} bytes follow (truncated or crafted)")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=fh.tell())
    arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
    return np.array(arr, copy=True)


def read_text_file(path: PathLike, what: str) -> str:
    """A UTF-8 text file's contents; binary or unreadable files raise a typed error naming ``what``."""
    data = _read_bytes(path, f"{what} file {os.fspath(path)!r}", InvalidInputError)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{what} file {os.fspath(path)!r} is not UTF-8 text (binary at byte {exc.start})") from exc


def _read_bytes(path: PathLike, label: str, error: type) -> bytes:
    """A file's bytes; a directory raises ``error``, other OS errors :class:`StorageError`."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except IsADirectoryError as exc:
        raise error(f"{label} is a directory, not a file") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {label}: {exc.strerror or exc}") from exc


def check_path(path: Any, what: str) -> str:
    """``path`` as a string: a ``str`` or ``os.PathLike`` without NUL bytes, not empty."""
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"{what} must be a path (str or os.PathLike), got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\0" in text:
        raise InvalidInputError(f"{what} must be a non-empty path without NUL bytes, got {text!r:.80}")
    return text
