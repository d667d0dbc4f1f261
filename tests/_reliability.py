"""Helpers for the reliability tests: child processes (a crash fails a test instead of
killing the run) and consistently re-sealed crafted index files (checksums recomputed,
as anyone editing a file can do)."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

HEADER = struct.Struct("<QQQQQQiIQQQdQ")
FIELDS = ("off_l0", "max_el", "cur", "size_el", "label_off", "off_data", "maxlevel", "enter",
          "maxM", "maxM0", "M", "mult", "efc")
REPO = Path(__file__).resolve().parents[1]


def run_child(code: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (this one), returning the completed process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=str(REPO))


def assert_child_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, (f"child exited with {proc.returncode} (negative = killed by a signal)\n"
                                  f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}")


def header(path: Path) -> dict:
    return dict(zip(FIELDS, HEADER.unpack_from((Path(path) / "index.bin").read_bytes(), 0)))


def write_header(data: bytearray, **changes) -> None:
    h = dict(zip(FIELDS, HEADER.unpack_from(data, 0)))
    h.update(changes)
    HEADER.pack_into(data, 0, *[h[f] for f in FIELDS])


def upper_levels(data: bytes) -> tuple[np.ndarray, list]:
    """Per element: its level, and the byte offset of its upper-level lists (or -1)."""
    h = dict(zip(FIELDS, HEADER.unpack_from(data, 0)))
    pos = HEADER.size + h["cur"] * h["size_el"]
    per = h["maxM"] * 4 + 4
    levels, starts = np.zeros(h["cur"], np.int64), []
    for i in range(h["cur"]):
        (size,) = struct.unpack_from("<I", data, pos)
        levels[i] = size // per
        starts.append(pos + 4 if size else -1)
        pos += 4 + size
    return levels, starts


def reseal(path: Path, *names: str) -> None:
    """Recompute the recorded size and sha256 of ``names`` and the manifest's own checksum."""
    mpath = Path(path) / "manifest.json"
    m = json.loads(mpath.read_text())
    for name in names:
        data = (Path(path) / name).read_bytes()
        m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    body = {k: v for k, v in m.items() if k != "manifest_sha256"}
    m["manifest_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    mpath.write_text(json.dumps(m))


def edit_manifest(path: Path, **changes) -> None:
    mpath = Path(path) / "manifest.json"
    m = json.loads(mpath.read_text())
    m.update(changes)
    mpath.write_text(json.dumps(m))


def small_index(path: Path, n: int = 300, dim: int = 8, space: str = "cosine", seed: int = 0, M: int = 4):
    """A saved index with several levels (small M), two deletes; returns (index, vectors)."""
    import ruvector_graph_attn as rga

    X = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    idx = rga.HNSWIndex(dim=dim, space=space, M=M, ef_construction=50, num_threads=1, seed=seed)
    idx.add(np.arange(n), X)
    idx.delete([3, 5])
    idx.save(path)
    return idx, X
