"""One rule for tests that need a real outside part (a server process, a browser, a framework
package, a Dask cluster): on a developer machine that lacks it they skip with the reason; in CI
(``CI=true``) or with ``RGA_REQUIRE_ALL=1`` they fail, so a part that cannot start never passes
silently."""
from __future__ import annotations

import os

import pytest


def required() -> bool:
    """True when missing parts must fail the run instead of skipping (CI)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("RGA_REQUIRE_ALL") == "1"


def unavailable(part: str, reason: str):
    """Fail (CI) or skip (developer machine) because ``part`` cannot be used: ``reason``."""
    msg = f"{part} is unavailable: {reason}"
    if required():
        pytest.fail(f"{msg} (required in CI)", pytrace=False)
    pytest.skip(msg)


def import_or_unavailable(module: str, part: str | None = None):
    """``importlib.import_module(module)``, or :func:`unavailable` when it cannot be imported."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(part or module, f"cannot import {module!r} ({exc})")
