"""The command line under bad invocations: one line on stderr naming the problem, exit 2
for usage errors (no arguments included), 1 for failures, a traceback only with --debug."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from _reliability import REPO


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=240)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    np.save(d / "v.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    (d / "empty.npy").write_bytes(b"")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 8)
    np.save(d / "huge_header.npy", np.zeros(4, np.float32))
    raw = (d / "huge_header.npy").read_bytes().replace(b"(4,)", b"(10000000000000,)".ljust(4))
    (d / "huge_header.npy").write_bytes(raw)
    (d / "folder").mkdir()
    (d / "folder" / "keep.txt").write_text("x")
    return d


# (arguments, expected exit code, a word the one-line message must contain)
CASES = [
    ((), 2, "no command"),
    (("bogus",), 2, "unknown command"),
    (("bench",), 2, "benchmark name"),
    (("bench", "nope"), 2, "unknown benchmark"),
    (("index",), 2, "required"),
    (("index", "build", "--vectors", "v.npy", "--out", "o", "--M", "x"), 2, "invalid int"),
    (("index", "build", "--vectors", "empty.npy", "--out", "o1"), 1, "empty"),
    (("index", "build", "--vectors", "huge_header.npy", "--out", "o1"), 1, "npy"),
    (("index", "build", "--vectors", "binary.txt", "--out", "o1"), 1, "vectors"),
    (("index", "build", "--vectors", "v.npy", "--ids", "binary.txt", "--out", "o2"), 1, "UTF-8"),
    (("index", "build", "--vectors", "v.npy", "--out", "/proc/no/such/dir"), 1, "/proc/no"),
    (("index", "build", "--vectors", "v.npy", "--out", "folder"), 1, "refusing"),
    (("index", "build", "--vectors", "v.npy", "--out", "v.npy"), 1, "refusing"),
    (("index", "info", "/"), 1, "not an index"),
    (("index", "info", "v.npy"), 1, "not an index"),
    (("search", "--index", "folder", "--graph", "binary.txt", "--query-id", "1"), 1, "index"),
    (("train", "--features", "v.npy", "--graph", "binary.txt", "--out", "c.ckpt"), 1, "UTF-8"),
    (("train", "--features", "empty.npy", "--graph", "binary.txt", "--out", "c.ckpt"), 1, "empty"),
]


@pytest.mark.parametrize("args,code,word", CASES, ids=[" ".join(c[0]) or "(none)" for c in CASES])
def test_bad_invocation_is_one_line(files, args, code, word, capfd, monkeypatch):
    """In process (``main`` returns the exit code; any escaping exception fails the test)."""
    from ruvector_graph_attn.cli import main

    monkeypatch.chdir(files)
    rc = main(list(args))
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert word.lower() in lines[0].lower(), lines[0]


def test_real_process_exit_codes(files):
    none = _cli(cwd=files)
    assert none.returncode == 2 and none.stderr.count("\n") == 1 and "Traceback" not in none.stderr
    bad = _cli("index", "build", "--vectors", "empty.npy", "--out", "o1", cwd=files)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr


def test_debug_shows_the_traceback(files):
    proc = _cli("--debug", "index", "info", "/", cwd=files)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "CorruptFileError" in proc.stderr


def test_success_and_help_still_exit_zero(files):
    assert _cli("--help", cwd=files).returncode == 0
    ok = _cli("index", "build", "--vectors", "v.npy", "--out", "built", "--json", cwd=files)
    assert ok.returncode == 0, ok.stderr
    info = _cli("index", "info", "built", "--json", cwd=files)
    assert info.returncode == 0 and '"count": 40' in info.stdout
