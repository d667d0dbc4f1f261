"""Reliability probe: fuzzed API calls per area, corrupted index and checkpoint files, bad CLI
invocations. Prints, per area: cases tried, typed errors, untyped errors, crashes, silent
NaN/wrong output (and ok = valid calls that returned finite results).

Each area runs in child processes; a crash (signal, abort) is counted and the child is
restarted after the crashing case, so one crash never hides the rest.

    python benchmarks/reliability_probe.py [--cases 300] [--files 200] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path.insert(0, str(TESTS))
from _reliability import corruption_child_code  # noqa: E402  (shared with tests/test_fuzz_files.py)

#: the library checkout the children import (set RGA_PROBE_LIBRARY to probe another checkout,
#: e.g. an older version, with that checkout's interpreter)
LIBRARY = os.environ.get("RGA_PROBE_LIBRARY", str(HERE.parent))

_CHILD = r"""
import sys, json, os
sys.path.insert(0, {tests!r})
import numpy as np
from _reliability import Fixtures, classify, entry_cases
area, start, total = {area!r}, {start}, {total}
fx = Fixtures()
for i in range(start, total):
    rng = np.random.default_rng(10_000 + i)
    cases = [c for c in entry_cases(fx, rng) if c[0] == area]
    _, name, thunk = cases[i % len(cases)]
    print(json.dumps({{"i": i, "start": name}}), flush=True)
    verdict, detail = classify(thunk)
    print(json.dumps({{"i": i, "name": name, "verdict": verdict, "detail": detail}}), flush=True)
"""


def _run_child(code: str, cwd: Path) -> tuple[int, list[dict]]:
    env = dict(os.environ, PYTHONPATH=LIBRARY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(cwd), env=env)
    rows = []
    for line in proc.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return proc.returncode, rows


def probe_api(area: str, total: int, cwd: Path) -> dict:
    counts = {"tried": 0, "ok": 0, "typed": 0, "untyped": 0, "crash": 0, "nonfinite": 0}
    examples: list[str] = []
    start = 0
    while start < total:
        rc, rows = _run_child(_CHILD.format(tests=str(TESTS), area=area, start=start, total=total), cwd)
        done = [r for r in rows if "verdict" in r]
        for r in done:
            counts["tried"] += 1
            counts[r["verdict"]] += 1
            if r["verdict"] in ("untyped", "nonfinite") and len(examples) < 5:
                examples.append(f"{r['name']}: {r['detail']}")
        last = max([r["i"] for r in rows], default=start - 1)
        if rc == 0:
            break
        counts["tried"] += 1
        counts["crash"] += 1
        examples.append(f"case {last}: child died with {rc}")
        start = last + 1
    return {"counts": counts, "examples": examples}


def probe_files(kind: str, total: int, cwd: Path) -> dict:
    counts = {"tried": 0, "ok": 0, "typed": 0, "untyped": 0, "crash": 0, "nonfinite": 0}
    examples: list[str] = []
    start = 0
    work = str(cwd / f"files-{kind}")
    while start < total:
        rc, rows = _run_child(corruption_child_code(kind, start, total, work), cwd)
        for r in (r for r in rows if "verdict" in r):
            counts["tried"] += 1
            counts[r["verdict"]] += 1
            if r["verdict"] in ("untyped", "nonfinite") and len(examples) < 5:
                examples.append(f"{r['name']}: {r['detail']}")
        last = max([r["i"] for r in rows], default=start - 1)
        if rc == 0:
            break
        counts["tried"] += 1
        counts["crash"] += 1
        examples.append(f"case {last}: child died with {rc}")
        start = last + 1
    return {"counts": counts, "examples": examples}


def probe_cli(cwd: Path) -> dict:
    sys.path.insert(0, str(TESTS))
    import test_reliability_cli as T  # the same bad invocations the tests use

    import numpy as np

    d = cwd / "cli"
    d.mkdir(exist_ok=True)
    np.save(d / "v.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    (d / "empty.npy").write_bytes(b"")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 8)
    np.save(d / "huge_header.npy", np.zeros(4, np.float32))
    raw = (d / "huge_header.npy").read_bytes().replace(b"(4,)", b"(10000000000000,)")
    (d / "huge_header.npy").write_bytes(raw)
    (d / "folder").mkdir(exist_ok=True)
    (d / "folder" / "keep.txt").write_text("x")
    counts = {"tried": 0, "ok": 0, "typed": 0, "untyped": 0, "crash": 0, "nonfinite": 0}
    examples = []
    env = dict(os.environ, PYTHONPATH=LIBRARY)
    for args, code, _word in T.CASES:
        proc = subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", *args], capture_output=True,
                              text=True, cwd=str(d), env=env)
        counts["tried"] += 1
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        if proc.returncode < 0:
            counts["crash"] += 1
        elif "Traceback" in proc.stderr:
            counts["untyped"] += 1
            examples.append(f"{' '.join(args)}: traceback ({lines[-1][:100] if lines else ''})")
        elif proc.returncode != code or len(lines) != 1:
            counts["nonfinite"] += 1  # wrong exit code or not one line: a silent/wrong outcome
            examples.append(f"{' '.join(args) or '(none)'}: exit {proc.returncode}, {len(lines)} stderr lines")
        else:
            counts["typed"] += 1
    return {"counts": counts, "examples": examples}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200, help="fuzzed calls per API area")
    ap.add_argument("--files", type=int, default=120, help="corrupted files per file kind")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    import tempfile

    work = Path(args.work or tempfile.mkdtemp(prefix="rga-probe-"))
    results = {}
    for area in ("attention", "graph", "index", "rerank", "connectors"):
        results[area] = probe_api(area, args.cases, work)
    results["index files"] = probe_files("index", args.files, work)
    results["checkpoint files"] = probe_files("checkpoint", args.files, work)
    results["cli"] = probe_cli(work)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'area':<18}{'tried':>7}{'ok':>6}{'typed':>7}{'untyped':>9}{'crash':>7}{'silent NaN/wrong':>18}")
    for area, r in results.items():
        c = r["counts"]
        print(f"{area:<18}{c['tried']:>7}{c['ok']:>6}{c['typed']:>7}{c['untyped']:>9}{c['crash']:>7}{c['nonfinite']:>18}")
    for area, r in results.items():
        for e in r["examples"]:
            print(f"  {area}: {e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
