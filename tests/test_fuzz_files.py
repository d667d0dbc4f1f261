"""Corrupted index and checkpoint files (truncated at many offsets, bit-flipped, and both with
their checksums recomputed) are loaded in child processes: every case must end in a library
error or a working, finite result; a crash of the child fails the test instead of the run."""
from __future__ import annotations

import json

import pytest

from _reliability import assert_child_ok, corruption_child_code, run_child


@pytest.mark.parametrize("kind,cases", [("index", 200), ("checkpoint", 160)])
def test_corrupted_files_never_crash_or_leak_untyped_errors(tmp_path, kind, cases):
    proc = run_child(corruption_child_code(kind, 0, cases, str(tmp_path / "work")), timeout=900)
    assert_child_ok(proc)
    rows = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    done = [r for r in rows if "verdict" in r]
    assert len(done) == cases, f"only {len(done)} of {cases} cases finished"
    bad = [r for r in done if r["verdict"] not in ("ok", "typed")]
    assert not bad, bad[:5]
    # the resealed cases get past the checksums: the structure checks must be what refuses them
    assert sum(r["verdict"] == "typed" for r in done) > 0.8 * cases
