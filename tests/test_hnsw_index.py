"""HNSWIndex: search semantics, ids, filters, deletes, persistence and every damaged-file case."""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import (
    CorruptFileError, DimensionMismatchError, FormatVersionError, InvalidInputError, UnknownIdError,
)


def structured(n, dim=32, centers=20, intrinsic=6, seed=0):
    """Gaussian mixture of low intrinsic dimension, linearly embedded in `dim` dimensions."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, intrinsic)) * 3.0
    z = c[rng.integers(0, centers, n)] + rng.normal(size=(n, intrinsic))
    P = rng.normal(size=(intrinsic, dim))
    return (z @ P + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)


def brute(X, q, k, space):
    if space == "l2":
        d = ((X - q) ** 2).sum(1)
    elif space == "ip":
        d = 1 - X @ q
    else:
        d = 1 - (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    o = np.argsort(d, kind="stable")[:k]
    return o, d[o]


@pytest.mark.parametrize("space", ["cosine", "ip", "l2"])
def test_distances_match_brute_force_definition(space):
    X = structured(500, 16, seed=1)
    q = structured(1, 16, seed=2)[0]
    idx = rga.HNSWIndex(dim=16, space=space, ef=500)
    idx.add(np.arange(500), X)
    ids, d = idx.search(q, k=10)
    ref_ids, ref_d = brute(X.astype(np.float64), q.astype(np.float64), 10, space)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(d, ref_d, rtol=1e-4, atol=1e-3)
    sim = idx.to_similarity(d)
    assert np.all(np.diff(sim) <= 1e-6)  # similarity decreases along the ranking


def test_recall_at_default_ef_on_structured_data():
    X = structured(5000, 64, seed=3)
    Q = structured(100, 64, seed=4)
    idx = rga.HNSWIndex(dim=64, space="l2")
    idx.add(np.arange(5000), X)
    ids, _ = idx.search(Q, k=10)
    hits = sum(len(set(ids[i]) & set(brute(X, Q[i], 10, "l2")[0])) for i in range(100))
    assert hits / 1000 >= 0.95


def test_batch_and_single_shapes_and_capacity_growth(rng):
    idx = rga.HNSWIndex(dim=8, max_elements=16)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    for start in range(0, 300, 50):  # grows past the initial capacity several times
        idx.add(np.arange(start, start + 50) + 1000, X[start:start + 50])
    assert len(idx) == 300
    ids, d = idx.search(X[:3], k=4)
    assert ids.shape == (3, 4) and d.shape == (3, 4) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids[:, 0], [1000, 1001, 1002])
    one_ids, one_d = idx.search(X[0], k=4)
    assert one_ids.shape == (4,)
    np.testing.assert_array_equal(one_ids, ids[0])
    np.testing.assert_array_equal(idx.ids(), np.arange(300) + 1000)


def test_string_ids_and_get(rng):
    X = rng.normal(size=(50, 8)).astype(np.float32)
    names = [f"doc-{i}" for i in range(50)]
    idx = rga.HNSWIndex(dim=8, space="l2")
    idx.add(names, X)
    ids, _ = idx.search(X[7], k=1)
    assert ids[0] == "doc-7"
    np.testing.assert_allclose(idx.get(["doc-3", "doc-9"]), X[[3, 9]], rtol=1e-6)
    with pytest.raises(InvalidInputError):
        idx.add([1, 2], X[:2])  # one index holds one kind of id
    with pytest.raises(UnknownIdError):
        idx.get(["nope"])


def test_filter_allow_list_and_predicate(rng):
    X = rng.normal(size=(400, 8)).astype(np.float32)
    idx = rga.HNSWIndex(dim=8, space="l2")
    idx.add(np.arange(400), X)
    q = X[0]
    allowed = [5, 17, 250, 399, 10_000]  # unknown ids in an allow-list are ignored
    ids, d = idx.search(q, k=10, filter=allowed)
    assert set(ids) == {5, 17, 250, 399}  # fewer than k eligible: only those
    ref = sorted([5, 17, 250, 399], key=lambda i: ((X[i] - q) ** 2).sum())
    assert list(ids) == ref
    ids, _ = idx.search(X[:4], k=5, filter=lambda i: i % 2 == 1)
    assert np.all(ids % 2 == 1)
    # a large allow-list goes through hnswlib's filtered search: results still obey it
    big = list(range(0, 400, 2))
    ids, _ = idx.search(q, k=10, filter=np.asarray(big))
    assert np.all(ids % 2 == 0) and ids[0] == 0


def test_deletes_not_returned_and_readd(rng):
    X = rng.normal(size=(200, 8)).astype(np.float32)
    idx = rga.HNSWIndex(dim=8, space="l2")
    idx.add(np.arange(200), X)
    idx.delete([0, 1, 2])
    assert len(idx) == 197 and 0 not in idx
    ids, _ = idx.search(X[:3], k=5)
    assert not (set(ids.ravel()) & {0, 1, 2})
    with pytest.raises(UnknownIdError):
        idx.delete([0])
    idx.add([1], X[1])  # re-adding a deleted id revives it
    assert idx.search(X[1], k=1)[0][0] == 1
    # deleting almost everything: fewer live than k, hnswlib cannot fill -> exact fallback
    idx.delete(list(range(3, 199)))
    ids, _ = idx.search(X[5], k=10)
    assert sorted(ids) == [1, 199]


def test_update_replaces_vector(rng):
    X = rng.normal(size=(20, 4)).astype(np.float32)
    idx = rga.HNSWIndex(dim=4, space="l2")
    idx.add(np.arange(20), X)
    idx.add([3], X[10] + 100.0)
    np.testing.assert_allclose(idx.get([3])[0], X[10] + 100.0, rtol=1e-6)
    assert len(idx) == 20


@pytest.mark.parametrize("bad, err", [
    (lambda i, X: i.add([1, 2], X[:3]), DimensionMismatchError),
    (lambda i, X: i.add([1], np.ones((1, 5))), DimensionMismatchError),
    (lambda i, X: i.add([1], [[np.nan] * 4]), InvalidInputError),
    (lambda i, X: i.add([1, 1], X[:2]), InvalidInputError),
    (lambda i, X: i.add([1.5], X[:1]), InvalidInputError),
    (lambda i, X: i.add([1], np.zeros((1, 4))), InvalidInputError),  # zero vector in cosine space
    (lambda i, X: i.search(np.ones(5), k=1), DimensionMismatchError),
    (lambda i, X: i.search(np.ones(4), k=0), InvalidInputError),
    (lambda i, X: i.search([np.inf, 0, 0, 0], k=1), InvalidInputError),
    (lambda i, X: i.search(np.ones((2, 2, 4)), k=1), InvalidInputError),
])
def test_bad_input(rng, bad, err):
    idx = rga.HNSWIndex(dim=4)
    X = rng.normal(size=(10, 4)).astype(np.float32)
    idx.add(np.arange(10), X)
    with pytest.raises(err):
        bad(idx, X)
    assert len(idx) == 10  # nothing lost


def test_constructor_validation():
    with pytest.raises(InvalidInputError):
        rga.HNSWIndex(dim=0)
    with pytest.raises(InvalidInputError):
        rga.HNSWIndex(dim=4, space="hamming")
    with pytest.raises(InvalidInputError):
        rga.HNSWIndex(dim=4, num_threads=0)


# ------------------------------------------------------------------ persistence
@pytest.fixture
def saved(tmp_path, rng):
    X = rng.normal(size=(300, 16)).astype(np.float32)
    idx = rga.HNSWIndex(dim=16, space="cosine", M=8)
    idx.add(np.arange(300) * 7, X)
    idx.delete([7, 14])
    path = tmp_path / "idx"
    idx.save(path)
    return idx, X, path


def test_round_trip_same_results(saved):
    idx, X, path = saved
    loaded = rga.HNSWIndex.load(path)
    a = idx.search(X[:20], k=10)
    b = loaded.search(X[:20], k=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])
    assert len(loaded) == 298 and 7 not in loaded
    assert (loaded.dim, loaded.space, loaded.M) == (16, "cosine", 8)
    loaded.add([1], X[0])  # a loaded index keeps growing
    assert len(loaded) == 299


def test_save_overwrites_atomically(saved, rng):
    idx, X, path = saved
    idx.add([99999], X[5])
    idx.save(path)
    assert 99999 in rga.HNSWIndex.load(path)
    assert not list(path.parent.glob(".idx.tmp-*")) and not (path.parent / ".idx.old").exists()


def _rewrite_manifest(path: Path, **changes):
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))


def _reseal(path: Path, name: str):
    """Recompute a file's recorded checksum and size, as a careless tool would."""
    m = json.loads((path / "manifest.json").read_text())
    data = (path / name).read_bytes()
    m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (path / "manifest.json").write_text(json.dumps(m))


