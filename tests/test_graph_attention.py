"""GraphAttention: hand-computed cases and a dense masked-attention numpy
reference (duplicate edges counted, rows without in-edges give 0)."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.graph import EdgeAttention, GraphAttention

EDGES = np.array([[0, 0, 2, 1, 3, 4, 2, 5, 1, 3],
                  [1, 1, 2, 2, 2, 3, 4, 4, 5, 5]], dtype=np.int64)   # dup 0->1, loop 2->2, 6 isolated


def dense_reference(Q, K, V, ei, scale):
    """Masked softmax with multiplicity counts: w_ij ∝ count(j->i) exp(s_ij)."""
    C = np.zeros((Q.shape[0], K.shape[0]))
    np.add.at(C, (ei[1], ei[0]), 1.0)
    S = Q @ K.T * scale
    S = np.where(C > 0, S, -np.inf)
    mx = S.max(axis=1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    W = C * np.exp(S - mx)
    tot = W.sum(axis=1, keepdims=True)
    W = np.divide(W, tot, out=np.zeros_like(W), where=tot > 0)
    return W @ V, W


def test_hand_computed_seed_case():
    # integration case: 3 nodes on a cycle 0->1->2->0, query = node 0
    x = np.array([[0.1] * 4, [0.2] * 4, [0.3] * 4])
    att = GraphAttention(4)
    out = att.forward_with_edges(x[0], x, x, [[0, 1, 2], [1, 2, 0]])
    np.testing.assert_allclose(out, x[2])                  # only in-neighbour of 0 is 2
    # two in-neighbours by hand: scores q.k/2 = [1, 2] -> weights e/(e+e^2), e^2/(e+e^2)
    q = np.array([1.0, 1.0, 0.0, 0.0])
    k = np.array([[1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
    v = np.array([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    out = att.forward_with_edges(q, k, v, [[0, 1], [2, 2]], target=2)
    w1 = np.exp(1) / (np.exp(1) + np.exp(2))
    np.testing.assert_allclose(out, [w1, 1 - w1], rtol=1e-12)
    ei, alpha = att.attention_weights()
    np.testing.assert_array_equal(ei, [[0, 1], [2, 2]])
    np.testing.assert_allclose(alpha, [w1, 1 - w1], rtol=1e-12)


def test_forward_with_edges_matches_dense_reference(rng):
    n, d = 7, 5
    Q = rng.standard_normal((n, d))
    K = rng.standard_normal((n, d))
    V = rng.standard_normal((n, 3))
    att = GraphAttention(d)
    out = att.forward_with_edges(Q, K, V, EDGES)
    ref, W = dense_reference(Q, K, V, EDGES, 1 / np.sqrt(d))
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    assert not out[[0, 6]].any()                            # no in-edges -> 0
    ei, alpha = att.attention_weights()
    sums = np.zeros(n)
    np.add.at(sums, ei[1], alpha)
    np.testing.assert_allclose(sums[np.unique(EDGES[1])], 1.0)
    # bipartite: 3 query rows over 7 keys, float32 kept
    ei2 = np.array([[0, 3, 6, 2, 2], [0, 0, 1, 1, 2]])
    out2 = GraphAttention(d, scale=0.3).forward_with_edges(Q[:3].astype(np.float32), K.astype(np.float32),
                                                           V.astype(np.float32), ei2)
    assert out2.dtype == np.float32
    np.testing.assert_allclose(out2, dense_reference(Q[:3], K, V, ei2, 0.3)[0], rtol=1e-5, atol=1e-6)


def test_edge_bias(rng):
    n, d = 7, 4
    X = rng.standard_normal((n, d))
    E = EDGES.shape[1]
    b = rng.standard_normal(E)
    att = GraphAttention(d)
    out = att.forward_with_edges(X, X, X, EDGES, edge_attr=b)
    s = np.einsum("ed,ed->e", X[EDGES[1]], X[EDGES[0]]) / np.sqrt(d) + b
    ref = np.zeros((n, d))
    for i in range(n):                                     # per-edge reference
        sel = EDGES[1] == i
        if sel.any():
            w = np.exp(s[sel] - s[sel].max())
            w /= w.sum()
            ref[i] = w @ X[EDGES[0, sel]]
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    # learned projection of [E, edge_dim] features
    att2 = GraphAttention(d, edge_dim=3, rng=0)
    assert list(att2.state_dict()) == ["lin_edge.weight"]
    ea = rng.standard_normal((E, 3))
    out2 = att2.forward_with_edges(X, X, X, EDGES, edge_attr=ea)
    np.testing.assert_allclose(out2, att.forward_with_edges(X, X, X, EDGES, ea @ att2.lin_edge.weight.data[0]),
                               rtol=1e-6, atol=1e-7)
    with pytest.raises(InvalidInputError):
        att.forward_with_edges(X, X, X, EDGES, edge_attr=ea)        # needs edge_dim
    with pytest.raises(DimensionMismatchError):
        att.forward_with_edges(X, X, X, EDGES, edge_attr=b[:-1])


def test_neighborhood_and_k_hop(rng):
    n, d = 7, 4
    X = rng.standard_normal((n, d))
    att = GraphAttention(d)
    full = att.forward_with_edges(X, X, X, EDGES)
    np.testing.assert_allclose(att.forward_neighborhood(4, X, EDGES), full[4], rtol=1e-12)
    np.testing.assert_allclose(att.forward_neighborhood([1, 6, 2], X, EDGES), full[[1, 6, 2]], rtol=1e-12)
    # k-hop sets by hand (in-paths): 5 <- {1, 3}, 1 <- {0}, 3 <- {4}, 4 <- {2, 5}, 2 <- {2, 1, 3}
    expected = {(5, 0): {5}, (5, 1): {5, 1, 3}, (5, 2): {5, 1, 3, 0, 4}, (5, 3): {5, 1, 3, 0, 4, 2},
                (0, 3): {0}, (6, 2): {6}, (2, 1): {2, 1, 3}}
    for (node, k), members in expected.items():
        got = att.forward_k_hop(node, X, EDGES, k)
        ei, alpha = att.attention_weights()
        assert set(ei[0].tolist()) == members and len(ei[0]) == len(members)
        idx = sorted(members)
        s = X[idx] @ X[node] / np.sqrt(d)
        w = np.exp(s - s.max())
        w /= w.sum()
        np.testing.assert_allclose(got, w @ X[idx], rtol=1e-10)
    batch = att.forward_k_hop([5, 6, 2], X, EDGES, 2)
    np.testing.assert_allclose(batch[0], att.forward_k_hop(5, X, EDGES, 2), rtol=1e-12)
    np.testing.assert_allclose(batch[1], X[6], rtol=1e-12)     # isolated: attends to itself only
    # k-hop over a long path stays linear: chain 0 -> 1 -> ... -> 999
    m = 1000
    chain = np.stack([np.arange(m - 1), np.arange(1, m)])
    Xc = rng.standard_normal((m, d))
    att.forward_k_hop(m - 1, Xc, chain, 50)
    assert att.attention_weights()[0].shape[1] == 51


def test_dense_base_trait(rng):
    d = 4
    att = EdgeAttention(d)
    Q, K, V = rng.standard_normal((3, d)), rng.standard_normal((6, d)), rng.standard_normal((6, 2))
    full_edges = np.stack([np.tile(np.arange(6), 3), np.repeat(np.arange(3), 6)])
    np.testing.assert_allclose(att.forward_batch(Q, K, V), att.forward_with_edges(Q, K, V, full_edges), rtol=1e-10)
    np.testing.assert_allclose(att.forward(Q[0], K, V), dense_reference(Q[:1], K, V, full_edges[:, :6], 0.5)[0][0])
    np.testing.assert_allclose(att.attention_weights().sum(axis=1), 1.0)


def test_validation(rng):
    X = rng.standard_normal((7, 4))
    att = GraphAttention(4)
    for bad in ([[0, 1], [1, 7]], [[-1, 0], [1, 1]], [0, 1, 2], np.array([[0.0, 1.0], [1.0, 2.0]])):
        with pytest.raises(InvalidInputError):
            att.forward_with_edges(X, X, X, bad)
        with pytest.raises(InvalidInputError):
            att.forward_neighborhood(0, X, bad)
    with pytest.raises(InvalidInputError):
        att.forward_with_edges(X[:2], X, X, EDGES)          # targets beyond the query rows
    with pytest.raises(InvalidInputError):
        att.forward_neighborhood(7, X, EDGES)
    with pytest.raises(InvalidInputError):
        att.forward_k_hop(0, X, EDGES, -1)
    with pytest.raises(DimensionMismatchError):
        GraphAttention(5).forward_neighborhood(0, X, EDGES)
    with pytest.raises(InvalidInputError):
        att.forward_with_edges(X, np.full((7, 4), np.nan), X, EDGES)


# ---------------------------------------------------------------- backward (finite differences)
from _rga_gradcheck import check_module_grads  # noqa: E402


def test_backward_with_edges(rng):
    n, d = 7, 4
    E = EDGES.shape[1]
    Q, K, V = rng.standard_normal((n, d)), rng.standard_normal((n, d)), rng.standard_normal((n, 3))
    att = GraphAttention(d)
    check_module_grads(att, [Q, K, V], lambda q, k, v: att.forward_with_edges(q, k, v, EDGES),
                       lambda g: att.backward(g)[:3], rng)
    b = rng.standard_normal(E)
    check_module_grads(att, [Q, K, V, b], lambda q, k, v, bb: att.forward_with_edges(q, k, v, EDGES, bb),
                       att.backward, rng)
    att2 = GraphAttention(d, edge_dim=2, rng=0).double()
    ea = rng.standard_normal((E, 2))
    errs = check_module_grads(att2, [Q, K, V, ea], lambda q, k, v, e: att2.forward_with_edges(q, k, v, EDGES, e),
                              att2.backward, rng)
    assert "lin_edge.weight" in errs
    # single query of node 2 (edges into other nodes get zero bias gradient)
    check_module_grads(att, [Q[0], K, V, b],
                       lambda q, k, v, bb: att.forward_with_edges(q, k, v, EDGES, bb, target=2), att.backward, rng)


def test_backward_neighborhood_k_hop_dense(rng):
    n, d = 7, 4
    X = rng.standard_normal((n, d))
    att = GraphAttention(d)
    check_module_grads(att, [X], lambda x: att.forward_neighborhood([4, 2, 6, 4], x, EDGES), att.backward, rng)
    check_module_grads(att, [X], lambda x: att.forward_neighborhood(5, x, EDGES), att.backward, rng)
    check_module_grads(att, [X], lambda x: att.forward_k_hop([5, 2], x, EDGES, 2), att.backward, rng)
    Q, K, V = rng.standard_normal((3, d)), rng.standard_normal((5, d)), rng.standard_normal((5, 2))
    check_module_grads(att, [Q, K, V], lambda q, k, v: att.forward_batch(q, k, v), att.backward, rng)
    check_module_grads(att, [Q[1], K, V], lambda q, k, v: att.forward(q, k, v), att.backward, rng)
    with pytest.raises(DimensionMismatchError):
        att.backward(np.ones(3))


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 30), st.integers(0, 2**31 - 1))
def test_random_bipartite_graphs_match_dense(m, n, e, seed):
    r = np.random.default_rng(seed)
    ei = np.stack([r.integers(0, n, e), r.integers(0, m, e)]).astype(np.int64)
    Q, K, V = r.standard_normal((m, 3)), r.standard_normal((n, 3)), r.standard_normal((n, 2))
    att = GraphAttention(3)
    out = att.forward_with_edges(Q, K, V, ei)
    np.testing.assert_allclose(out, dense_reference(Q, K, V, ei, 1 / np.sqrt(3))[0], rtol=1e-10, atol=1e-12)
    _, alpha = att.attention_weights()
    sums = np.bincount(ei[1], weights=alpha, minlength=m)
    np.testing.assert_allclose(sums[np.bincount(ei[1], minlength=m) > 0], 1.0)
