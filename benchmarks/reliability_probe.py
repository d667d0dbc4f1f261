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


def _probe_children(make_code, total: int, cwd: Path) -> dict:
    """Run cases ``0..total-1`` in children built by ``make_code(start)``; a child that dies is
    counted as one crash (its last started case) and a new child resumes after that case."""
    counts = {"tried": 0, "ok": 0, "typed": 0, "untyped": 0, "crash": 0, "nonfinite": 0}
    examples: list[str] = []
    start = 0
    while start < total:
        rc, rows = _run_child(make_code(start), cwd)
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


def probe_api(area: str, total: int, cwd: Path) -> dict:
    return _probe_children(lambda start: _CHILD.format(tests=str(TESTS), area=area, start=start, total=total),
                           total, cwd)


def probe_files(kind: str, total: int, cwd: Path) -> dict:
    work = str(cwd / f"files-{kind}")
    return _probe_children(lambda start: corruption_child_code(kind, start, total, work), total, cwd)


_CRAFTED_INDEX = {
    "entry point without upper levels": "levels, _ = upper_levels(bytes(d)); write_header(d, enter=int(np.flatnonzero(levels == 0)[0]))",
    "max_elements = 2**63": "write_header(d, max_el=2 ** 63)",
    "upper link to a level-0 element": (
        "levels, st = upper_levels(bytes(d)); s = int(np.flatnonzero(levels >= 1)[0]); "
        "struct.pack_into('<I', d, st[s], 1); struct.pack_into('<I', d, st[s] + 4, int(np.flatnonzero(levels == 0)[0]))"),
    "NaN level multiplier": "write_header(d, mult=float('nan'))",
    "negative level multiplier": "write_header(d, mult=-1.0)",
    "NaN stored vector": "h = HEADER.unpack_from(d, 0); struct.pack_into('<f', d, HEADER.size + 7 * h[3] + h[5], float('nan'))",
}

_CRAFTED_INDEX_CHILD = r"""
import sys, struct, pathlib
sys.path.insert(0, {tests!r})
import numpy as np
import ruvector_graph_attn as rga
from _reliability import HEADER, reseal, small_index, upper_levels, write_header, classify
p = pathlib.Path({path!r})
small_index(p)
d = bytearray((p / "index.bin").read_bytes())
{mutation}
(p / "index.bin").write_bytes(bytes(d))
reseal(p, "index.bin")
def use():
    idx = rga.HNSWIndex.load(p)
    q = np.random.default_rng(1).normal(size=(5, idx.dim)).astype(np.float32)
    out = idx.search(q, k=min(10, len(idx)))
    idx.add([10 ** 6], q[0])
    return out, idx.search(q, k=len(idx))
v, det = classify(use)
print("VERDICT", v, det[:150])
"""

_CRAFTED_CKPT_CHILD = r"""
import sys, io, json, zipfile, hashlib, struct
sys.path.insert(0, {tests!r})
import ruvector_graph_attn as rga
from _reliability import classify
path = {path!r}
rga.save_checkpoint(rga.nn.Sequential(rga.nn.Linear(4, 8), rga.nn.ReLU(), rga.nn.Linear(8, 2)), path)
with zipfile.ZipFile(path) as zf:
    mem = {{n: zf.read(n) for n in zf.namelist()}}
def npy(shape):
    hdr = repr({{"descr": "<f4", "fortran_order": False, "shape": shape}}).encode()
    hdr += b" " * (63 - (10 + len(hdr)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr
case = {case!r}
comp = zipfile.ZIP_STORED
if case == "config Linear(2**20, 2**20)":
    cfg = json.loads(mem["config.json"]); cfg["model"]["modules"]["0"]["args"].update(in_features=2 ** 20, out_features=2 ** 20)
    mem["config.json"] = json.dumps(cfg).encode()
elif case == "npy header of 4 TiB":
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(mem["arrays.npz"])) as z, zipfile.ZipFile(buf, "w") as out:
        for n in z.namelist():
            out.writestr(n, npy((2 ** 20, 2 ** 20)) + bytes(64) if n == "0.weight.npy" else z.read(n))
    mem["arrays.npz"] = buf.getvalue()
elif case == "config nested 5000 deep":
    spec = '{{"type": "Sequential", "modules": {{"0": ' * 5000 + '{{"type": "Identity"}}' + "}}}}" * 5000
    mem["config.json"] = ('{{"model": ' + spec + ', "dtype": "float32", "metadata": {{}}}}').encode()
elif case == "manifest nested 100000 deep":
    mem["manifest.json"] = b"[" * 100000 + b"]" * 100000
elif case == "zip bomb (1 GB member, deflated)":
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as inner:
        with inner.open("0.weight.npy", "w", force_zip64=True) as fh:
            fh.write(npy((2 ** 28,)))
            for _ in range(64):
                fh.write(bytes(1 << 24))
    mem["arrays.npz"] = raw.getvalue()
    comp = zipfile.ZIP_DEFLATED
if case != "manifest nested 100000 deep":
    man = json.loads(mem["manifest.json"])
    for n in ("config.json", "arrays.npz"):
        man["files"][n] = {{"sha256": hashlib.sha256(mem[n]).hexdigest(), "size": len(mem[n])}}
    mem["manifest.json"] = json.dumps(man).encode()
with zipfile.ZipFile(path, "w", compression=comp) as zf:
    for k, v in mem.items():
        zf.writestr(k, v)
import resource
v, det = classify(lambda: rga.load_checkpoint(path))
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]  # this image's peak
rss = (int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) // 1024
if v == "typed" and rss > 600:
    v, det = "nonfinite", f"refused only after reaching {{rss}} MB RSS"
print("VERDICT", v, det[:150])
"""


def probe_crafted(cwd: Path) -> dict:
    """Targeted crafted files (checksums recomputed), each in its own child process."""
    counts = {"tried": 0, "ok": 0, "typed": 0, "untyped": 0, "crash": 0, "nonfinite": 0}
    examples = []
    jobs = [(f"index: {name}", _CRAFTED_INDEX_CHILD.format(tests=str(TESTS), path=str(cwd / f"crafted{i}"),
                                                            mutation=code))
            for i, (name, code) in enumerate(_CRAFTED_INDEX.items())]
    jobs += [(f"checkpoint: {case}", _CRAFTED_CKPT_CHILD.format(tests=str(TESTS), path=str(cwd / f"ck{i}.ckpt"),
                                                                 case=case))
             for i, case in enumerate(["config Linear(2**20, 2**20)", "npy header of 4 TiB", "config nested 5000 deep",
                                       "manifest nested 100000 deep", "zip bomb (1 GB member, deflated)"])]
    for name, code in jobs:
        env = dict(os.environ, PYTHONPATH=LIBRARY)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(cwd), env=env)
        counts["tried"] += 1
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("VERDICT")), None)
        if proc.returncode != 0 or line is None:
            counts["crash"] += 1
            examples.append(f"{name}: child died with {proc.returncode} ({proc.stderr.strip().splitlines()[-1][:100] if proc.stderr.strip() else ''})")
            continue
        verdict = line.split()[1]
        counts[verdict] += 1
        if verdict in ("untyped", "nonfinite"):
            examples.append(f"{name}: {line[8:]}")
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
    for area in ("attention", "graph", "index", "rerank", "connectors", "checkpoints"):
        results[area] = probe_api(area, args.cases, work)
    results["index files"] = probe_files("index", args.files, work)
    results["checkpoint files"] = probe_files("checkpoint", args.files, work)
    results["crafted files"] = probe_crafted(work)
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
