"""Readouts: numpy references per graph, weights, finite-difference gradients, PyG parity."""
from __future__ import annotations

import numpy as np
import pytest

from _rga_gradcheck import check_module_grads
from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.graph import (
    AttentionalAggregation, GlobalAttentionPool, MaxPool, MeanPool, QueryAttentionPool, SumPool,
    global_add_pool, global_max_pool, global_mean_pool,
)

# unsorted batch; graph 2 has no nodes when size=4
BATCH = np.array([1, 0, 1, 3, 0, 1, 3, 3, 0, 1])


def softmax(v):
    e = np.exp(v - v.max(axis=0))
    return e / e.sum(axis=0)


def test_basic_pools_against_numpy(rng):
    x = rng.standard_normal((10, 3))
    s, ws = global_add_pool(x, BATCH)
    m, wm = global_mean_pool(x, BATCH)
    mx, wx = global_max_pool(x, BATCH)
    assert s.shape == (4, 3)
    for g in range(4):
        sel = BATCH == g
        if sel.any():
            np.testing.assert_allclose(s[g], x[sel].sum(0), rtol=1e-12)
            np.testing.assert_allclose(m[g], x[sel].mean(0), rtol=1e-12)
            np.testing.assert_allclose(mx[g], x[sel].max(0), rtol=1e-12)
            np.testing.assert_allclose(wm[sel], 1 / sel.sum())
            assert abs(wx[sel].sum() - 1) < 1e-12
        else:
            assert not s[g].any() and not m[g].any() and not mx[g].any()
    np.testing.assert_array_equal(ws, np.ones(10))
    # max weights: share of features each node wins
    winners = np.zeros(10)
    for g in (0, 1, 3):
        idx = np.nonzero(BATCH == g)[0]
        for c in range(3):
            winners[idx[np.argmax(x[idx, c])]] += 1 / 3
    np.testing.assert_allclose(wx, winners, rtol=1e-12)
    # batch=None is one graph; size adds empty graphs
    one, _ = global_mean_pool(x)
    np.testing.assert_allclose(one[0], x.mean(0), rtol=1e-12)
    six, _ = global_add_pool(x, BATCH, size=6)
    assert six.shape == (6, 3) and not six[4:].any()


def test_pool_validation(rng):
    x = rng.standard_normal((10, 3))
    with pytest.raises(DimensionMismatchError):
        global_add_pool(x, BATCH[:5])
    with pytest.raises(InvalidInputError):
        global_add_pool(x, -BATCH)
    with pytest.raises(InvalidInputError):
        global_add_pool(x, BATCH.astype(float))
    with pytest.raises(InvalidInputError):
        global_add_pool(x, BATCH, size=2)
    with pytest.raises(InvalidInputError):
        global_max_pool(np.full((10, 3), np.inf), BATCH)


@pytest.mark.parametrize("pool", [SumPool, MeanPool, MaxPool])
def test_basic_pool_gradients(pool, rng):
    p = pool()
    x = rng.standard_normal((10, 3))
    check_module_grads(p, [x], lambda a: p(a, BATCH, 4)[0], p.backward, rng)


def gate_mlp(fin, c, seed):
    return nn.Sequential(nn.Linear(fin, 4, rng=seed), nn.Tanh(), nn.Linear(4, c, rng=seed + 1))


