"""Fuzz every public entry (attention, graph layers, index, re-ranker, connectors, CLI) with
hostile arguments: each call either returns finite outputs or raises a library error
(:class:`RgaError`) with a message. Seeds are drawn by hypothesis (so failures shrink and
replay); the arguments are built from the seed by ``_reliability.hostile``."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from _reliability import Fixtures, classify, entry_cases

AREAS = ("attention", "graph", "index", "rerank", "connectors", "checkpoints")
FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@functools.lru_cache(maxsize=1)
def _fx() -> Fixtures:
    return Fixtures()


@pytest.mark.parametrize("area", AREAS)
@FUZZ
@given(seed=st.integers(0, 2 ** 32 - 1), which=st.integers(0, 1000))
def test_entry_points_fail_typed_or_return_finite(area, seed, which):
    fx = _fx()
    rng = np.random.default_rng(seed)
    cases = [c for c in entry_cases(fx, rng) if c[0] == area]
    _, name, thunk = cases[which % len(cases)]
    n_before = len(fx.index)
    verdict, detail = classify(thunk)
    assert verdict in ("ok", "typed"), f"{area}/{name} (seed {seed}): {verdict}: {detail}"
    assert len(fx.index) == n_before, f"{area}/{name} changed the shared index"


_WORDS = ["index", "build", "info", "search", "train", "bench", "--vectors", "--ids", "--out", "--index",
          "--graph", "--features", "--query-id", "--query", "--k", "--M", "--space", "--json", "--scorer",
          "v.npy", "empty.npy", "binary.txt", "missing.npy", "/", ".", "folder", "-1", "0", "3", "x", "nan",
          "1e400", "cosine", "l2", "attention", "--help"]


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzcli")
    np.save(d / "v.npy", np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32))
    (d / "empty.npy").write_bytes(b"")
    (d / "binary.txt").write_bytes(bytes(range(256)))
    (d / "folder").mkdir()
    (d / "folder" / "keep").write_text("x")
    return d


@FUZZ
@given(argv=st.lists(st.sampled_from(_WORDS), min_size=0, max_size=7))
def test_cli_invocations_exit_cleanly(cli_dir, argv, capfd, monkeypatch):
    from ruvector_graph_attn.cli import main

    if len(argv) > 1 and argv[0] == "bench" and argv[1] != "--help":
        argv = argv[:1] + ["no-such-benchmark"] + argv[2:]  # real benchmarks are too slow to fuzz
    monkeypatch.chdir(cli_dir)
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # --help inside a subcommand
        rc = exc.code or 0
    err = capfd.readouterr().err
    assert rc in (0, 1, 2), (argv, rc)
    if rc:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
        assert "unexpected" not in lines[0], (argv, lines[0])  # an untyped exception reached the CLI
