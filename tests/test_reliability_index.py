"""Regression tests: HNSWIndex under crafted files, hostile arguments, duplicates, races and
interrupted saves. Crafted files are loaded in child processes: a crash fails the test."""
from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import CorruptFileError, InvalidInputError, RgaError, UnknownIdError

from _reliability import (
    HEADER, assert_child_ok, edit_manifest, reseal, run_child, small_index, upper_levels, write_header,
)

# a child loads the crafted index and, if loading succeeds, uses it; any non-library
# exception or a crash (segfault, abort) is a failure
_USE = """
import sys, numpy as np
import ruvector_graph_attn as rga
try:
    idx = rga.HNSWIndex.load(sys.argv[1] if len(sys.argv) > 1 else {path!r})
except rga.RgaError as exc:
    print("REFUSED", type(exc).__name__, exc)
    raise SystemExit(0)
q = np.random.default_rng(1).normal(size=(5, idx.dim)).astype(np.float32)
idx.search(q, k=min(10, len(idx)))
idx.add([10**6], q[0])
idx.search(q, k=len(idx))
print("LOADED")
"""


def _crafted(tmp_path, mutate, space="cosine"):
    path = tmp_path / "idx"
    small_index(path, space=space)
    data = bytearray((path / "index.bin").read_bytes())
    mutate(data)
    (path / "index.bin").write_bytes(bytes(data))
    reseal(path, "index.bin")
    return path


def _load_in_child(path):
    proc = run_child(_USE.format(path=str(path)))
    assert_child_ok(proc)
    return proc.stdout


# -- 1. crafted index files ---------------------------------------------------------------
def test_entry_point_without_upper_levels_is_refused(tmp_path):
    def mutate(data):
        levels, _ = upper_levels(bytes(data))
        write_header(data, enter=int(np.flatnonzero(levels == 0)[0]))
    path = _crafted(tmp_path, mutate)
    assert "REFUSED CorruptFileError" in _load_in_child(path)
    with pytest.raises(CorruptFileError, match="entry point"):
        rga.HNSWIndex.load(path)


def test_huge_max_elements_never_reaches_hnswlib_allocation(tmp_path):
    path = _crafted(tmp_path, lambda d: write_header(d, max_el=2 ** 63))
    out = _load_in_child(path)  # loads (capacity comes from the verified count) and works
    assert "LOADED" in out
    loaded = rga.HNSWIndex.load(path)
    assert len(loaded) == 298


def test_upper_link_to_element_without_that_level_is_refused(tmp_path):
    def mutate(data):
        h = dict(zip(("cur", "maxM"), (HEADER.unpack_from(data, 0)[2], HEADER.unpack_from(data, 0)[8])))
        levels, starts = upper_levels(bytes(data))
        src = int(np.flatnonzero(levels >= 1)[0])
        low = int(np.flatnonzero(levels == 0)[0])
        struct.pack_into("<I", data, starts[src], 1)          # level-1 list: one link ...
        struct.pack_into("<I", data, starts[src] + 4, low)    # ... to an element without level 1
        assert h["cur"] > low
    path = _crafted(tmp_path, mutate)
    assert "REFUSED CorruptFileError" in _load_in_child(path)
    with pytest.raises(CorruptFileError, match="without that level"):
        rga.HNSWIndex.load(path)


@pytest.mark.parametrize("mult", [float("nan"), float("inf"), -1.0, 0.0, 5.0])
def test_bad_level_multiplier_is_refused(tmp_path, mult):
    path = _crafted(tmp_path, lambda d: write_header(d, mult=mult))
    with pytest.raises(CorruptFileError, match="multiplier"):
        rga.HNSWIndex.load(path)


def _nan_vector(data):
    h = HEADER.unpack_from(data, 0)
    struct.pack_into("<f", data, HEADER.size + 7 * h[3] + h[5], float("nan"))  # element 7, first value


def _extra_deleted_mark(data):
    data[HEADER.size + 10 * HEADER.unpack_from(data, 0)[3] + 2] |= 1  # element 10 deleted only in index.bin


