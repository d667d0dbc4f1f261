"""One exception hierarchy for the whole library.

Every public entry raises a subclass of :class:`RgaError`; most also subclass the
matching built-in (``ValueError``, ``KeyError``, ...) so generic handlers keep working.
"""
from __future__ import annotations

from typing import Any


class RgaError(Exception):
    """Base class of every error raised by ruvector-graph-attn."""


class InvalidInputError(RgaError, ValueError):
    """An argument has the wrong type, rank, dtype, or contains NaN/Inf, or is empty."""


class DimensionMismatchError(InvalidInputError):
    """Two sizes that must agree do not. ``expected`` and ``actual`` hold the sizes."""

    def __init__(self, expected: Any, actual: Any, what: str = "dimension"):
        self.expected = expected
        self.actual = actual
        self.what = what
        super().__init__(f"{what} mismatch: expected {expected}, got {actual}")


class InputTooLargeError(InvalidInputError):
    """An input is over a configured size limit. ``max`` and ``actual`` hold the sizes."""

    def __init__(self, max: int, actual: int, what: str = "input size"):  # noqa: A002
        self.max = max
        self.actual = actual
        self.what = what
        super().__init__(
            f"{what} too large: {actual} exceeds the limit of {max} "
            f"(raise the limit in the config if this is intended)"
        )


class UnknownIdError(RgaError, KeyError):
    """One or more ids are not known to an index or a graph source."""

    def __init__(self, ids: Any, where: str = "index"):
        ids = list(ids) if not isinstance(ids, (str, bytes)) else [ids]
        self.ids = ids
        shown = ", ".join(repr(i) for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
        super().__init__(f"unknown id(s) in {where}: {shown}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class StateDictError(RgaError, KeyError):
    """A state_dict has missing, unexpected or wrongly shaped entries."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


class CorruptFileError(RgaError, OSError):
    """A file written by the library is truncated, tampered with, or not ours."""


class FormatVersionError(CorruptFileError):
    """A file was written by an incompatible format version."""


class ConfigError(InvalidInputError):
    """A configuration value is invalid."""


class NotFittedError(RgaError, RuntimeError):
    """An operation needs state (a forward pass, a trained layer, a built index) that is absent."""


class GraphSourceError(RgaError, RuntimeError):
    """A graph source (NetworkX, Neo4j) failed or returned something unusable."""


class ConnectionFailedError(GraphSourceError, ConnectionError):
    """A database could not be reached."""


class Neo4jServerError(GraphSourceError):
    """The embedded Neo4j test server could not be built, started or stopped (the message says why)."""


class UnsafeNameError(InvalidInputError):
    """A label, relationship type or property name failed the strict name check."""


class ExportError(RgaError, ValueError):
    """A model (or one of its modules) has no form in the requested export format."""


class StorageError(RgaError, OSError):
    """A file or folder could not be read or written (missing folder, permissions, disk full,
    a directory where a file was expected). The message names the path and the reason."""


class ThreadingLayerError(ConfigError):
    """The configured Numba threading layer cannot be used safely by this library."""


__all__ = [
    "RgaError", "InvalidInputError", "DimensionMismatchError", "InputTooLargeError",
    "UnknownIdError", "StateDictError", "CorruptFileError", "FormatVersionError",
    "ConfigError", "NotFittedError", "GraphSourceError", "ConnectionFailedError",
    "UnsafeNameError", "ExportError", "StorageError", "ThreadingLayerError", "Neo4jServerError",
]


class AuthenticationError(RgaError, PermissionError):
    """A request to the service carried no bearer token or a wrong one (the token is never shown)."""


class RequestTimeoutError(RgaError, TimeoutError):
    """A service request did not finish within the configured per-request time limit."""


__all__ += ["AuthenticationError", "RequestTimeoutError"]