def test_attentional_aggregation_reference(rng):
    x = rng.standard_normal((10, 3))
    for c, feat in [(1, None), (5, nn.Linear(3, 5, rng=9)), (1, nn.Linear(3, 2, rng=9))]:
        pool = AttentionalAggregation(gate_mlp(3, c, 0), feat).double()
        out, w = pool(x, BATCH, size=4)
        gate = pool.gate_nn[2](np.tanh(pool.gate_nn[0](x)))
        h = x if feat is None else x @ feat.weight.data.T + feat.bias.data
        for g in range(4):
            sel = BATCH == g
            if not sel.any():
                assert not out[g].any()
                continue
            a = softmax(gate[sel])                     # [n_g, c], per column
            np.testing.assert_allclose(out[g], (a * h[sel]).sum(0), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(w[sel].reshape(a.shape), a, rtol=1e-10)
            np.testing.assert_allclose(w[sel].sum(0), 1.0)
    assert GlobalAttentionPool is AttentionalAggregation
    pool = AttentionalAggregation(gate_mlp(3, 1, 0), nn.Linear(3, 2))
    assert list(pool.state_dict()) == ["gate_nn.0.weight", "gate_nn.0.bias", "gate_nn.2.weight",
                                       "gate_nn.2.bias", "nn.weight", "nn.bias"]
    with pytest.raises(DimensionMismatchError):
        AttentionalAggregation(gate_mlp(3, 3, 0), nn.Linear(3, 2))(x, BATCH)


@pytest.mark.parametrize("c, feat", [(1, False), (1, True), (2, True)])
def test_attentional_aggregation_gradients(c, feat, rng):
    pool = AttentionalAggregation(gate_mlp(3, c, 0), nn.Linear(3, 2, rng=3) if feat else None).double()
    x = rng.standard_normal((10, 3))
    check_module_grads(pool, [x], lambda a: pool(a, BATCH, 4)[0], pool.backward, rng)


def test_query_attention_pool(rng):
    x = rng.standard_normal((10, 3))
    q = rng.standard_normal((4, 3))
    pool = QueryAttentionPool(temperature=0.5)
    out, w = pool(x, q, BATCH)
    for g in (0, 1, 3):
        sel = BATCH == g
        a = softmax(x[sel] @ q[g] / 0.5)
        np.testing.assert_allclose(w[sel], a, rtol=1e-10)
        np.testing.assert_allclose(out[g], a @ x[sel], rtol=1e-10)
    assert not out[2].any()
    shared, ws = pool(x, q[0], BATCH)
    a = softmax(x[BATCH == 1] @ q[0] / 0.5)
    np.testing.assert_allclose(shared[1], a @ x[BATCH == 1], rtol=1e-10)
    one, w1 = QueryAttentionPool()(x, q[0])
    np.testing.assert_allclose(one[0], softmax(x @ q[0]) @ x, rtol=1e-10)
    with pytest.raises(DimensionMismatchError):
        pool(x, rng.standard_normal(4), BATCH)
    with pytest.raises(DimensionMismatchError):
        pool(x, rng.standard_normal((3, 3)), BATCH)
    with pytest.raises(InvalidInputError):
        QueryAttentionPool(temperature=0)


@pytest.mark.parametrize("shared", [False, True])
def test_query_attention_pool_gradients(shared, rng):
    pool = QueryAttentionPool(temperature=0.7)
    x = rng.standard_normal((10, 3))
    q = rng.standard_normal(3) if shared else rng.standard_normal((4, 3))
    check_module_grads(pool, [x, q], lambda a, b: pool(a, b, BATCH, 4)[0], pool.backward, rng)


@pytest.mark.torch
def test_against_pyg(rng):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_geometric")
    from torch_geometric.nn import global_add_pool as padd, global_max_pool as pmax, global_mean_pool as pmean
    from torch_geometric.nn.aggr import AttentionalAggregation as PAA

    x = rng.standard_normal((10, 3)).astype(np.float32)
    tx, tb = torch.from_numpy(x), torch.from_numpy(BATCH)
    for ours, theirs in [(global_add_pool, padd), (global_mean_pool, pmean), (global_max_pool, pmax)]:
        np.testing.assert_allclose(ours(x, BATCH, 4)[0], theirs(tx, tb, 4).numpy(), rtol=1e-5, atol=1e-6)
    tg = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    theirs = PAA(tg, torch.nn.Linear(3, 2))
    ours = AttentionalAggregation(gate_mlp(3, 1, 0), nn.Linear(3, 2))
    ours.load_state_dict(theirs.state_dict())
    with torch.no_grad():
        ref = theirs(tx, tb, dim_size=4).numpy()
    np.testing.assert_allclose(ours(x, BATCH, 4)[0], ref, rtol=1e-5, atol=1e-6)


@pytest.mark.torch
def test_attentional_aggregation_gradients_against_pyg(rng):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_geometric")
    from torch_geometric.nn.aggr import AttentionalAggregation as PAA

    torch.manual_seed(0)
    x = rng.standard_normal((10, 3))
    tg = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    theirs = PAA(tg, torch.nn.Linear(3, 2).double())
    ours = AttentionalAggregation(gate_mlp(3, 1, 0), nn.Linear(3, 2)).double()
    ours.load_state_dict(theirs.state_dict())
    G = rng.standard_normal((4, 2))
    tx = torch.tensor(x, requires_grad=True)
    (theirs(tx, torch.from_numpy(BATCH), dim_size=4) * torch.from_numpy(G)).sum().backward()
    ours(x, BATCH, 4)
    np.testing.assert_allclose(ours.backward(G), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