@pytest.mark.parametrize("mutate,message", [(_nan_vector, "NaN"), (_extra_deleted_mark, "deleted marks")])
def test_stored_vectors_and_deleted_marks_are_checked(tmp_path, mutate, message):
    path = _crafted(tmp_path, mutate, space="l2")
    with pytest.raises(CorruptFileError, match=message):
        rga.HNSWIndex.load(path)


def test_space_edit_is_caught_by_the_manifest_checksum(tmp_path):
    path = tmp_path / "idx"
    small_index(path, space="cosine")
    edit_manifest(path, space="l2")
    with pytest.raises(CorruptFileError, match="manifest checksum"):
        rga.HNSWIndex.load(path)


def test_l2_to_cosine_edit_caught_even_when_resealed(tmp_path):
    path = tmp_path / "idx"
    small_index(path, space="l2")
    edit_manifest(path, space="cosine")
    reseal(path)
    with pytest.raises(CorruptFileError, match="unit length"):
        rga.HNSWIndex.load(path)


# -- trust model: rebuild=True never hands the file to hnswlib's loader ----------------------
def test_rebuild_mode_never_calls_the_native_loader(tmp_path, monkeypatch):
    path = tmp_path / "idx"
    idx, X = small_index(path)
    import ruvector_graph_attn.index.hnsw as H

    class NoLoad(H.hnswlib.Index):
        def load_index(self, *a, **k):  # pragma: no cover - must not run
            raise AssertionError("load_index called in rebuild mode")

    class Shim:
        Index = NoLoad

    monkeypatch.setattr(H, "hnswlib", Shim)
    loaded = rga.HNSWIndex.load(path, rebuild=True)
    assert len(loaded) == len(idx) == 298 and 3 not in loaded and 4 in loaded
    np.testing.assert_array_equal(loaded.ids(), idx.ids())
    np.testing.assert_allclose(loaded.get([0, 9]), idx.get([0, 9]), rtol=1e-6)
    # same exact neighbours as brute force on this small set (ef >> n)
    ids, d = loaded.search(X[:5], k=5, ef=400)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    live = np.setdiff1d(np.arange(300), [3, 5])
    ref = live[np.argsort(1 - Xn[live] @ Xn[:5].T, axis=0)[:5].T]
    np.testing.assert_array_equal(ids, ref)
    with pytest.raises(AssertionError):
        rga.HNSWIndex.load(path)  # the default mode does use hnswlib's loader (after verification)


# -- 2. duplicate deletes ------------------------------------------------------------------
def test_delete_with_duplicates_is_refused_and_changes_nothing(tmp_path):
    idx = rga.HNSWIndex(dim=4, space="l2", num_threads=1)
    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    idx.add(np.arange(20), X)
    with pytest.raises(InvalidInputError, match="duplicates"):
        idx.delete([3, 3])
    assert 3 in idx and len(idx) == 20
    ids, _ = idx.search(X[0], k=20)
    assert sorted(ids.tolist()) == list(range(20))
    ids, _ = idx.search(X[0], k=5, filter=[3, 4])
    assert sorted(ids.tolist()) == [3, 4]
    idx.delete([3])
    with pytest.raises(UnknownIdError):
        idx.delete([3])
    idx.save(tmp_path / "i")
    loaded = rga.HNSWIndex.load(tmp_path / "i")
    assert 3 not in loaded and len(loaded) == 19
    assert sorted(loaded.search(X[0], k=19)[0].tolist()) == [i for i in range(20) if i != 3]


