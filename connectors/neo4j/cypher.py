"""Cypher name safety: labels, relationship types and property names.

Names cannot be Cypher parameters, so they are the one place where user text is spliced into
a query. Every name goes through :func:`quote`: it must match :data:`NAME_PATTERN` -- an ASCII
letter or underscore, then up to 63 ASCII letters, digits or underscores -- and is then wrapped
in backticks. Anything else (spaces, backticks, quotes, unicode, an empty string, a leading
digit) raises :class:`~ruvector_graph_attn.UnsafeNameError` before any query is sent. Names
starting with ``_rga`` are reserved for the connector's own bookkeeping. Values are never
spliced: every value is a query parameter.
"""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence
from urllib.parse import urlsplit, urlunsplit

from ruvector_graph_attn.errors import UnsafeNameError

__all__ = ["NAME_PATTERN", "check_name", "quote", "rel_type_pattern", "safe_uri"]

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def check_name(name: Any, what: str = "name") -> str:
    """``name`` if it matches :data:`NAME_PATTERN`, else :class:`UnsafeNameError`."""
    if not isinstance(name, str) or NAME_PATTERN.match(name) is None:
        shown = repr(name) if not isinstance(name, str) or len(name) <= 80 else repr(name[:80] + "...")
        raise UnsafeNameError(
            f"{what} {shown} is not allowed: expected an ASCII letter or '_' followed by up to 63 "
            f"ASCII letters, digits or '_' (no spaces, quotes, backticks or unicode)")
    return name


def quote(name: Any, what: str = "name") -> str:
    """The backtick-quoted Cypher identifier of a checked name."""
    return f"`{check_name(name, what)}`"


def rel_type_pattern(types: Optional[Sequence[str]]) -> str:
    """``:`A`|`B``` for a relationship pattern, or ``""`` for any type."""
    if types is None:
        return ""
    if isinstance(types, str):
        types = [types]
    types = list(types)
    if not types:
        return ""
    return ":" + "|".join(quote(t, "relationship type") for t in types)


def safe_uri(uri: Any) -> str:
    """The URI with any ``user:password@`` part removed (for messages and reprs)."""
    if not isinstance(uri, str):
        return "<driver>"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable uri>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
