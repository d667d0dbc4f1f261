"""The layers' CSR: the one-pass build (``csr_grouped``), the content fingerprint and the
content-keyed cache of ``graph.utils.build_csr``; the aggregation kernels on edge cases
(isolated nodes, self loops, duplicate edges, empty graphs) against numpy references."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn import nn
from ruvector_graph_attn.graph import GINConv, SAGEConv
from ruvector_graph_attn.graph import utils as gu
from ruvector_graph_attn.kernels.aggregate import gin_combine, sage_combine
from ruvector_graph_attn.kernels.csr import csr_grouped, fingerprint


def _edge_case_graph(rng, n: int, e: int) -> np.ndarray:
    """Random edges among the first ``n - 3`` nodes (the last three are isolated), plus
    two self loops and a tripled duplicate edge."""
    ei = rng.integers(0, n - 3, size=(2, e)).astype(np.int64)
    extra = np.array([[0, 5, 2, 2, 2], [0, 5, 7, 7, 7]], dtype=np.int64)
    ei = np.concatenate([ei, extra], axis=1)
    return np.ascontiguousarray(ei[:, rng.permutation(ei.shape[1])])


def _reference_csr(index: np.ndarray, other: np.ndarray, n: int):
    perm = np.argsort(index, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(index, minlength=n), out=indptr[1:])
    return indptr, perm, other[perm]


@pytest.mark.parametrize("n,e", [(30, 120), (12, 0), (0, 0), (1, 1)])
def test_csr_grouped_matches_stable_sort(n, e, rng):
    if n > 3:
        ei = _edge_case_graph(rng, n, e)
    else:
        ei = np.zeros((2, e), dtype=np.int64)  # empty graph, or the single self loop 0 -> 0
    for row in (0, 1):
        indptr, perm, col = csr_grouped(np.ascontiguousarray(ei[row]), np.ascontiguousarray(ei[1 - row]), n)
        ref = _reference_csr(ei[row], ei[1 - row], n)
        np.testing.assert_array_equal(indptr, ref[0])
        np.testing.assert_array_equal(perm, ref[1])
        np.testing.assert_array_equal(col, ref[2])
    if n > 3:
        assert (np.diff(indptr)[-3:] == 0).all()       # the isolated nodes have empty rows


def test_fingerprint_sees_values_and_positions(rng):
    a = rng.integers(0, 1000, size=(2, 5000)).astype(np.int64)
    h = fingerprint(a)
    assert fingerprint(a.copy()) == h
    b = a.copy()
    b[1, 123] += 1
    assert fingerprint(b) != h
    c = a.copy()
    c[0, [10, 11]] = c[0, [11, 10]]
    if c[0, 10] != c[0, 11]:
        assert fingerprint(c) != h                      # same multiset, other order
    assert fingerprint(a[::-1].copy()) != h
    assert fingerprint(np.zeros((2, 0), np.int64)) == (0, 0)
    assert fingerprint(np.zeros((2, 1), np.int64)) != fingerprint(np.zeros((2, 2), np.int64))


@pytest.fixture
def big_graph(rng):
    gu.clear_csr_cache()
    n = 2000
    yield n, _edge_case_graph(rng, n, gu.CSR_CACHE_MIN_EDGES + 10)
    gu.set_csr_cache()  # defaults back, cache emptied


def test_build_csr_cache_hits_and_follows_content(big_graph):
    n, ei = big_graph
    c1 = gu.build_csr(ei, n)
    c2 = gu.build_csr(ei.copy(), n)                     # another array, same content: same CSR
    assert c2 is c1
    for a in (c1.indptr, c1.perm, c1.col, c1.index):
        assert not a.flags.writeable
    assert not np.shares_memory(c1.index, ei)           # the cache never aliases the caller's array
    ref = _reference_csr(ei[1], ei[0], n)
    np.testing.assert_array_equal(c1.col, ref[2])
    src = gu.build_csr(ei, n, by="source")
    assert src is not c1
    np.testing.assert_array_equal(src.col, _reference_csr(ei[0], ei[1], n)[2])
    assert gu.build_csr(ei, n + 5) is not c1             # the node count is part of the key
    ei[0, 17] = (ei[0, 17] + 1) % n                      # changed in place: a new key
    c3 = gu.build_csr(ei, n)
    assert c3 is not c1
    np.testing.assert_array_equal(c3.col, _reference_csr(ei[1], ei[0], n)[2])
    np.testing.assert_array_equal(c3.index, ei[1])


def test_build_csr_cache_bounds(big_graph, rng):
    n, ei = big_graph
    gu.set_csr_cache(max_entries=2)
    graphs = [ei] + [_edge_case_graph(rng, n, gu.CSR_CACHE_MIN_EDGES) for _ in range(2)]
    first = gu.build_csr(graphs[0], n)
    gu.build_csr(graphs[1], n)
    assert gu.build_csr(graphs[0], n) is first           # refreshed: now most recently used
    gu.build_csr(graphs[2], n)                           # evicts graphs[1]
    assert gu.build_csr(graphs[0], n) is first
    gu.set_csr_cache(max_entries=0)                      # off: every call builds
    a, b = gu.build_csr(ei, n), gu.build_csr(ei, n)
    assert a is not b and a.col.flags.writeable
    np.testing.assert_array_equal(a.col, b.col)
    gu.set_csr_cache(max_entries=4, max_bytes=1000)      # a graph larger than the byte bound is not kept
    assert gu.build_csr(ei, n) is not gu.build_csr(ei, n)
    small = ei[:, :100].copy()                           # below the size threshold: never cached
    gu.set_csr_cache()
    assert gu.build_csr(small, n) is not gu.build_csr(small, n)


def test_layers_on_cached_csr_follow_graph_changes(big_graph, rng):
    n, ei = big_graph
    x = rng.standard_normal((n, 6))
    gin = GINConv(nn.Sequential(nn.Linear(6, 5, rng=0, dtype=np.float64), nn.ReLU(),
                                nn.Linear(5, 4, rng=1, dtype=np.float64)), eps=0.3)
    sage = SAGEConv(6, 4, aggr="mean", rng=2)

    def ref(e):
        agg = np.zeros_like(x)
        np.add.at(agg, e[1], x[e[0]])
        deg = np.bincount(e[1], minlength=n)
        w1, b1 = gin.nn[0].weight.data, gin.nn[0].bias.data
        w2, b2 = gin.nn[2].weight.data, gin.nn[2].bias.data
        g = np.maximum((agg + (1.0 + float(gin.eps[0])) * x) @ w1.T + b1, 0) @ w2.T + b2
        mean = agg / np.maximum(deg, 1)[:, None]
        s = mean @ sage.lin_l.weight.data.T.astype(np.float64) + sage.lin_l.bias.data + x @ sage.lin_r.weight.data.T
        return g, s

    for _ in range(2):                                   # the second round runs on cached CSRs
        g, s = ref(ei)
        np.testing.assert_allclose(gin(x, ei), g, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sage(x, ei), s, rtol=1e-4, atol=1e-5)
    ei[1, :50] = rng.integers(0, n, 50)                  # rewire in place
    g, s = ref(ei)
    np.testing.assert_allclose(gin(x, ei), g, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sage(x, ei), s, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n,e", [(25, 90), (9, 0), (0, 0)])
def test_aggregation_kernels_on_edge_cases(n, e, rng):
    ei = _edge_case_graph(rng, n, e) if n > 3 and e else np.zeros((2, 0), np.int64)
    csr = gu.build_csr(ei, n)
    width = 3
    hl = rng.standard_normal((n, width))
    hr = rng.standard_normal((n, width))
    bias = rng.standard_normal(width)
    agg = np.zeros((n, width))
    np.add.at(agg, ei[1], hl[ei[0]])
    deg = np.bincount(ei[1], minlength=n)
    mean = agg / np.maximum(deg, 1)[:, None]
    np.testing.assert_allclose(sage_combine(hl, hr, csr.indptr, csr.col, bias, True), mean + hr + bias,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sage_combine(hl, np.empty((0, width)), csr.indptr, csr.col, bias, False),
                               agg + bias, rtol=1e-12, atol=1e-12)
    both = np.concatenate([hl, hr], axis=1)              # column views of one wider product
    np.testing.assert_allclose(sage_combine(both[:, :width], both[:, width:], csr.indptr, csr.col, bias, True),
                               mean + hr + bias, rtol=1e-12, atol=1e-12)
    x32 = rng.standard_normal((n, 4)).astype(np.float32)
    agg_x = np.zeros((n, 4))
    np.add.at(agg_x, ei[1], x32[ei[0]].astype(np.float64))
    out = gin_combine(x32, csr.indptr, csr.col, 0.75)
    assert out.dtype == np.float32 and out.shape == (n, 4)
    np.testing.assert_allclose(out, agg_x + 0.75 * x32, rtol=1e-5, atol=1e-5)


def test_fingerprint_key_changes_every_hash(rng):
    a = rng.integers(0, 1000, size=(2, 500)).astype(np.int64)
    h0 = fingerprint(a)
    h1 = fingerprint(a, np.uint64(12345))
    h2 = fingerprint(a, np.uint64(54321))
    assert h1 != h0 and h2 != h0 and h1 != h2
    assert h1[0] != h0[0] and h1[1] != h0[1]          # both sums are keyed
    assert fingerprint(a.copy(), np.uint64(12345)) == h1
