"""HNSW candidate index on hnswlib, with id mapping, filters, deletes and safe persistence.

Score direction (as hnswlib): ``search`` returns *distances*, smaller is closer.

============  =================================  ===========================
space         distance returned                  :meth:`HNSWIndex.to_similarity`
============  =================================  ===========================
``"cosine"``  ``1 - cos(q, x)``                  ``cos(q, x)``
``"ip"``      ``1 - <q, x>``                     ``<q, x>``
``"l2"``      ``||q - x||^2`` (squared)          ``-||q - x||^2``
============  =================================  ===========================

Ids are arbitrary int64 values or strings (not both in one index); they are mapped to
hnswlib's internal labels ``0..n-1`` here. Files are a directory holding ``manifest.json``,
``index.bin`` (hnswlib's format) and ``ids.npy``; the manifest records the format version,
the parameters and the sha256 of every file, and :meth:`HNSWIndex.load` checks all of it,
and parses the hnswlib header and link structure, before hnswlib ever sees the bytes.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
import threading
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Optional, Sequence, Union

import hnswlib
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import (
    CorruptFileError, DimensionMismatchError, FormatVersionError, InvalidInputError, RgaError, StorageError,
    UnknownIdError,
)
from ..fileio import (
    check_path, fsync_dir as _fsync_dir, read_npy_checked, sha256_file as _sha256, write_atomic as _write_atomic,
)
from ..validation import (
    MAX_SQ_NORM_F32, as_float_array, check_id_list, check_norm_bound, check_num_threads, check_positive_int,
    next_version,
)

Space = Literal["cosine", "ip", "l2"]
FilterArg = Union[None, Iterable[Any], Callable[[Any], bool]]

FORMAT_NAME = "ruvector-graph-attn/hnsw"
FORMAT_VERSION = 1
#: default ``ef`` at query time (hnswlib's own default is 10, far too low for recall);
#: chosen from ``benchmarks/index_bench.py``: recall@10 >= 0.95 on structured 100K x 128 data.
DEFAULT_EF = 128
#: allow-lists at most this large (or at most 5% of the index) are searched exactly
BRUTE_FORCE_FILTER_MAX = 4096

_HEADER = struct.Struct("<QQQQQQiIQQQdQ")
_INT64_MAX = 2 ** 63 - 1
#: hnswlib takes ``ef`` as a C size; beyond this it is an error, not a beam width
_MAX_EF = 2 ** 31 - 1
#: hnswlib levels are ~ -ln(U) / ln(M): above this a file is crafted, not built
_MAX_LEVEL = 64


class IndexManifest(BaseModel):
    """What ``manifest.json`` holds (validated on load)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["ruvector-graph-attn/hnsw"]
    version: int
    dim: int = Field(gt=0)
    space: Space
    M: int = Field(gt=1)
    ef_construction: int = Field(gt=0)
    ef: int = Field(gt=0)
    count: int = Field(ge=0)
    deleted: int = Field(ge=0)
    id_kind: Literal["int", "str"]
    files: dict[str, dict[str, Any]]
    #: sha256 of the other fields (canonical JSON), so an edited ``space`` or ``ef`` is noticed
    manifest_sha256: Optional[str] = None


