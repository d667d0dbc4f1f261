"""Runs the JS client's own tests (clients/js, Node's built-in test runner) so the README's test
command covers them; they start a live service with this interpreter."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from _require import import_or_unavailable, unavailable

JS = Path(__file__).resolve().parents[1] / "clients" / "js"


def test_js_client_node_tests():
    import_or_unavailable("fastapi")
    import_or_unavailable("uvicorn")
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js", "'node' is not on PATH (the JS client tests need Node 18+)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:
        unavailable("Node.js", f"{version} is too old (need 18+ for global fetch and node --test)")
    env = dict(os.environ, RGA_PYTHON=sys.executable)
    r = subprocess.run([node, "--test", "test/"], cwd=JS, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    passed = int(re.search(r"^# pass (\d+)$", r.stdout, re.M).group(1))
    failed = int(re.search(r"^# fail (\d+)$", r.stdout, re.M).group(1))
    assert failed == 0 and passed >= 10, r.stdout[-2000:]


def test_js_package_has_no_runtime_dependencies():
    import json

    pkg = json.loads((JS / "package.json").read_text())
    assert pkg.get("dependencies", {}) == {} and "devDependencies" not in pkg
    assert (JS / pkg["types"]).is_file() and (JS / pkg["main"]).is_file()
    src = (JS / "index.js").read_text()
    assert not re.search(r"^\s*import .* from ['\"](?!\.)", src, re.M), "the client imports nothing"
    for method in ("search(", "searchBatch(", "rerank(", "embed(", "traverse(", "health(", "metrics("):
        assert method in src and method.rstrip("(") in (JS / "index.d.ts").read_text()
