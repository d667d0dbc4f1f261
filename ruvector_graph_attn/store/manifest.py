"""Reading the ``manifest.json`` of a stored directory: one set of checks for every format."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CorruptFileError, FormatVersionError


def read_manifest(path: Path, format_name: str, version: int, what: str) -> dict:
    """The manifest of the ``what`` directory ``path``; a missing or malformed manifest, another
    format or an unfinished write raise :class:`CorruptFileError`, another version
    :class:`FormatVersionError`."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise CorruptFileError(f"{path} is not a {what} (no manifest.json)")
    try:
        man = json.loads(mpath.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{mpath}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(man, dict) or man.get("format") != format_name:
        raise CorruptFileError(f"{mpath}: not a {what} manifest")
    if man.get("version") != version:
        raise FormatVersionError(f"{path}: {what} format version {man.get('version')!r}, "
                                 f"this library reads version {version}")
    return man
