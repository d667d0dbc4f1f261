"""The shared graph primitives (kernels/csr.py, bfs.py, segment.py softmax, hashing.py,
threads.py) against numpy / networkx references and hand-checked cases, and the typed
errors of the validation helpers they route through."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from ruvector_graph_attn.errors import (
    ConfigError, DimensionMismatchError, GraphSourceError, InvalidInputError, Neo4jServerError,
)
from ruvector_graph_attn.kernels import bfs, csr, hashing, threads
from ruvector_graph_attn.kernels.segment import (
    segment_softmax, segment_softmax_neg_sq, segment_softmax_runs,
)
from ruvector_graph_attn.validation import check_float, check_int, check_positive_int


@pytest.fixture
def rng():
    return np.random.default_rng(3)


# ----------------------------------------------------------------------------- CSR
def test_csr_from_index_is_a_stable_counting_sort(rng):
    idx = rng.integers(0, 7, 200).astype(np.int64)
    indptr, perm = csr.csr_from_index(idx, 9)
    np.testing.assert_array_equal(perm, np.argsort(idx, kind="stable"))
    np.testing.assert_array_equal(indptr, np.r_[0, np.cumsum(np.bincount(idx, minlength=9))])
    assert indptr[-1] == 200 and indptr[8] == indptr[9] == 200  # groups 7, 8 are empty


def test_csr_of_pairs_hand_checked():
    src = np.array([2, 0, 2, 1, 0], np.int64)
    dst = np.array([5, 6, 7, 8, 9], np.int64)
    indptr, indices, order = csr.csr_of_pairs(src, dst, 4)
    np.testing.assert_array_equal(indptr, [0, 2, 3, 5, 5])
    np.testing.assert_array_equal(order, [1, 4, 3, 0, 2])
    np.testing.assert_array_equal(indices, [6, 9, 8, 5, 7])


def test_numpy_csr_helpers_hand_checked():
    np.testing.assert_array_equal(csr.indptr_from_counts(np.array([2, 0, 3])), [0, 2, 2, 5])
    order, starts = csr.group_runs(np.array([5, 3, 5, 3, 9]))
    np.testing.assert_array_equal(order, [1, 3, 0, 2, 4])     # stable: equal keys keep input order
    np.testing.assert_array_equal(starts, [0, 2, 4])
    np.testing.assert_array_equal(np.maximum.reduceat(np.array([10, 11, 12, 13, 14])[order], starts),
                                  [13, 12, 14])
    np.testing.assert_array_equal(csr.rank_in_runs(np.array([0, 0, 0, 4, 7, 7])), [0, 1, 2, 0, 0, 1])
    indptr = np.array([0, 2, 2, 5])
    entries, which = csr.row_entries(indptr, np.array([2, 0, 1, 2]))
    np.testing.assert_array_equal(entries, [2, 3, 4, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(which, [0, 0, 0, 1, 1, 3, 3, 3])
    e, w = csr.row_entries(indptr, np.array([1]))
    assert e.size == 0 and w.size == 0


# ----------------------------------------------------------------------------- k-hop BFS
def _nx_khop(G, centre, hops):
    return nx.single_source_shortest_path_length(G, centre, cutoff=hops)


def test_khop_neighbourhoods_match_networkx(rng):
    G = nx.gnm_random_graph(60, 150, seed=2, directed=True)
    src, dst = np.array(list(G.edges), np.int64).T
    indptr, indices, _ = csr.csr_of_pairs(src, dst, 60)
    centres = np.array([0, 5, 5, 17, 59], np.int64)   # a repeated centre gets its own segment
    for hops in (0, 1, 2, 3):
        ptr, members, mhop = bfs.khop_neighbourhoods(indptr, indices, centres, hops)
        assert ptr[0] == 0 and ptr[-1] == members.size
        for i, c in enumerate(centres):
            seg, h = members[ptr[i]:ptr[i + 1]], mhop[ptr[i]:ptr[i + 1]]
            ref = _nx_khop(G, int(c), hops)
            assert seg[0] == c and h[0] == 0
            assert dict(zip(seg.tolist(), h.tolist())) == ref          # each node once, at its distance
            assert np.all(np.diff(h) >= 0)                            # BFS order
        owner, member = bfs.khop_members(indptr, indices, centres, hops, 60)
        np.testing.assert_array_equal(member, members)
        np.testing.assert_array_equal(owner, np.repeat(np.arange(centres.size), np.diff(ptr)))


def test_khop_hand_checked_path():
    # 0 -> 1 -> 2 -> 3, 0 -> 2
    indptr, indices, _ = csr.csr_of_pairs(np.array([0, 1, 2, 0]), np.array([1, 2, 3, 2]), 4)
    ptr, members, mhop = bfs.khop_neighbourhoods(indptr, indices, np.array([0, 3], np.int64), 2)
    np.testing.assert_array_equal(ptr, [0, 4, 5])
    np.testing.assert_array_equal(members, [0, 1, 2, 3, 3])
    np.testing.assert_array_equal(mhop, [0, 1, 1, 2, 0])


def test_csr_expand_union_and_scratch_restored():
    # undirected path 0-1-2-3-4 as distinct neighbour pairs, edge ids 0..3
    u = np.array([0, 1, 1, 2, 2, 3, 3, 4], np.int64)
    v = np.array([1, 0, 2, 1, 3, 2, 4, 3], np.int64)
    e = np.array([0, 0, 1, 1, 2, 2, 3, 3], np.int64)
    indptr, nbr, order = csr.csr_of_pairs(u, v, 5)
    ef = e[order]
    local = np.full(5, -1, np.int64)
    keys = np.arange(5, dtype=np.int64)
    nodes, hop, s, d, eid, org = bfs.csr_expand(indptr, nbr, ef, np.full(8, -1, np.int64),
                                                np.array([2], np.int64), 2, -1, 0, local, keys)
    np.testing.assert_array_equal(nodes, [2, 1, 3, 0, 4])
    np.testing.assert_array_equal(hop, [0, 1, 1, 2, 2])
    assert np.all(local == -1)
    # edges as local positions: 2->1, 2->3 at hop 0, then 1->0, 1->2 (back), 3->2, 3->4
    pairs = set(zip(nodes[s].tolist(), nodes[d].tolist()))
    assert pairs == {(2, 1), (2, 3), (1, 0), (1, 2), (3, 2), (3, 4)}
    assert set(eid.tolist()) == {0, 1, 2, 3}
    # a cap of 1 keeps the neighbour with the smallest pair hash
    nodes1, *_ = bfs.csr_expand(indptr, nbr, ef, np.full(8, -1, np.int64), np.array([2], np.int64), 1, 1, 7,
                                local, keys)
    want = min((1, 3), key=lambda w: int(hashing.pair_hash(7, 2, w)))
    np.testing.assert_array_equal(nodes1, [2, want])


# ----------------------------------------------------------------------------- segment softmax
def _ref_segment_softmax(logits, groups, n):
    out = np.zeros_like(logits, dtype=np.float64)
    for g in range(n):
        m = groups == g
        if m.any():
            z = logits[m] - logits[m].max()
            out[m] = np.exp(z) / np.exp(z).sum()
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_softmax_and_variants_match_numpy(rng, dtype):
    groups = rng.integers(0, 12, 300).astype(np.int64)
    indptr, perm = csr.csr_from_index(groups, 14)
    s = rng.normal(size=(300, 2)).astype(dtype) * 5
    tol = 1e-6 if dtype == np.float32 else 1e-12
    out = segment_softmax(s, indptr, perm)
    for h in range(2):
        np.testing.assert_allclose(out[:, h], _ref_segment_softmax(s[:, h].astype(np.float64), groups, 14),
                                   rtol=tol, atol=tol)
    dist = np.abs(rng.normal(size=300)).astype(dtype)
    w = segment_softmax_neg_sq(dist, perm, indptr, 1.0 / 0.7)
    assert w.dtype == dtype
    ref = _ref_segment_softmax(-(dist.astype(np.float64) ** 2) / 0.7, groups, 14)
    np.testing.assert_allclose(w, ref, rtol=tol, atol=tol)
    srt = np.sort(groups)
    runs = segment_softmax_runs(s[:, 0].copy(), csr.indptr_from_counts(np.bincount(srt, minlength=14)))
    np.testing.assert_allclose(runs, _ref_segment_softmax(s[:, 0].astype(np.float64), srt, 14), rtol=tol, atol=tol)


def test_segment_softmax_hand_checked_and_extremes():
    ptr = np.array([0, 2, 2, 5], np.int64)      # runs of 2, 0 and 3 entries
    logits = np.array([0.0, math.log(3.0), -np.inf, -np.inf, -np.inf])
    w = segment_softmax_runs(logits, ptr)
    np.testing.assert_allclose(w[:2], [0.25, 0.75], rtol=1e-15)
    np.testing.assert_array_equal(w[2:], 0.0)   # all -inf: weights 0, not NaN
    big = np.array([[1e308], [-1e308], [1e308]])
    a = segment_softmax(big, np.array([0, 3], np.int64), np.arange(3, dtype=np.int64))
    np.testing.assert_allclose(a[:, 0], [0.5, 0.0, 0.5])
    # squared-distance variant: d = 0 and d = 1 at T = 1 -> weights 1/(1+e^-1), e^-1/(1+e^-1)
    w2 = segment_softmax_neg_sq(np.array([0.0, 1.0]), np.array([1, 0], np.int64), np.array([0, 2], np.int64), 1.0)
    np.testing.assert_allclose(w2, [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))], rtol=1e-15)


# ----------------------------------------------------------------------------- hashing
def _splitmix64_ref(x: int) -> int:
    m = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    return x ^ (x >> 31)


def test_splitmix64_known_values_and_numba_numpy_agree():
    # the SplitMix64 generator seeded with 0 yields 0xE220A8397B1DCDAF first (reference sequence)
    assert int(hashing.splitmix64(np.uint64(0))) == 0xE220A8397B1DCDAF == _splitmix64_ref(0)
    u = np.array([-5, 0, 1, 2 ** 40, -(2 ** 62)], np.int64)
    v = np.array([3, 9, -1, 7, 2 ** 62], np.int64)
    np_h = hashing.pair_hash_np(11, u, v)
    for i in range(u.size):
        ref = _splitmix64_ref(_splitmix64_ref(_splitmix64_ref(11) ^ (int(u[i]) & (2 ** 64 - 1)))
                              ^ (int(v[i]) & (2 ** 64 - 1)))
        assert int(np_h[i]) == ref == int(hashing.pair_hash(11, u[i], v[i]))
    assert int(hashing.rand_below(11, 5, 2, 10)) == int(hashing.pair_hash(11, 5, 2)) % 10


def test_id_key_rule():
    assert hashing.id_key(42) == 42 and hashing.id_key(np.int64(-3)) == -3
    k = hashing.id_key("paper/7")
    import hashlib
    assert k == int.from_bytes(hashlib.blake2b(b"paper/7", digest_size=8).digest(), "little", signed=True)
    assert hashing.id_key(True) == hashing.id_key("True")      # a bool is not an integer id


# ----------------------------------------------------------------------------- thread policy
def test_serial_below_sets_and_restores_numba_threads():
    import numba

    prev = numba.get_num_threads()
    with threads.serial_below(10, 100):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == prev
    with threads.serial_below(1000, 100):
        assert numba.get_num_threads() == prev
    seen = threads.call_serial_below(numba.get_num_threads, 5, 100)
    assert seen == 1 and numba.get_num_threads() == prev
    assert threads.pick("par", "ser", 99, 100) == "ser" and threads.pick("par", "ser", 100, 100) == "par"


def test_compile_twice_gives_equal_results_and_separate_cache_entries():
    from ruvector_graph_attn.kernels import softmax

    x = np.random.default_rng(0).normal(size=(4, 9))
    a, b = np.empty_like(x), np.empty_like(x)
    softmax._softmax_rows_par(x, 1.0, a)
    softmax._softmax_rows_ser(x, 1.0, b)
    np.testing.assert_allclose(a, b, rtol=1e-15)
    assert softmax._softmax_rows_par.targetoptions.get("parallel") is True
    assert not softmax._softmax_rows_ser.targetoptions.get("parallel")
    name = lambda d: d._cache._cache_file._index_name   # noqa: E731
    assert name(softmax._softmax_rows_par) != name(softmax._softmax_rows_ser)


# ----------------------------------------------------------------------------- validation errors
def test_check_int_and_check_float_typed_errors():
    assert check_int(np.int32(4), "k", lo=1, hi=5) == 4 and isinstance(check_int(np.int64(2), "k"), int)
    for bad in (True, 1.0, "3", None):
        with pytest.raises(InvalidInputError, match=r"k must be an integer >= 0, got"):
            check_int(bad, "k", lo=0)
    with pytest.raises(InvalidInputError, match=r"k must be an integer in \[1, 5\], got 6"):
        check_int(6, "k", lo=1, hi=5)
    with pytest.raises(ConfigError):
        check_int(0, "dim", lo=1, error=ConfigError)
    assert check_float(np.float32(0.5), "blend", lo=0.0, hi=1.0) == 0.5
    for bad in (float("nan"), float("inf"), 0.0, -1, False, "1"):
        with pytest.raises(InvalidInputError, match="temperature must be a finite number > 0"):
            check_float(bad, "temperature", lo=0.0, lo_open=True)
    with pytest.raises(InvalidInputError, match=r"in \[0.0, 1.0\]"):
        check_float(1.5, "blend", lo=0.0, hi=1.0)
    with pytest.raises(InvalidInputError, match="must be an integer > 0|>= 1"):
        check_positive_int(0, "ef")
    assert check_positive_int(0, "x", allow_zero=True) == 0


def test_routed_checks_raise_typed_errors():
    import ruvector_graph_attn as rga
    from ruvector_graph_attn.connectors import NetworkXGraph
    from ruvector_graph_attn.connectors.base import check_hops
    from ruvector_graph_attn.graph.utils import validate_edge_index
    from ruvector_graph_attn.kernels.dense import pair_dot
    from ruvector_graph_attn.kernels.topk import topk_rows
    from ruvector_graph_attn.manifold import PoincareBall, Product, Sphere

    with pytest.raises(InvalidInputError, match="hops"):
        check_hops(1.0)
    with pytest.raises(InvalidInputError, match="num_nodes"):
        validate_edge_index(np.zeros((2, 0), np.int64), True)
    G = nx.path_graph(3)
    for n in G.nodes:
        G.nodes[n]["embedding"] = np.ones(2, np.float32)
    g = NetworkXGraph(G)
    with pytest.raises(InvalidInputError, match="seed"):
        g.expand([0], seed=-1)
    with pytest.raises(InvalidInputError, match="max_neighbors"):
        g.expand([0], max_neighbors=2.0)
    with pytest.raises(ConfigError, match="dim"):
        rga.ScaledDotProductAttention(dim=True)
    with pytest.raises(ConfigError, match="scale"):
        rga.ScaledDotProductAttention(dim=4, scale=float("nan"))
    with pytest.raises(InvalidInputError, match="Product dims"):
        Product([PoincareBall(), Sphere()], dims=[2, 0])
    with pytest.raises(InvalidInputError, match="scale"):
        rga.HyperbolicGraphAttention().embed(np.ones((2, 3)), scale=0)
    # kernel wrappers raise the library's errors
    with pytest.raises(InvalidInputError, match="k"):
        topk_rows(np.ones((2, 3)), 4)
    with pytest.raises(InvalidInputError, match="NaN"):
        topk_rows(np.array([1.0, np.nan]), 1)
    with pytest.raises(DimensionMismatchError):
        pair_dot(np.ones((2, 3)), np.ones((2, 4)))
    assert issubclass(Neo4jServerError, GraphSourceError)
    from ruvector_graph_attn.connectors.neo4j.server import Neo4jServerError as FromServer
    assert FromServer is Neo4jServerError


def test_update_parameters_steps_only_this_module():
    from ruvector_graph_attn.nn import Linear
    from ruvector_graph_attn.training.optim import SGD

    a, b = Linear(2, 2), Linear(2, 2)
    opt = SGD(a.parameters() + b.parameters(), lr=0.5)
    for p in a.parameters() + b.parameters():
        p.grad = np.ones_like(p.data)
    wa, wb = a.weight.data.copy(), b.weight.data.copy()
    a.update_parameters(opt)
    np.testing.assert_allclose(a.weight.data, wa - 0.5)
    np.testing.assert_array_equal(b.weight.data, wb)          # the other module is untouched
    assert len(opt.parameters()) == 4                          # the optimizer keeps all its groups
    with pytest.raises(InvalidInputError, match="none of this Linear"):
        Linear(2, 2).update_parameters(opt)
