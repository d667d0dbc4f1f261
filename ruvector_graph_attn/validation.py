"""Shape, dtype, finiteness and size checks used at every public entry.

Conventions (DESIGN.md): arrays are float32 by default, float64 is accepted and kept;
lists are converted once here; nothing is clipped or reshaped silently.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import DimensionMismatchError, InputTooLargeError, InvalidInputError

#: Default limit on the number of keys / candidates one call may take (seed section 8.1).
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
    if finite and out.size and not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise InvalidInputError(
            f"{name} contains NaN or Inf (first at index {tuple(int(i) for i in bad)}); expected finite values"
        )
    return out


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
    arr = np.asarray(edge_index) if edge_index is not None else None
    if arr is None:
        raise InvalidInputError(f"{name} is None; expected an int64 array of shape [2, E]")
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


def check_positive_int(value: Any, name: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < 0 or (v == 0 and not allow_zero):
        raise InvalidInputError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v}")
    return v


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


_VERSIONS = __import__("itertools").count(1)


def next_version() -> int:
    """A process-wide increasing number: the ``version`` an index or graph snapshot takes on
    each change, unique across objects (so two objects never share a version)."""
    return next(_VERSIONS)
