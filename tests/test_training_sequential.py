"""GraphSequential: routing of graph vs ordinary layers, names, and backward chaining (FD, float64)."""
from __future__ import annotations

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import InvalidInputError, NotFittedError
from ruvector_graph_attn.graph import GINConv, GINEConv, GraphSequential, SAGEConv


def _graph():
    # duplicate edge (0->1 twice), a self loop (3->3), isolated node 5
    ei = np.array([[0, 0, 1, 2, 3, 4, 1, 2], [1, 1, 2, 0, 3, 0, 4, 3]], dtype=np.int64)
    return ei, 6


def _fd_check(model, x, ei, edge_attr=None, eps=1e-6):
    rng = np.random.default_rng(3)
    out = model(x, ei) if edge_attr is None else model(x, ei, edge_attr)
    r = rng.normal(size=out.shape)
    model.zero_grad()
    g = model.backward(r)
    gx = g[0] if isinstance(g, tuple) else g

    def loss():
        o = model(x, ei) if edge_attr is None else model(x, ei, edge_attr)
        return float((o * r).sum())

    for arr, ga in [(x, gx)] + [(p.data, p.grad) for p in model.parameters()] + (
            [(edge_attr, g[1])] if edge_attr is not None else []):
        flat = arr.reshape(-1)
        idx = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
        for i in idx:
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            num = (up - down) / (2 * eps)
            assert ga.reshape(-1)[i] == pytest.approx(num, rel=1e-6, abs=1e-8)


def test_names_and_public_path():
    m = rga.graph.GraphSequential([SAGEConv(4, 8, rng=0), nn.ReLU(), nn.Dropout(0.5),
                                   GINConv(nn.Sequential(nn.Linear(8, 8, rng=1), nn.ReLU(), nn.Linear(8, 3, rng=2)))])
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.lin_l.weight", "0.lin_l.bias", "0.lin_r.weight",
                     "3.nn.0.weight", "3.nn.0.bias", "3.nn.2.weight", "3.nn.2.bias"]
    assert list(m.state_dict()) == names[:3] + ["3.eps"] + names[3:]
    assert len(m) == 4 and isinstance(m[0], SAGEConv) and isinstance(m[-1], GINConv)


def test_forward_equals_manual_chain(rng):
    ei, n = _graph()
    x = rng.normal(size=(n, 4)).astype(np.float32)
    sage = SAGEConv(4, 8, rng=0)
    lin = nn.Linear(8, 3, rng=1)
    m = GraphSequential(sage, nn.ELU(), lin)
    want = lin(np.where(sage(x, ei) > 0, sage(x, ei), np.expm1(np.minimum(sage(x, ei), 0))))
    np.testing.assert_allclose(m(x, ei), want, rtol=1e-6)


def test_backward_chains_through_layers_fd(rng):
    ei, n = _graph()
    m = GraphSequential([SAGEConv(3, 5, rng=0), nn.Tanh(),
                         GINConv(nn.Sequential(nn.Linear(5, 4, rng=1), nn.ReLU(), nn.Linear(4, 4, rng=2)),
                                 train_eps=True, eps=0.3),
                         nn.LeakyReLU(0.1), SAGEConv(4, 2, aggr="max", rng=3)]).double()
    x = rng.normal(size=(n, 3))
    _fd_check(m, x, ei)


def test_edge_features_routed_and_gradient(rng):
    ei, n = _graph()
    gine = GINEConv(nn.Sequential(nn.Linear(3, 4, rng=1), nn.Tanh()), edge_dim=2, train_eps=True, rng=4)
    m = GraphSequential([gine, nn.Tanh(), SAGEConv(4, 2, rng=5)]).double()
    x = rng.normal(size=(n, 3))
    ea = rng.normal(size=(ei.shape[1], 2))
    out = m(x, ei, ea)
    assert out.shape == (n, 2)
    g = m.backward(np.ones_like(out))
    assert isinstance(g, tuple) and g[1].shape == ea.shape
    _fd_check(m, x, ei, ea)


def test_errors():
    ei, n = _graph()
    m = GraphSequential([SAGEConv(3, 2)])
    with pytest.raises(NotFittedError):
        m.backward(np.ones((n, 2)))
    with pytest.raises(InvalidInputError):
        m(np.ones((n, 3), np.float32))  # no edge_index
    with pytest.raises(InvalidInputError):
        m(np.ones((n, 3), np.float32), ei, np.ones((ei.shape[1], 2)))  # nobody uses edge_attr
    with pytest.raises(InvalidInputError):
        GraphSequential([])
    with pytest.raises(InvalidInputError):
        GraphSequential([np.zeros(3)])