def test_truncated_index_file(saved):
    _, _, path = saved
    data = (path / "index.bin").read_bytes()
    (path / "index.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated|size"):
        rga.HNSWIndex.load(path)
    _reseal(path, "index.bin")  # even with a matching checksum the structure check catches it
    with pytest.raises(CorruptFileError, match="truncated"):
        rga.HNSWIndex.load(path)


def test_tampered_byte(saved):
    _, _, path = saved
    data = bytearray((path / "index.bin").read_bytes())
    data[200] ^= 0xFF
    (path / "index.bin").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="sha256"):
        rga.HNSWIndex.load(path)


def test_tampered_header_with_matching_checksum_never_reaches_hnswlib(saved):
    _, _, path = saved
    data = bytearray((path / "index.bin").read_bytes())
    struct.pack_into("<Q", data, 16, 10 ** 9)  # cur_element_count
    (path / "index.bin").write_bytes(bytes(data))
    _reseal(path, "index.bin")
    with pytest.raises(CorruptFileError, match="element count"):
        rga.HNSWIndex.load(path)


def test_tampered_link_with_matching_checksum(saved):
    _, _, path = saved
    data = bytearray((path / "index.bin").read_bytes())
    hdr = struct.unpack_from("<QQQQQQiIQQQdQ", data, 0)
    size_el = hdr[3]
    off = 96 + 5 * size_el  # element 5's level-0 record: count, then links
    struct.pack_into("<I", data, off, 1)
    struct.pack_into("<I", data, off + 4, 4_000_000)
    (path / "index.bin").write_bytes(bytes(data))
    _reseal(path, "index.bin")
    with pytest.raises(CorruptFileError, match="outside"):
        rga.HNSWIndex.load(path)


