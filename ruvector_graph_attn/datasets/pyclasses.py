"""A real taxonomy: the class hierarchy of the installed Python standard library.

Nodes are the classes defined by the standard-library modules (and ``builtins``), named
``module.qualname``; an edge ``child -> base`` for every entry of ``child.__bases__`` that is
itself a node. ``object`` is left out (it is everybody's base and would be one hub with every
class as child). The text of a class is its name and the first non-empty line of its **own**
docstring (``cls.__dict__["__doc__"]``, never the inherited one, which would copy the base's
text into the child): ``"JSONDecodeError: Subclass of ValueError with the following additional
properties:"``. Classes without a docstring of their own get their name alone.

Reproducible for a given Python build: the module list is ``sys.stdlib_module_names`` plus the
submodules of those packages (``pkgutil.walk_packages``; not the codec modules under
``encodings``, ~120 copies of the same five undocumented classes), minus modules with side effects on
import or that belong to the test suite and tools (``EXCLUDED``); everything is imported in a
separate interpreter (:func:`stdlib_class_hierarchy`), so the caller's process is untouched.
Nodes are sorted by name, so indices are stable.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from ..errors import InvalidInputError

__all__ = ["ClassHierarchy", "class_hierarchy", "stdlib_class_hierarchy", "class_text", "EXCLUDED"]

#: top-level modules never imported: side effects on import (``this`` prints, ``antigravity``
#: opens a browser), GUI and tool packages, the regression-test package and private modules
EXCLUDED = ("this", "antigravity", "idlelib", "turtledemo", "turtle", "tkinter", "test", "lib2to3",
            "ensurepip", "pydoc_data", "__phello__", "__hello__", "venv", "msilib", "winreg",
            "winsound", "_msi", "nt", "xxsubtype", "xxlimited", "_xxtestfuzz", "_testcapi",
            "_testinternalcapi", "_testbuffer", "_testimportmultiple", "_testmultiphase", "_ctypes_test",
            "_testclinic", "_testsinglephase", "_xxsubinterpreters", "_xxinterpchannels", "_tkinter")

MAX_TEXT = 300


@dataclass
class ClassHierarchy:
    """``names [N]`` (``module.qualname``), ``texts [N]``, ``edge_index [2, E]`` int64
    (``child -> base``, sorted)."""

    names: list
    texts: list
    edge_index: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.names)

    def parents(self) -> list:
        """Per node, the array of its bases (node indices)."""
        out = [[] for _ in range(self.num_nodes)]
        for c, b in self.edge_index.T.tolist():
            out[c].append(b)
        return [np.asarray(p, np.int64) for p in out]

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for n, t in zip(self.names, self.texts):
            h.update(n.encode() + b"\0" + t.encode() + b"\0")
        h.update(np.ascontiguousarray(self.edge_index).tobytes())
        return h.hexdigest()


def class_text(cls: type) -> str:
    """``"Name: first line of the class's own docstring"`` (just ``"Name"`` without one)."""
    own = getattr(cls, "__dict__", None)
    doc = own.get("__doc__") if hasattr(own, "get") else None
    line = ""
    if isinstance(doc, str):
        for ln in doc.strip().splitlines():
            if ln.strip():
                line = " ".join(ln.split())
                break
    text = f"{cls.__name__}: {line}" if line else cls.__name__
    return text[:MAX_TEXT]


def class_hierarchy(classes: Iterable[type]) -> ClassHierarchy:
    """The hierarchy of the given classes (see the module docstring): one node per distinct
    class except ``object``; edges to the bases that are among the given classes."""
    seen: dict = {}
    for cls in classes:
        if not isinstance(cls, type):
            raise InvalidInputError(f"class_hierarchy expects classes, got {type(cls).__name__}")
        if cls is object:
            continue
        name = f"{cls.__module__}.{cls.__qualname__}"
        if id(cls) not in seen:
            seen[id(cls)] = (name, cls)
    # distinct names (two classes may share module.qualname, e.g. made by a factory): keep the first
    by_name: dict = {}
    for name, cls in seen.values():
        by_name.setdefault(name, cls)
    names = sorted(by_name)
    pos = {id(by_name[n]): i for i, n in enumerate(names)}
    edges = set()
    for i, n in enumerate(names):
        for b in by_name[n].__bases__:
            j = pos.get(id(b))
            if j is not None and j != i:
                edges.add((i, j))
    ei = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2).T
    return ClassHierarchy(names, [class_text(by_name[n]) for n in names], np.ascontiguousarray(ei))


def _module_names() -> list:
    import pkgutil

    top = sorted(m for m in sys.stdlib_module_names if m not in EXCLUDED and not m.startswith("_"))
    out = list(top) + ["builtins"]
    for m in top:
        try:
            mod = __import__(m)
        except Exception:  # noqa: BLE001 - a module this build lacks (e.g. a platform module)
            continue
        path = getattr(mod, "__path__", None)
        if path is None:
            continue
        for info in pkgutil.walk_packages(path, prefix=m + ".", onerror=lambda _n: None):
            parts = info.name.split(".")
            if any(p.startswith("_") or p in ("test", "tests", "idle_test") for p in parts[1:]) \
                    or parts[0] == "encodings":
                # the ~120 codec modules repeat the same five undocumented classes each
                continue
            out.append(info.name)
    return sorted(set(out))


def _collect(module_names: Sequence[str]) -> list:
    import importlib
    import warnings

    classes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in module_names:
            try:
                mod = importlib.import_module(m)
            except BaseException:  # noqa: BLE001 - missing optional C parts, platform modules
                continue
            for v in list(vars(mod).values()):
                if isinstance(v, type) and (v.__module__ == m or (m == "builtins" and v.__module__ == "builtins")):
                    classes.append(v)
    return classes


def _dump() -> None:
    """Entry point of the separate interpreter: prints the hierarchy as JSON."""
    h = class_hierarchy(_collect(_module_names()))
    json.dump({"names": h.names, "texts": h.texts, "edges": h.edge_index.tolist(),
               "python": sys.version}, sys.stdout)


def stdlib_class_hierarchy(python: Optional[str] = None, timeout: float = 600.0) -> ClassHierarchy:
    """The standard-library class hierarchy of ``python`` (default: this interpreter), built
    in a separate process."""
    exe = python or sys.executable
    code = "from ruvector_graph_attn.datasets.pyclasses import _dump; _dump()"
    res = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise InvalidInputError(f"building the class hierarchy failed: {res.stderr.strip()[-500:]}")
    d = json.loads(res.stdout[res.stdout.index("{"):])
    ei = np.asarray(d["edges"], dtype=np.int64).reshape(2, -1)
    return ClassHierarchy(list(d["names"]), list(d["texts"]), np.ascontiguousarray(ei))