# -- 3. filtered search racing add ---------------------------------------------------------
def test_filtered_search_while_adding_is_consistent():
    rng = np.random.default_rng(0)
    idx = rga.HNSWIndex(dim=8, space="l2", num_threads=1)
    idx.add(np.arange(200), rng.normal(size=(200, 8)).astype(np.float32))
    errors = []
    stop = threading.Event()

    def adder():
        i = 1000
        while not stop.is_set() and i < 3000:
            idx.add(np.arange(i, i + 20), rng.normal(size=(20, 8)).astype(np.float32))
            i += 20

    def searcher():
        q = np.ones(8, np.float32)
        try:
            for _ in range(150):
                ids, d = idx.search(q, k=5, filter=lambda v: v % 2 == 0)
                assert all(v % 2 == 0 for v in ids.tolist()) and np.isfinite(d).all()
                ids, d = idx.search(q, k=5, filter=list(range(0, 3000, 3)))
                assert all(v % 3 == 0 for v in ids.tolist())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=adder)] + [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert not errors, errors[:3]


# -- 4. interrupted saves -------------------------------------------------------------------
def test_save_after_interrupted_save_keeps_a_loadable_copy(tmp_path, monkeypatch):
    path = tmp_path / "idx"
    idx, X = small_index(path)
    path.rename(tmp_path / ".idx.old")  # the first save died between its two renames
    new = rga.HNSWIndex(dim=8, space="cosine", num_threads=1)
    new.add([1], X[0])
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append((str(src), str(dst)))
        if os.path.basename(str(src)).startswith(".idx.tmp-") and str(dst) == str(path):
            raise OSError(5, "simulated fault before the new copy is in place")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        new.save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    loaded = rga.HNSWIndex.load(path)  # the old copy survived
    assert len(loaded) == 298
    assert not list(tmp_path.glob(".idx.tmp-*"))


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    path = tmp_path / "idx"
    idx, _ = small_index(path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".idx.tmp-{pid}-abcd"
    stale.mkdir()
    (stale / "index.bin").write_bytes(b"\0" * 100_000)
    live = tmp_path / f".idx.tmp-{os.getppid()}-efgh"  # a running process: kept
    live.mkdir()
    idx.save(path)
    assert not stale.exists() and live.exists()
    shutil.rmtree(live)


def test_save_refuses_to_replace_a_foreign_directory(tmp_path):
    idx, _ = small_index(tmp_path / "idx")
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(InvalidInputError, match="refusing"):
        idx.save(foreign)
    assert (foreign / "thesis.txt").read_text() == "precious"


# -- 5. zero query in a cosine index --------------------------------------------------------
def test_zero_query_in_cosine_index_is_refused():
    idx = rga.HNSWIndex(dim=4, space="cosine", num_threads=1)
    idx.add(np.arange(10), np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32) + 0.1)
    for kw in ({}, {"filter": [1, 2, 3]}):
        with pytest.raises(InvalidInputError, match="zero vector"):
            idx.search(np.zeros(4), k=3, **kw)
    import networkx as nx

    G = nx.path_graph(10)
    for i in range(10):
        G.nodes[i]["embedding"] = idx.get([i])[0]
    rr = rga.GraphReranker(index=idx, graph=rga.connectors.NetworkXGraph(G, feature_key="embedding"),
                           scorer="attention", candidates=5)
    with pytest.raises(InvalidInputError, match="zero vector"):
        rr.search(np.zeros(4), k=3)
    l2 = rga.HNSWIndex(dim=4, space="l2", num_threads=1)
    l2.add([1, 2], np.eye(4, dtype=np.float32)[:2])
    ids, d = l2.search(np.zeros(4), k=2)  # a zero query is fine in l2
    np.testing.assert_allclose(d, [1.0, 1.0])


# -- 6. ids never silently changed ------------------------------------------------------------
def test_ids_are_never_silently_converted(tmp_path):
    idx = rga.HNSWIndex(dim=2, space="l2", num_threads=1)
    v = np.eye(2, dtype=np.float32)
    with pytest.raises(InvalidInputError, match="int64"):
        idx.add(np.array([2 ** 63 + 5, 1], dtype=np.uint64), v)
    with pytest.raises(InvalidInputError, match="int64"):
        idx.add([2 ** 70, 1], v)
    with pytest.raises(InvalidInputError, match="mix"):
        idx.add([1, "a"], v)
    with pytest.raises(InvalidInputError):
        idx.add([True, False], v)
    assert len(idx) == 0
    idx.add(np.array([7, 2 ** 62], dtype=np.uint64), v)
    assert 7 in idx and 2 ** 62 in idx
    with pytest.raises(InvalidInputError, match="filter"):
        idx.search(v[0], k=1, filter="abc")
    idx.save(tmp_path / "i")
    ids = np.load(tmp_path / "i" / "ids.npy")
    np.save(tmp_path / "i" / "ids.npy", np.array([7, 2 ** 64 - 1], dtype=np.uint64)[: ids.shape[0]])
    reseal(tmp_path / "i", "ids.npy")
    with pytest.raises(CorruptFileError, match="int64"):
        rga.HNSWIndex.load(tmp_path / "i")


# -- 8. typed errors for every bad argument -------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda i: i.search(np.ones(4), k=2, filter=5),
    lambda i: i.search(np.ones(4), k=2, filter=[[1, 2]]),
    lambda i: i.search(np.ones(4), k=2, filter=np.ones((2, 2), np.int64)),
    lambda i: i.search(np.ones(4), k=2, num_threads="x"),
    lambda i: i.search(np.ones(4), k=2, filter=lambda v: 1 / 0),
    lambda i: i.add(None, np.ones((1, 4))),
    lambda i: i.delete(None),
    lambda i: i.delete(55),
    lambda i: i.get(object()),
    lambda i: i.add([{"a": 1}], np.ones((1, 4))),
    lambda i: rga.HNSWIndex.load(i._tmp, num_threads="x"),
    lambda i: rga.HNSWIndex(dim=4, seed=-1),
])
def test_bad_arguments_raise_library_errors(tmp_path, call):
    idx = rga.HNSWIndex(dim=4, space="cosine", num_threads=1)
    idx.add(np.arange(10), np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32))
    idx.save(tmp_path / "i")
    idx._tmp = tmp_path / "i"
    with pytest.raises(RgaError):
        call(idx)
    assert len(idx) == 10


