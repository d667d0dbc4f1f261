"""Shape, dtype, finiteness and size checks used at every public entry.

Conventions: arrays are float32 by default, float64 is accepted and kept;
lists are converted once here; nothing is clipped or reshaped silently.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Sequence

import numpy as np

from .errors import DimensionMismatchError, InputTooLargeError, InvalidInputError

#: Default limit on the number of keys / candidates one call may take.
DEFAULT_MAX_KEYS = 100_000

_FLOAT_KINDS = "fiub"  # float, signed/unsigned int, bool are numeric and convertible


def _dtype_for(arr: np.ndarray, dtype: Any) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    if arr.dtype.kind == "f" and arr.dtype.itemsize == 8:  # float64 in either byte order is kept
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def as_float_array(
    x: Any,
    name: str,
    ndim: int | Sequence[int] | None = None,
    dtype: Any = None,
    allow_empty: bool = False,
    finite: bool = True,
    shape: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Convert ``x`` to a C-contiguous float array and check it.

    ``dtype=None`` keeps float64 and turns everything else numeric into float32.
    ``shape`` may contain ``None`` for free axes. Raises :class:`InvalidInputError`
    (or :class:`DimensionMismatchError`) with a message naming ``name``.
    """
    if x is None:
        raise InvalidInputError(f"{name} is None; expected a numeric array")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InvalidInputError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object:
        raise InvalidInputError(
            f"{name} is not a rectangular numeric array (ragged or mixed types); "
            "expected equal-length rows of numbers"
        )
    if arr.dtype.kind not in _FLOAT_KINDS:
        raise InvalidInputError(f"{name} has non-numeric dtype {arr.dtype}; expected float32 or float64")
    if arr.dtype.kind == "c":
        raise InvalidInputError(f"{name} is complex; expected real numbers")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise InvalidInputError(f"{name} must be {want}, got {arr.ndim}-D with shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape):
            raise InvalidInputError(f"{name} must have {len(shape)} axes, got shape {arr.shape}")
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise DimensionMismatchError(want, got, f"{name} axis {axis}")
    if not allow_empty and arr.size == 0:
        raise InvalidInputError(f"{name} is empty (shape {arr.shape}); expected at least one element")
    out = np.ascontiguousarray(arr, dtype=_dtype_for(arr, dtype))
    if finite and out.size and not _TRUSTED.get() and not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise InvalidInputError(
            f"{name} contains NaN or Inf (first at index {tuple(int(i) for i in bad)}); expected finite values"
        )
    return out


#: set inside :func:`trusted_arrays`: the finiteness scan of :func:`as_float_array` is skipped
_TRUSTED: ContextVar[bool] = ContextVar("rga_trusted_arrays", default=False)


@contextmanager
def trusted_arrays() -> Iterator[None]:
    """Within the block :func:`as_float_array` still converts and checks shapes and dtypes
    but skips the O(size) NaN/Inf scan. A model container enters it after validating the
    user's inputs once at its boundary, so the internal tensors its children pass each
    other (derived from checked inputs) are not rescanned on every call."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def check_finite(x: Any, name: str) -> None:
    """Raise :class:`InvalidInputError` when the float array ``x`` holds NaN or Inf (always scans)."""
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidInputError(
            f"{name} contains NaN or Inf (first at index {tuple(int(i) for i in bad)}); expected finite values")


def as_index_array(x: Any, name: str, ndim: int = 1, allow_empty: bool = True) -> np.ndarray:
    """Convert to a C-contiguous int64 array; floats, bools and objects are refused."""
    if x is None:
        raise InvalidInputError(f"{name} is None; expected an integer array")
    arr = np.asarray(x)
    if arr.size == 0 and arr.dtype.kind == "f" and arr.ndim == ndim:
        arr = arr.astype(np.int64)  # np.asarray([]) is float64; an empty list is fine
    if arr.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must have an integer dtype, got {arr.dtype}")
    if arr.ndim != ndim:
        raise InvalidInputError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise InvalidInputError(f"{name} is empty; expected at least one element")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise InvalidInputError(f"{name} has values beyond int64")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_edge_index(edge_index: Any, num_nodes: int, name: str = "edge_index") -> np.ndarray:
    """Validate a PyG-style ``[2, E]`` integer edge index against ``num_nodes``."""
    if edge_index is None:
        raise InvalidInputError(f"{name} is None; expected an int64 array of shape [2, E]")
    try:
        arr = np.asarray(edge_index)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InvalidInputError(f"{name} is not a rectangular [2, E] integer array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[0] != 2:
        raise InvalidInputError(f"{name} must have shape [2, E], got {arr.shape}")
    ei = as_index_array(arr, name, ndim=2)
    if ei.size:
        lo, hi = int(ei.min()), int(ei.max())
        if lo < 0:
            raise InvalidInputError(f"{name} contains a negative node index ({lo}); expected 0..{num_nodes - 1}")
        if hi >= num_nodes:
            raise InvalidInputError(
                f"{name} references node {hi} but there are only {num_nodes} nodes (expected 0..{num_nodes - 1})"
            )
    return ei


def check_size(actual: int, limit: int | None, what: str) -> None:
    """Raise :class:`InputTooLargeError` when ``actual > limit`` (``None`` = unlimited)."""
    if limit is not None and actual > limit:
        raise InputTooLargeError(limit, actual, what)


def check_dim(expected: int, actual: int, what: str) -> None:
    if expected != actual:
        raise DimensionMismatchError(expected, actual, what)


def _bounds(lo: Any, hi: Any, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    return f" {'<' if hi_open else '<='} {hi}" if hi is not None else ""


def is_integer(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, lo: int | None = None, hi: int | None = None,
              error: type = InvalidInputError) -> int:
    """An integer (Python or numpy; bools and floats refused) in ``[lo, hi]`` (``None``: unbounded)."""
    if not is_integer(value):
        raise error(f"{name} must be an integer{_bounds(lo, hi)}, got {value!r} ({type(value).__name__})")
    v = int(value)
    if v > 2 ** 63 - 1 or v < -2 ** 63:
        raise error(f"{name} must fit in int64, got {v}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise error(f"{name} must be an integer{_bounds(lo, hi)}, got {v}")
    return v


def check_float(value: Any, name: str, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False, error: type = InvalidInputError) -> float:
    """A finite real number (bools refused) in the interval ``lo..hi`` (open ends as asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise error(f"{name} must be a finite number{_bounds(lo, hi, lo_open, hi_open)}, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or (lo is not None and (v < lo or (lo_open and v == lo))) \
            or (hi is not None and (v > hi or (hi_open and v == hi))):
        raise error(f"{name} must be a finite number{_bounds(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def check_positive_int(value: Any, name: str, allow_zero: bool = False) -> int:
    """An integer > 0 (``allow_zero``: >= 0)."""
    return check_int(value, name, lo=0 if allow_zero else 1)


def check_mask(mask: Any, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """A boolean mask of exactly ``shape`` (True = allowed)."""
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise InvalidInputError(f"{name} must be boolean (True = attend), got dtype {m.dtype}")
    if m.shape != tuple(shape):
        raise DimensionMismatchError(tuple(shape), m.shape, f"{name} shape")
    return np.ascontiguousarray(m)


def attention_inputs(query: Any, keys: Any, values: Any, max_keys: int | None = DEFAULT_MAX_KEYS,
                     query_ndim: int = 1, dtype: Any = None):
    """Validate (query/queries, keys, values) for attention; returns arrays of one float dtype."""
    q = as_float_array(query, "queries" if query_ndim == 2 else "query", ndim=query_ndim, dtype=dtype)
    k = as_float_array(keys, "keys", ndim=2, dtype=dtype)
    v = as_float_array(values, "values", ndim=2, dtype=dtype)
    if k.shape[0] != v.shape[0]:
        raise DimensionMismatchError(k.shape[0], v.shape[0], "number of values (must equal number of keys)")
    if q.shape[-1] != k.shape[1]:
        raise DimensionMismatchError(k.shape[1], q.shape[-1], "query dimension (must equal key dimension)")
    check_size(k.shape[0], max_keys, "number of keys")
    common = np.result_type(q.dtype, k.dtype, v.dtype)
    return q.astype(common, copy=False), k.astype(common, copy=False), v.astype(common, copy=False)


def check_positive_float(value: Any, name: str, error: type = InvalidInputError, note: str = "") -> float:
    """A finite number > 0 (bools refused); ``note`` is appended to the message (e.g. a unit)."""
    if isinstance(value, bool):
        raise error(f"{name} must be a positive number, got a bool")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{name} must be a positive number, got {value!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise error(f"{name} must be a positive finite number{note}, got {value!r}")
    return v


# -- ids, plain numbers and finite-range checks (reliability) --------------------------------
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def check_id_list(items: Sequence[Any], name: str = "ids") -> list:
    """A list of external ids, all integers within int64 or all strings (never both, never
    bools, never converted silently: ``[1, "a"]`` is refused, not stored as ``["1", "a"]``)."""
    out: list = []
    kinds = set()
    for v in items:
        if isinstance(v, (bool, np.bool_)):
            raise InvalidInputError(f"{name} must be integers or strings, got a bool ({v!r})")
        if isinstance(v, (int, np.integer)):
            iv = int(v)
            if not _INT64_MIN <= iv <= _INT64_MAX:
                raise InvalidInputError(f"{name} must fit in int64; got {iv}")
            out.append(iv)
            kinds.add("int")
        elif isinstance(v, (str, np.str_)):
            out.append(str(v))
            kinds.add("str")
        else:
            raise InvalidInputError(f"{name} must be integers or strings, got {type(v).__name__} ({v!r:.40})")
        if len(kinds) > 1:
            raise InvalidInputError(f"{name} mix integers and strings; one call (and one index) holds one kind")
    return out


def check_num_threads(value: Any, name: str = "num_threads") -> int:
    """``-1`` (all cores) or a positive integer."""
    if check_int(value, f"{name} (-1: all cores)", lo=-1) == 0:
        raise InvalidInputError(f"{name} must be -1 (all cores) or a positive integer, got 0")
    return int(value)


#: vectors whose squared norm exceeds this overflow float32 dot products and distances
#: (``||q - x||^2 <= 2 (||q||^2 + ||x||^2)`` must stay below float32's max)
MAX_SQ_NORM_F32 = float(np.finfo(np.float32).max) / 8.0


def check_norm_bound(x: np.ndarray, name: str, zero_ok: bool = True) -> None:
    """Refuse rows of ``x`` ([n, d]) whose float32 products would overflow (squared norm above
    :data:`MAX_SQ_NORM_F32`), and zero rows unless ``zero_ok``."""
    sq = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
    if sq.size and float(sq.max()) > MAX_SQ_NORM_F32:
        i = int(np.argmax(sq))
        raise InvalidInputError(
            f"{name} row {i} has norm {np.sqrt(sq[i]):.3g}, too large for float32 distances "
            f"(limit {np.sqrt(MAX_SQ_NORM_F32):.3g}); rescale the vectors")
    if not zero_ok and sq.size and (sq == 0).any():
        raise InvalidInputError(f"{name} row {int(np.argmax(sq == 0))} is a zero vector: cosine space needs non-zero vectors")


def check_finite_result(out: Any, what: str, stage: str = "output") -> Any:
    """``out`` (an array, or a tuple whose first item is one) unchanged when finite; otherwise
    :class:`InvalidInputError`: finite inputs gave Inf/NaN, i.e. float32 overflowed."""
    arr = out[0] if isinstance(out, tuple) else out
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise InvalidInputError(
            f"{what}: the {stage} overflowed to Inf/NaN although the inputs are finite; the inputs or "
            f"weights are too large for {arr.dtype} (rescale the features, or use float64)")
    return out


def safe_ndim(x: Any) -> int:
    """``np.ndim(x)``, or ``-1`` when ``x`` is not array-like (ragged lists): the caller's
    array check then raises the typed error."""
    try:
        return int(np.ndim(x))
    except (ValueError, TypeError):
        return -1
_VERSIONS = __import__("itertools").count(1)


def next_version() -> int:
    """A process-wide increasing number: the ``version`` an index or graph snapshot takes on
    each change, unique across objects (so two objects never share a version)."""
    return next(_VERSIONS)
