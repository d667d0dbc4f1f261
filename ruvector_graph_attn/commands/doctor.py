"""``ruvector-graph-attn doctor``: check the installation and say how to fix what is missing.

Required parts (a failure exits with status 1): Python >= 3.10, the core packages, a Numba
compile of a serial and a parallel kernel (the threading layer in use is reported), an hnswlib
build/search round trip and one graph-layer forward. Optional parts (reported, never fatal):
each extra's packages, Java 17+ and Maven (the Neo4j test server and plugin), Node.js (the
JS client), a headless Chromium (the explorer page test).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Optional

CORE = ("numpy", "numba", "hnswlib", "networkx", "neo4j", "pydantic", "rich")
#: extra -> (modules it needs, what it enables)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "service": (("fastapi", "uvicorn"), "the HTTP/JSON service (`serve`)"),
    "distributed": (("dask", "distributed"), "Dask batch re-ranking, sharded indexes"),
    "onnx": (("onnx", "onnxruntime"), "ONNX export and its verification"),
    "plot": (("matplotlib",), "`visualize` pictures"),
    "graphrag": (("neo4j_graphrag",), "the neo4j-graphrag retriever"),
    "langchain": (("langchain_core", "langchain_classic"), "the LangChain retriever and compressor"),
    "llamaindex": (("llama_index.core",), "the LlamaIndex retriever and postprocessor"),
}


@dataclass
class Check:
    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""


def _version(mod) -> str:
    v = getattr(mod, "__version__", None)
    if v is None:
        from importlib import metadata

        top = mod.__name__.split(".")[0]
        for dist in metadata.packages_distributions().get(top, []):
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:  # pragma: no cover
                continue
        return "installed"
    return str(v)


def _try(name: str, required: bool, fn: Callable[[], str], fix: str) -> Check:
    try:
        return Check(name, True, required, fn())
    except Exception as exc:  # every failure becomes a reported check, never a traceback
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(name, False, required, f"{type(exc).__name__}: {msg}"[:300], fix)


def _python() -> str:
    if sys.version_info < (3, 10):
        raise RuntimeError(f"Python {sys.version.split()[0]} is too old")
    return sys.version.split()[0]


def _numba_kernels() -> str:
    import numba
    import numpy as np

    @numba.njit(cache=False)
    def serial(a):
        s = 0.0
        for v in a:
            s += v
        return s

    @numba.njit(parallel=True, cache=False)
    def parallel(a):
        s = 0.0
        for i in numba.prange(a.shape[0]):
            s += a[i]
        return s

    a = np.arange(1000, dtype=np.float64)
    if serial(a) != 499500.0 or parallel(a) != 499500.0:
        raise RuntimeError("compiled kernels returned wrong sums")
    return (f"numba {numba.__version__}, threading layer {numba.threading_layer()}, "
            f"{numba.get_num_threads()} threads")


def _hnsw_roundtrip() -> str:
    import numpy as np

    from ..index.hnsw import HNSWIndex

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    idx = HNSWIndex(dim=8, space="l2")
    idx.add(np.arange(64), x)
    ids, _ = idx.search(x[:4], k=1)
    if np.asarray(ids).reshape(-1).tolist() != [0, 1, 2, 3]:
        raise RuntimeError("an index search did not find the stored vectors")
    import hnswlib

    return f"hnswlib {_version(hnswlib)}: build + search ok"


def _graph_layer() -> str:
    import numpy as np

    from ..graph import GATConv

    x = np.eye(3, dtype=np.float32)
    y = GATConv(3, 2, heads=2, rng=0)(x, np.array([[0, 1], [1, 2]]))
    if y.shape != (3, 4) or not np.isfinite(y).all():
        raise RuntimeError(f"GATConv returned {y.shape}")
    return "GATConv forward ok"


def _module_check(mod_name: str) -> str:
    return f"{mod_name} {_version(importlib.import_module(mod_name))}"


def _tool(cmd: list[str], pattern: str, minimum: Optional[int] = None, label: str = "") -> str:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise RuntimeError(f"{cmd[0]} is not on PATH")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    text = (out.stdout + out.stderr).strip()
    m = re.search(pattern, text)
    if m is None:
        raise RuntimeError(f"could not read the version from `{' '.join(cmd)}`")
    if minimum is not None and int(m.group(1)) < minimum:
        raise RuntimeError(f"{label or cmd[0]} {m.group(1)} is older than {minimum}")
    return f"{label or cmd[0]} {m.group(0)}"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return _tool([name, "--version"], r"\d+\.[\d.]+", label=name)
    raise RuntimeError("no chromium / chrome on PATH")


def run_checks() -> list[Check]:
    checks = [_try("python", True, _python, "install Python 3.10 or newer")]
    for mod in CORE:
        checks.append(_try(mod, True, lambda m=mod: _module_check(m),
                           f"pip install --force-reinstall ruvector-graph-attn  (reinstalls {mod})"))
    checks.append(_try("numba kernels", True, _numba_kernels,
                       "check NUMBA_THREADING_LAYER (unset it, or use 'omp' or 'tbb'); reinstall numba"))
    checks.append(_try("hnswlib index", True, _hnsw_roundtrip, "pip install --force-reinstall hnswlib"))
    checks.append(_try("graph layers", True, _graph_layer, "reinstall ruvector-graph-attn"))
    for extra, (mods, what) in EXTRAS.items():
        checks.append(_try(f"extra [{extra}]", False,
                           lambda ms=mods: ", ".join(_module_check(m) for m in ms),
                           f"pip install 'ruvector-graph-attn[{extra}]'  (for {what})"))
    checks.append(_try("java", False, lambda: _tool(["java", "-version"], r'version "(\d+)[\d._]*"', 17),
                       "install a Java 17+ JDK (Debian: apt-get install openjdk-17-jdk-headless) "
                       "for the Neo4j test server and plugin"))
    checks.append(_try("maven", False, lambda: _tool(["mvn", "-v"], r"Apache Maven (\d+)[\d.]*", 3),
                       "install Maven 3 (Debian: apt-get install maven) to build the Neo4j server and plugin"))
    checks.append(_try("node", False, lambda: _tool(["node", "--version"], r"v(\d+)[\d.]*", 18),
                       "install Node.js 18+ for the JS client"))
    checks.append(_try("chromium", False, _chromium,
                       "apt-get install chromium (only for the explorer page's browser test)"))
    return checks


def build_parser(prog: str = "ruvector-graph-attn doctor") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    broken = [c for c in checks if c.required and not c.ok]
    if args.json:
        print(json.dumps({"ok": not broken, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="ruvector-graph-attn doctor")
        for col in ("check", "status", "detail / fix"):
            table.add_column(col)
        for c in checks:
            status = "ok" if c.ok else ("BROKEN" if c.required else "missing")
            style = "green" if c.ok else ("bold red" if c.required else "yellow")
            text = c.detail if c.ok else f"{c.detail}\n-> {c.fix}"
            table.add_row(escape(c.name), f"[{style}]{status}[/]", escape(text))
        Console(width=max(100, shutil.get_terminal_size().columns)).print(table)
        if broken:
            print(f"{len(broken)} required part(s) broken: " + ", ".join(c.name for c in broken), file=sys.stderr)
    return 1 if broken else 0