def test_missing_and_garbage_files(saved, tmp_path):
    _, _, path = saved
    with pytest.raises(CorruptFileError):
        rga.HNSWIndex.load(tmp_path / "nothing-here")
    (path / "ids.npy").unlink()
    with pytest.raises(CorruptFileError, match="missing"):
        rga.HNSWIndex.load(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match="JSON"):
        rga.HNSWIndex.load(path)


def test_version_and_mismatch(saved):
    _, _, path = saved
    with pytest.raises(DimensionMismatchError):
        rga.HNSWIndex.load(path, dim=32)
    with pytest.raises(InvalidInputError):
        rga.HNSWIndex.load(path, space="l2")
    _rewrite_manifest(path, dim=32)  # manifest no longer describes index.bin
    with pytest.raises(CorruptFileError, match="dim=32"):
        rga.HNSWIndex.load(path)
    _rewrite_manifest(path, version=99)
    with pytest.raises(FormatVersionError):
        rga.HNSWIndex.load(path)
    _rewrite_manifest(path, version=1, format="something-else")
    with pytest.raises(CorruptFileError):
        rga.HNSWIndex.load(path)


def test_pickled_id_file_is_refused(saved):
    _, _, path = saved
    np.save(path / "ids.npy", np.asarray([object()] * 300, dtype=object), allow_pickle=True)
    _reseal(path, "ids.npy")
    with pytest.raises(CorruptFileError):
        rga.HNSWIndex.load(path)


def test_interrupted_save_recovers_previous_copy(saved):
    idx, X, path = saved
    old = path.with_name(".idx.old")
    path.rename(old)  # state after the first rename of a save that then crashed
    loaded = rga.HNSWIndex.load(path)
    assert len(loaded) == len(idx)
