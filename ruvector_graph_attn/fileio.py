"""Atomic file writes and checksums, shared by every file the library writes
(indexes, checkpoints, metrics and benchmark outputs): temp file in the same folder,
fsync, ``os.replace``; a crash leaves the old file or the new one, never half of one."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Union

from .errors import InvalidInputError

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
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
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