class HNSWIndex:
    """An approximate nearest-neighbour index (HNSW, via hnswlib).

    Args:
        dim: vector dimension.
        space: ``"cosine"`` (default), ``"ip"`` or ``"l2"``; see the module table for distances.
        M: graph degree (hnswlib ``M``).
        ef_construction: build-time beam width.
        ef: default query beam width (``DEFAULT_EF``); ``search(..., ef=...)`` overrides it per call.
        max_elements: initial capacity; it grows automatically (doubling) as vectors are added.
        num_threads: threads for batch add/search (-1 = all cores).
        seed: hnswlib's random seed (level assignment), for reproducible builds.
    """

    def __init__(self, dim: int, space: Space = "cosine", M: int = 16, ef_construction: int = 200,
                 ef: int = DEFAULT_EF, max_elements: int = 1024, num_threads: int = -1, seed: int = 100):
        self.dim = check_positive_int(dim, "dim")
        if space not in ("cosine", "ip", "l2"):
            raise InvalidInputError(f"space must be 'cosine', 'ip' or 'l2', got {space!r}")
        self.space: Space = space
        self.M = check_positive_int(M, "M")
        if self.M < 2:
            raise InvalidInputError(f"M must be >= 2, got {M}")
        self.ef_construction = check_positive_int(ef_construction, "ef_construction")
        self.ef = check_positive_int(ef, "ef")
        self.num_threads = check_num_threads(num_threads)
        self.seed = check_positive_int(seed, "seed", allow_zero=True)
        self._index = hnswlib.Index(space=space, dim=self.dim)
        self._index.init_index(max_elements=max(16, check_positive_int(max_elements, "max_elements")),
                               M=self.M, ef_construction=self.ef_construction, random_seed=self.seed)
        self._index.set_ef(self.ef)
        self._id_kind: Optional[str] = None            # "int" | "str", fixed by the first add
        self._label_ids: list = []                     # label -> external id
        self._id_label: dict = {}                      # external id -> label (live or deleted)
        self._alive = np.zeros(0, dtype=bool)          # label -> not deleted
        self._lock = threading.RLock()                 # hnswlib's set_ef is global state
        self._version = next_version()

    # ------------------------------------------------------------------ ids
    def _normalise_ids(self, ids: Any, n: int | None = None) -> list:
        if ids is None:
            raise InvalidInputError("ids is None; expected an id, or a list/array of integer or string ids")
        if isinstance(ids, (str, bytes)) or np.isscalar(ids):
            ids = [ids]
        if isinstance(ids, np.ndarray):
            arr = ids
            if arr.ndim != 1:
                raise InvalidInputError(f"ids must be 1-D, got shape {arr.shape}")
            if arr.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
                raise InvalidInputError(f"ids must fit in int64; got {int(arr.max())}")
            if arr.dtype.kind in "iu":
                items: list = [int(v) for v in arr.astype(np.int64)]
            elif arr.dtype.kind in "UO":
                items = arr.tolist()
            else:
                raise InvalidInputError(f"ids must be integers or strings, got dtype {arr.dtype}")
        else:
            try:
                items = list(ids)
            except TypeError as exc:
                raise InvalidInputError(
                    f"ids must be an id or an iterable of ids, got {type(ids).__name__}") from exc
        out = check_id_list(items, "ids")
        if n is not None and len(out) != n:
            raise DimensionMismatchError(n, len(out), "number of ids (must equal number of vectors)")
        if not out:
            return []
        kind = "str" if isinstance(out[0], str) else "int"
        if self._id_kind is not None and kind != self._id_kind:
            raise InvalidInputError(
                f"this index holds {self._id_kind} ids; got {kind} ids (one index holds one kind)")
        return out

    def _ids_array(self, ids: Sequence) -> np.ndarray:
        if self._id_kind == "str":
            return np.asarray(ids, dtype=object)
        return np.asarray(ids, dtype=np.int64)

    # ------------------------------------------------------------------ build
    def add(self, ids: Any, vectors: Any) -> None:
        """Add (or replace) vectors under ``ids``. Capacity grows automatically.

        Re-adding a live id replaces its vector; re-adding a deleted id revives it with the
        new vector. Duplicate ids within one call are an error.
        """
        x = as_float_array(vectors, "vectors", ndim=(1, 2))
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, x.shape[1], "vector dimension")
        id_list = self._normalise_ids(ids, x.shape[0])
        if len(set(id_list)) != len(id_list):
            raise InvalidInputError("ids contain duplicates within one add() call")
        if self.space == "cosine":
            norms = np.linalg.norm(x.astype(np.float64), axis=1)
            if (norms == 0).any():
                bad = id_list[int(np.argmax(norms == 0))]
                raise InvalidInputError(f"zero vector for id {bad!r}: cosine space needs non-zero vectors")
        check_norm_bound(x, "vectors")
        with self._lock:
            if self._id_kind is None:
                self._id_kind = "int" if isinstance(id_list[0], int) else "str"
            labels = np.empty(len(id_list), dtype=np.int64)
            new_ids = []
            revive = []
            next_label = len(self._label_ids)
            for i, ext in enumerate(id_list):
                lab = self._id_label.get(ext)
                if lab is None:
                    lab = next_label
                    next_label += 1
                    new_ids.append(ext)
                elif not self._alive[lab]:
                    revive.append(lab)
                labels[i] = lab
            needed = next_label
            cap = self._index.get_max_elements()
            if needed > cap:
                self._index.resize_index(max(needed, 2 * cap))
            for lab in revive:
                self._index.unmark_deleted(int(lab))
            self._index.add_items(x.astype(np.float32, copy=False), labels.astype(np.uint64),
                                  num_threads=self.num_threads)
            for ext in new_ids:
                self._id_label[ext] = len(self._label_ids)
                self._label_ids.append(ext)
            alive = np.ones(len(self._label_ids), dtype=bool)
            alive[: self._alive.shape[0]] = self._alive
            alive[labels] = True
            self._alive = alive
            self._version = next_version()

    def delete(self, ids: Any) -> None:
        """Mark ids deleted: never returned by ``search`` again (until re-added)."""
        id_list = self._normalise_ids(ids)
        if len(set(id_list)) != len(id_list):
            raise InvalidInputError("ids contain duplicates within one delete() call")
        with self._lock:
            labs = self._labels_of(id_list, live_only=True)
            for lab in labs:  # bookkeeping follows hnswlib one label at a time
                self._index.mark_deleted(int(lab))
                self._alive[lab] = False
            self._version = next_version()

    def _labels_of(self, id_list: Sequence, live_only: bool = True) -> np.ndarray:
        missing = [i for i in id_list if i not in self._id_label
                   or (live_only and not self._alive[self._id_label[i]])]
        if missing:
            raise UnknownIdError(missing, "HNSW index")
        return np.asarray([self._id_label[i] for i in id_list], dtype=np.int64)

    # ------------------------------------------------------------------ read
    @property
    def version(self) -> int:
        """Changes on every :meth:`add` and :meth:`delete` (unique across indexes): results
        computed under one version are stale under another (the re-ranking cache uses it)."""
        return self._version

    def __len__(self) -> int:
        with self._lock:
            return int(self._alive.sum())

    def __contains__(self, item: Any) -> bool:
        try:
            lab = self._id_label.get(item.item() if isinstance(item, np.generic) else item)
        except TypeError:  # unhashable: never an id
            return False
        with self._lock:
            return lab is not None and bool(self._alive[lab])

    def ids(self) -> np.ndarray:
        """The live ids, in insertion order."""
        with self._lock:
            labs = np.flatnonzero(self._alive)
            return self._ids_array([self._label_ids[i] for i in labs])

    def get(self, ids: Any) -> np.ndarray:
        """Stored vectors ``[n, dim]`` float32 (for ``"cosine"`` hnswlib stores them normalised)."""
        id_list = self._normalise_ids(ids)
        if not id_list:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            labs = self._labels_of(id_list)
            return np.asarray(self._index.get_items(labs.astype(np.uint64), return_type="numpy"), dtype=np.float32)

    def to_similarity(self, dists: np.ndarray) -> np.ndarray:
        """Turn distances from :meth:`search` into similarities (larger is closer)."""
        d = np.asarray(dists)
        return (1.0 - d) if self.space in ("cosine", "ip") else -d

    def contains(self, ids: Iterable[Any]) -> np.ndarray:
        """``[n]`` bool: which ids are live in the index (one lock, one pass)."""
        get = self._id_label.get
        labs = []
        for i in ids:
            try:
                lab = get(i.item() if isinstance(i, np.generic) else i)
            except TypeError:  # unhashable: never an id
                lab = None
            labs.append(-1 if lab is None else lab)
        labs = np.asarray(labs, dtype=np.int64)
        out = labs >= 0
        with self._lock:
            out[out] = self._alive[labs[out]]
        return out

    # ------------------------------------------------------------------ search
    def _filter_labels(self, filter: FilterArg) -> Optional[np.ndarray]:
        """Boolean allow-mask over labels (``None`` = no filter)."""
        if filter is None:
            return None
        allow = np.zeros(len(self._label_ids), dtype=bool)
        if callable(filter):
            for lab in np.flatnonzero(self._alive):
                try:
                    allow[lab] = bool(filter(self._label_ids[lab]))
                except Exception as exc:
                    raise InvalidInputError(
                        f"the filter predicate raised {type(exc).__name__} for id {self._label_ids[lab]!r}: {exc}"
                    ) from exc
        else:
            if isinstance(filter, (str, bytes, dict)) or not isinstance(filter, (Iterable, np.ndarray)):
                raise InvalidInputError(
                    "filter must be a collection of ids (list, set, array) or a predicate id -> bool, "
                    f"got {type(filter).__name__} ({filter!r:.40})")
            if isinstance(filter, np.ndarray) and filter.ndim != 1:
                raise InvalidInputError(f"filter must be a 1-D collection of ids, got shape {filter.shape}")
            items = filter.tolist() if isinstance(filter, np.ndarray) else list(filter)
            for ext in items:
                try:
                    lab = self._id_label.get(ext)
                except TypeError as exc:
                    raise InvalidInputError(f"filter holds an unhashable id {ext!r:.40}; expected ids") from exc
                if lab is not None:
                    allow[lab] = True
        return allow & self._alive

    def search(self, queries: Any, k: int = 10, ef: Optional[int] = None,
               filter: FilterArg = None, num_threads: Optional[int] = None):
        """The ``k`` nearest live vectors to each query.

        Args:
            queries: ``[dim]`` (one query) or ``[B, dim]``.
            k: neighbours per query; when fewer than ``k`` vectors are eligible, only those are
                returned (the arrays are then shorter than ``k``).
            ef: beam width for this call (default :data:`DEFAULT_EF`, raised to ``k`` if lower).
            filter: an allow-list of ids, or a predicate ``id -> bool``. Small allow-lists are
                searched exactly (brute force over their vectors); larger ones by hnswlib's
                filtered search.

        Returns:
            ``(ids, dists)``: ``[k]`` arrays for one query, ``[B, k]`` for a batch; ids are int64
            (or object for string ids), distances as in the module table (smaller is closer).
        """
        q = as_float_array(queries, "queries", ndim=(1, 2))
        single = q.ndim == 1
        q2 = q.reshape(1, -1) if q.ndim == 1 else q
        if q2.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, q2.shape[1], "query dimension")
        k = check_positive_int(k, "k")
        ef_val = self.ef if ef is None else check_positive_int(ef, "ef")
        if ef_val > _MAX_EF:
            raise InvalidInputError(f"ef must be at most {_MAX_EF}, got {ef_val}")
        threads = self.num_threads if num_threads is None else check_num_threads(num_threads)
        check_norm_bound(q2, "queries", zero_ok=self.space != "cosine")
        with self._lock:  # ids, deletes and the filter are read as one consistent state
            return self._search_locked(q2, single, k, ef_val, threads, filter)

    def _search_locked(self, q2: np.ndarray, single: bool, k: int, ef_val: int, threads: int, filter: FilterArg):
        allow = self._filter_labels(filter)
        eligible = self._live_count() if allow is None else int(allow.sum())
        kk = min(k, eligible)
        if kk == 0:
            labels = np.zeros((q2.shape[0], 0), dtype=np.int64)
            dists = np.zeros((q2.shape[0], 0), dtype=np.float32)
        elif allow is not None and (eligible <= BRUTE_FORCE_FILTER_MAX or eligible <= 0.05 * len(self)):
            labels, dists = self._brute_force(q2, np.flatnonzero(allow), kk)
        else:
            labels, dists = self._hnsw_search(q2, kk, max(ef_val, kk), threads, allow)
        ids = self._label_array()[labels] if labels.size else self._ids_array([]).reshape(labels.shape)
        if single:
            return ids[0], dists[0]
        return ids, dists

    def _live_count(self) -> int:
        """``int(self._alive.sum())``, counted once per version of the index (a search would
        otherwise scan the whole mask: tens of microseconds at 100K vectors)."""
        got = getattr(self, "_live_cache", None)
        if got is None or got[0] != self._version or got[1] is not self._alive:
            got = (self._version, self._alive, int(self._alive.sum()))
            self._live_cache = got
        return got[2]

    def _label_array(self) -> np.ndarray:
        arr = getattr(self, "_label_cache", None)
        if arr is None or arr.shape[0] != len(self._label_ids):
            arr = self._ids_array(self._label_ids)
            self._label_cache = arr
        return arr

    def _hnsw_search(self, q: np.ndarray, k: int, ef: int, threads: int, allow: Optional[np.ndarray]):
        fn = None
        if allow is not None:
            allow_list = allow  # captured numpy bool array; hnswlib passes labels as ints
            fn = lambda label: bool(allow_list[label])  # noqa: E731
        with self._lock:
            self._index.set_ef(ef)
            try:
                while True:
                    try:
                        labels, dists = self._index.knn_query(q, k=k, num_threads=threads, filter=fn)
                        break
                    except RuntimeError:
                        # hnswlib could not fill k results (many deletes / a selective filter):
                        # widen the beam, and fall back to exact search when that is not enough.
                        if ef >= 4 * max(k, 64):
                            elig = np.flatnonzero(self._alive if allow is None else allow)
                            return self._brute_force(q, elig, k)
                        ef *= 2
                        self._index.set_ef(ef)
            finally:
                self._index.set_ef(self.ef)
        return labels.astype(np.int64), dists.astype(np.float32)

    def _brute_force(self, q: np.ndarray, labels: np.ndarray, k: int):
        vecs = np.asarray(self._index.get_items(labels.astype(np.uint64), return_type="numpy"), dtype=np.float32)
        qq = q.astype(np.float32)
        if self.space == "l2":
            d = (qq * qq).sum(1)[:, None] - 2.0 * qq @ vecs.T + (vecs * vecs).sum(1)[None, :]
            d = np.maximum(d, 0.0)
        elif self.space == "ip":
            d = 1.0 - qq @ vecs.T
        else:
            qn = qq / np.linalg.norm(qq, axis=1, keepdims=True)
            d = 1.0 - qn @ vecs.T  # stored vectors are already normalised
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else np.tile(np.arange(d.shape[1]), (d.shape[0], 1))
        pd = np.take_along_axis(d, part, 1)
        order = np.argsort(pd, axis=1, kind="stable")
        return labels[np.take_along_axis(part, order, 1)].astype(np.int64), np.take_along_axis(pd, order, 1).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the index to the directory ``path`` atomically.

        A crash at any moment leaves a loadable copy (the previous one or the new one):
        the new copy is written to a temporary folder next to ``path`` and renamed into
        place; the previous copy is only removed after the new one is in place, and a
        save interrupted between the two renames is recovered by the next ``save`` or
        ``load``. Temporary folders left by dead processes are removed. An existing
        directory that is not an index is never replaced (:class:`InvalidInputError`).
        """
        path = Path(check_path(path, "index path"))
        if not path.name or path.name in (".", ".."):
            raise InvalidInputError(f"{str(path)!r} is not a usable index directory name")
        parent = path.parent if str(path.parent) else Path(".")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder {str(parent)!r} for the index: {exc.strerror or exc}") from exc
        old = path.with_name(f".{path.name}.old")
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                raise InvalidInputError(f"{path} exists and is not an index directory; refusing to replace it")
            if not (path / "manifest.json").is_file() and any(path.iterdir()):
                raise InvalidInputError(
                    f"{path} is a non-empty directory without an index manifest; refusing to replace it")
        try:
            _recover_interrupted_save(path, old)
            _remove_stale_temporaries(parent, path.name)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=parent))
        except OSError as exc:
            raise StorageError(f"cannot write an index in {str(parent)!r}: {exc.strerror or exc}") from exc
        try:
            with self._lock:
                self._index.save_index(str(tmp / "index.bin"))
                ids_arr = np.asarray(self._label_ids, dtype=np.int64 if self._id_kind != "str" else str)
                if self._id_kind == "str" and len(self._label_ids) == 0:
                    ids_arr = np.zeros(0, dtype="<U1")
                np.save(tmp / "ids.npy", ids_arr, allow_pickle=False)
                np.save(tmp / "alive.npy", self._alive, allow_pickle=False)
                files = {name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                         for name in ("index.bin", "ids.npy", "alive.npy")}
                manifest = IndexManifest(
                    format=FORMAT_NAME, version=FORMAT_VERSION, dim=self.dim, space=self.space, M=self.M,
                    ef_construction=self.ef_construction, ef=self.ef, count=len(self._label_ids),
                    deleted=int((~self._alive).sum()), id_kind=self._id_kind or "int", files=files)
            body = manifest.model_dump(exclude={"manifest_sha256"})
            manifest.manifest_sha256 = _manifest_digest(body)
            _write_atomic(tmp / "manifest.json", manifest.model_dump_json(indent=2).encode())
            _fsync_dir(tmp)
            # `path` (if any) is complete: it was renamed into place whole, or recovered above
            if path.exists() and old.exists():
                shutil.rmtree(old)
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
            _fsync_dir(parent)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, RgaError):
                raise StorageError(f"cannot write the index to {str(path)!r}: {exc.strerror or exc}") from exc
            raise

    @classmethod
    def load(cls, path: Union[str, os.PathLike], dim: Optional[int] = None, space: Optional[str] = None,
             num_threads: int = -1, rebuild: bool = False) -> "HNSWIndex":
        """Load an index saved by :meth:`save`, verifying format, checksums and structure first.

        Every check runs in Python before hnswlib sees a byte: the manifest (schema, format
        version, sha256 of every file and of the manifest itself), the id tables, and the
        whole hnswlib file: header, record layout, the level of every element, every link
        at every level (in range, and pointing at an element that has that level), the entry
        point, the level multiplier, the deleted marks, the labels and the stored vectors
        (finite, unit length for ``"cosine"``). Anything wrong raises
        :class:`CorruptFileError` (:class:`FormatVersionError` for another format version).

        ``rebuild=True`` never hands the file to native code at all: the vectors and labels
        are read from the verified file with numpy and a fresh graph is built from them (the
        same ids and vectors; the graph, hence tie order among approximate results, can
        differ). Use it for files from sources you do not trust.

        ``dim``/``space``, when given, must match the file (else :class:`DimensionMismatchError`
        / :class:`InvalidInputError`).
        """
        path = Path(check_path(path, "index path"))
        if not path.name or path.name in (".", ".."):
            path = path.resolve()
        if not path.name:
            raise CorruptFileError(f"{str(path)!r} is not an index directory")
        old = path.with_name(f".{path.name}.old")
        if not path.exists() and old.is_dir():  # a save crashed between its two renames
            path = old
        mpath = path / "manifest.json"
        if not mpath.is_file():
            raise CorruptFileError(f"{path} is not an index directory (no manifest.json)")
        if mpath.stat().st_size > _MAX_MANIFEST_BYTES:
            raise CorruptFileError(f"{mpath}: manifest is {mpath.stat().st_size} bytes; not an index manifest")
        try:
            raw = json.loads(mpath.read_bytes())
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise CorruptFileError(f"{mpath}: manifest is not valid JSON ({type(exc).__name__}: {exc})") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {mpath}: {exc.strerror or exc}") from exc
        if isinstance(raw, dict) and raw.get("format") == FORMAT_NAME and raw.get("version") != FORMAT_VERSION:
            raise FormatVersionError(
                f"{path}: index format version {raw.get('version')!r}, this library reads version {FORMAT_VERSION}")
        try:
            man = IndexManifest.model_validate(raw)
        except ValidationError as exc:
            raise CorruptFileError(f"{mpath}: manifest is invalid: {exc.errors()[0]['msg']} "
                                   f"at {exc.errors()[0]['loc']}") from exc
        if dim is not None and check_positive_int(dim, "dim") != man.dim:
            raise DimensionMismatchError(int(dim), man.dim, "index dimension")
        if space is not None and space != man.space:
            raise InvalidInputError(f"index space is {man.space!r}, expected {space!r}")
        num_threads = check_num_threads(num_threads)
        for name in ("index.bin", "ids.npy", "alive.npy"):
            info = man.files.get(name)
            fp = path / name
            if info is None or not fp.is_file():
                raise CorruptFileError(f"{path}: {name} is missing")
            if fp.stat().st_size != info.get("bytes"):
                raise CorruptFileError(f"{fp}: size {fp.stat().st_size} != {info.get('bytes')} recorded (truncated?)")
            if _sha256(fp) != info.get("sha256"):
                raise CorruptFileError(f"{fp}: sha256 does not match the manifest (modified or damaged)")
        ids = read_npy_checked(path / "ids.npy", "index id table")
        alive = read_npy_checked(path / "alive.npy", "index live-id table")
        if ids.ndim != 1 or ids.shape[0] != man.count or alive.shape != ids.shape or alive.dtype != bool:
            raise CorruptFileError(f"{path}: id arrays do not match the manifest count {man.count}")
        kind = "str" if ids.dtype.kind == "U" else "int" if ids.dtype.kind in "iu" else None
        if kind != man.id_kind and ids.size:
            raise CorruptFileError(f"{path}: ids.npy holds {ids.dtype}, manifest says {man.id_kind}")
        if ids.dtype.kind == "u" and ids.size and int(ids.max()) > _INT64_MAX:
            raise CorruptFileError(f"{path}: ids.npy holds ids beyond int64")
        id_list = [int(v) for v in ids.tolist()] if kind == "int" else ids.tolist()
        if len(set(id_list)) != len(id_list):
            raise CorruptFileError(f"{path}: ids.npy contains duplicate ids")
        parsed = _check_hnswlib_file(path / "index.bin", man)
        if parsed["count"] and not np.array_equal(alive[parsed["labels"]], ~parsed["deleted"]):
            raise CorruptFileError(f"{path}: the deleted marks in index.bin disagree with alive.npy")
        if int((~alive).sum()) != man.deleted:
            raise CorruptFileError(f"{path}: alive.npy has {int((~alive).sum())} deleted ids, manifest says {man.deleted}")
        if man.manifest_sha256 != _manifest_digest(man.model_dump(exclude={"manifest_sha256"})):
            raise CorruptFileError(f"{mpath}: manifest checksum does not match its fields (edited or damaged)")
        obj = cls(dim=man.dim, space=man.space, M=man.M, ef_construction=man.ef_construction, ef=man.ef,
                  max_elements=max(parsed["count"], 16), num_threads=num_threads)
        if rebuild:
            if parsed["count"]:
                labels = parsed["labels"].astype(np.uint64)
                obj._index.add_items(parsed["vectors"], labels, num_threads=num_threads)
                for lab in labels[parsed["deleted"]]:
                    obj._index.mark_deleted(int(lab))
        else:
            obj._index = hnswlib.Index(space=man.space, dim=man.dim)
            # capacity from the verified element count, never from the file's own field
            obj._index.load_index(str(path / "index.bin"), max_elements=max(parsed["count"], 16))
        obj._index.set_ef(man.ef)
        obj._id_kind = man.id_kind if man.count else None
        obj._label_ids = id_list
        obj._id_label = {v: i for i, v in enumerate(id_list)}
        obj._alive = alive.copy()
        return obj

    def __repr__(self) -> str:
        return (f"HNSWIndex(dim={self.dim}, space={self.space!r}, M={self.M}, "
                f"ef_construction={self.ef_construction}, ef={self.ef}, size={len(self)})")


# ---------------------------------------------------------------------- file helpers
_MAX_MANIFEST_BYTES = 1 << 20


def _manifest_digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _recover_interrupted_save(path: Path, old: Path) -> None:
    """A save that died between its two renames left only ``.name.old``: put it back."""
    if not path.exists() and old.is_dir():
        os.replace(old, path)


def _remove_stale_temporaries(parent: Path, name: str) -> None:
    """Remove ``.name.tmp-PID-*`` folders whose writing process is gone."""
    prefix = f".{name}.tmp-"
    for entry in parent.glob(glob_escape(prefix) + "*"):
        pid_text = entry.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or not entry.is_dir():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running (maybe saving right now)
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError, OSError):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _check_hnswlib_file(fp: Path, man: IndexManifest) -> dict:
    """Parse hnswlib's whole file in numpy, so malformed bytes never reach hnswlib.

    Returns the element count, labels, deleted marks and vectors (float32 ``[n, dim]``).
    """
    data = fp.read_bytes()
    if len(data) < _HEADER.size:
        raise CorruptFileError(f"{fp}: too short for an hnswlib index ({len(data)} bytes)")
    (off_l0, max_el, cur, size_el, label_off, off_data, maxlevel, enter,
     maxM, maxM0, M, mult, efc) = _HEADER.unpack_from(data, 0)
    links0 = maxM0 * 4 + 4
    problems = []
    if off_l0 != 0:
        problems.append("level-0 offset")
    if cur != man.count or cur > max_el:
        problems.append(f"element count {cur} (manifest {man.count}, capacity {max_el})")
    if M != man.M or maxM != M or maxM0 != 2 * M:
        problems.append(f"M={M}/maxM={maxM}/maxM0={maxM0} (manifest M={man.M})")
    if off_data != links0 or label_off != off_data + 4 * man.dim or size_el != label_off + 8:
        problems.append(f"record layout (element size {size_el}) does not fit dim={man.dim}")
    if efc != man.ef_construction:
        problems.append(f"ef_construction {efc} (manifest {man.ef_construction})")
    if not (math.isfinite(mult) and M > 1 and abs(mult - 1.0 / math.log(M)) <= 1e-9 * (1.0 / math.log(M))):
        problems.append(f"level multiplier {mult!r} (hnswlib uses 1/ln(M))")
    if cur == 0:
        if maxlevel != -1 or enter != 0xFFFFFFFF:
            problems.append("entry point / max level of an empty index")
    elif not (0 <= maxlevel < _MAX_LEVEL) or enter >= cur:
        problems.append("entry point / max level")
    if problems:
        raise CorruptFileError(f"{fp}: not a valid hnswlib index for this manifest: " + "; ".join(problems))
    start = _HEADER.size
    end0 = start + cur * size_el
    if len(data) < end0:
        raise CorruptFileError(f"{fp}: truncated in the level-0 block")
    empty = {"max_elements": max_el, "count": 0, "labels": np.zeros(0, np.int64),
             "deleted": np.zeros(0, bool), "vectors": np.zeros((0, man.dim), np.float32)}
    if cur == 0:
        if len(data) != end0:
            raise CorruptFileError(f"{fp}: {len(data) - end0} unexpected trailing bytes")
        return empty
    block = np.frombuffer(data, dtype=np.uint8, count=cur * size_el, offset=start).reshape(cur, size_el)
    counts = block[:, :2].copy().view(np.uint16).ravel()  # byte 2 holds the deleted mark
    deleted = (block[:, 2] & 1).astype(bool)
    nbrs = block[:, 4:links0].copy().view(np.uint32)
    vectors = block[:, off_data:label_off].copy().view(np.float32)
    labels = block[:, label_off:label_off + 8].copy().view(np.uint64).ravel()
    if (counts > maxM0).any():
        raise CorruptFileError(f"{fp}: a level-0 link list is longer than maxM0")
    used = np.arange(maxM0)[None, :] < counts[:, None]
    if (nbrs[used] >= cur).any():
        raise CorruptFileError(f"{fp}: a level-0 link points outside the index")
    if (labels >= man.count).any() or np.unique(labels).shape[0] != cur:
        raise CorruptFileError(f"{fp}: labels are not a permutation of the id table")
    if not np.isfinite(vectors).all():
        raise CorruptFileError(f"{fp}: a stored vector contains NaN or Inf")
    sq = np.einsum("ij,ij->i", vectors.astype(np.float64), vectors.astype(np.float64))
    if float(sq.max()) > MAX_SQ_NORM_F32:
        raise CorruptFileError(f"{fp}: a stored vector is too large for float32 distances")
    if man.space == "cosine" and (np.abs(np.sqrt(sq) - 1.0) > 1e-3).any():
        raise CorruptFileError(f"{fp}: stored vectors are not unit length, so this is not a cosine index")
    # upper levels: element i has level size_i / per_level; its lists at levels 1..L follow
    per_level = maxM * 4 + 4
    levels = np.zeros(cur, dtype=np.int64)
    starts: list[int] = []
    owners: list[int] = []
    pos = end0
    for i in range(cur):
        if pos + 4 > len(data):
            raise CorruptFileError(f"{fp}: truncated in the upper-level link lists")
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if size % per_level or size // per_level > maxlevel:
            raise CorruptFileError(f"{fp}: malformed upper-level link list of element {i}")
        if size:
            if pos + size > len(data):
                raise CorruptFileError(f"{fp}: truncated in the upper-level link lists")
            levels[i] = size // per_level
            starts.append(pos)
            owners.append(i)
        pos += size
    if pos != len(data):
        raise CorruptFileError(f"{fp}: {len(data) - pos} unexpected trailing bytes")
    if int(levels.max()) != maxlevel or levels[enter] != maxlevel:
        raise CorruptFileError(f"{fp}: the entry point {enter} does not have the top level {maxlevel}")
    if starts:
        raw = np.frombuffer(data, dtype=np.uint8)
        rows = []
        for p0, own in zip(starts, owners):
            rows.append(raw[p0:p0 + int(levels[own]) * per_level].view(np.uint32).reshape(-1, maxM + 1))
        lists = np.concatenate(rows)
        level_of_row = np.concatenate([np.arange(1, levels[o] + 1) for o in owners])
        lcount = lists[:, 0] & 0xFFFF
        if (lcount > maxM).any():
            raise CorruptFileError(f"{fp}: an upper-level link list is longer than maxM")
        used = np.arange(maxM)[None, :] < lcount[:, None]
        targets = lists[:, 1:][used]
        if (targets >= cur).any():
            raise CorruptFileError(f"{fp}: an upper-level link points outside the index")
        need = np.broadcast_to(level_of_row[:, None], used.shape)[used]
        if (levels[targets.astype(np.int64)] < need).any():
            raise CorruptFileError(f"{fp}: an upper-level link points at an element without that level")
    return {"max_elements": max_el, "count": cur, "labels": labels.astype(np.int64),
            "deleted": deleted, "vectors": np.ascontiguousarray(vectors)}