# -- 11. vectors near float32 max ---------------------------------------------------------------
@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_overflowing_vectors_are_refused(space):
    idx = rga.HNSWIndex(dim=4, space=space, num_threads=1)
    idx.add([1], np.ones((1, 4), np.float32))
    with pytest.raises(InvalidInputError, match="too large"):
        idx.add([2], np.full((1, 4), 3e38, np.float32))
    with pytest.raises(InvalidInputError, match="too large"):
        idx.search(np.full(4, 1e30, np.float32), k=1)
    big = np.full((1, 4), 1e18, np.float32)  # large but representable: finite distances
    idx.add([3], big)
    _, d = idx.search(big[0], k=2)
    assert np.isfinite(d).all() and not math.isnan(float(d[0]))


def test_index_info_on_root_is_a_typed_error():
    with pytest.raises(CorruptFileError):
        rga.HNSWIndex.load("/")


@pytest.mark.slow
def test_kill_9_during_saves_always_leaves_a_loadable_index(tmp_path):
    """A writer process saving in a loop is killed with SIGKILL at varied moments; each time a
    complete index is found (the previous or the new copy), and the next save cleans up."""
    import signal
    import time

    path = tmp_path / "idx"
    small_index(path, n=400)
    code = f"""
import numpy as np, ruvector_graph_attn as rga
idx = rga.HNSWIndex.load({str(path)!r})
i = 0
while True:
    idx.add([10 ** 6 + i], np.ones(8, np.float32) + i)
    idx.save({str(path)!r})
    i += 1
"""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    rng = np.random.default_rng(0)
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        time.sleep(2.0 + float(rng.uniform(0.0, 1.0)))  # start-up, then a few saves
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = rga.HNSWIndex.load(path)
        assert len(loaded) >= 398, round_
        loaded.search(np.ones(8, np.float32), k=5)
    loaded.save(path)  # the next save removes what the killed writers left behind
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "idx"]
    assert leftovers == [], leftovers
