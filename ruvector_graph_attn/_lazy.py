"""Lazy module attributes: a package names ``attribute -> "relative.module:name"`` and the
module is imported only when the attribute is first read (optional dependencies stay unloaded)."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_getattr(package: str, names: dict[str, str], namespace: dict) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` resolving ``names`` and caching each value
    in ``namespace`` (the package's ``globals()``)."""

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        mod, attr = target.split(":")
        value = getattr(importlib.import_module(mod, package), attr)
        namespace[name] = value
        return value

    return __getattr__
