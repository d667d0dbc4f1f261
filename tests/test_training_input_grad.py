"""``backward(grad, need_input_grad=False)``: parameter gradients identical to the full
backward pass, ``None`` for the input gradients, the parameter-free prefix of a chain not
run; the trainers use it; SAGE/GIN/GINE run under the small-graph thread policy."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from ruvector_graph_attn import nn
from ruvector_graph_attn.graph import (
    GATConv, GATv2Conv, GINConv, GINEConv, GraphSequential, SAGEConv,
)
from ruvector_graph_attn.nn.layers import run_backward, supports_need_input_grad
from ruvector_graph_attn.nn.module import Module
from ruvector_graph_attn.training import Adam, NodeClassificationTrainer

N = 7
# duplicate edge 0->1, pre-existing self loop 2->2, node 0 without in-edges, node 6 isolated
EDGES = np.array([[0, 0, 2, 1, 3, 4, 2, 5, 1, 3],
                  [1, 1, 2, 2, 2, 3, 4, 4, 5, 5]], dtype=np.int64)
E = EDGES.shape[1]


def _grads(module):
    return {name: None if p.grad is None else p.grad.copy() for name, p in module.named_parameters()}


def _compare(module, run_forward, g_rng, expect_none):
    """Forward once; backward with and without the input gradient on the same cache; the
    parameter gradients must be bit-identical and the input gradient(s) None."""
    out = run_forward(module)
    g = g_rng.standard_normal(out.shape).astype(out.dtype)
    module.zero_grad()
    full = module.backward(g)
    ref = _grads(module)
    module.zero_grad()
    res = module.backward(g, need_input_grad=False)
    got = _grads(module)
    if isinstance(expect_none, tuple):
        assert res == expect_none
    else:
        assert res is None
    assert set(ref) == set(got) and ref
    for name in ref:
        assert ref[name] is not None, name
        assert got[name] is not None, name
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    parts = full if isinstance(full, tuple) else (full,)
    assert all(part is not None for part in parts)   # the default still returns input gradients
    return full


def _mlp(fin, hidden, fout, seed):
    return nn.Sequential(nn.Linear(fin, hidden, rng=seed), nn.ReLU(), nn.Linear(hidden, fout, rng=seed + 1))


X_CASES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", X_CASES)
def test_nn_modules_param_grads_identical(rng, dtype):
    x = rng.standard_normal((5, 4)).astype(dtype)
    cases = [
        nn.Linear(4, 3, rng=0),
        nn.Linear(4, 3, bias=False, rng=1),
        nn.Sequential(nn.Dropout(0.3, rng=2), nn.Tanh(), nn.Linear(4, 6, rng=3), nn.ELU(), nn.LayerNorm(6),
                      nn.LeakyReLU(0.1), nn.Linear(6, 2, rng=4)),
        nn.LayerNorm(4),
    ]
    for mod in cases:
        if dtype == np.float64:
            mod.double()
        _compare(mod, lambda m: m(x), rng, None)


def test_parameter_free_modules_return_none(rng):
    x = rng.standard_normal((3, 4))
    for mod in [nn.ReLU(), nn.LeakyReLU(), nn.ELU(), nn.Tanh(), nn.Identity(), nn.Dropout(0.5, rng=0),
                nn.Sequential(nn.ReLU(), nn.Tanh())]:
        y = mod(x)
        assert isinstance(mod.backward(np.ones_like(y)), np.ndarray)
        assert mod.backward(np.ones_like(y), need_input_grad=False) is None


@pytest.mark.parametrize("dtype", X_CASES)
def test_graph_layers_param_grads_identical(rng, dtype):
    x = rng.standard_normal((N, 4)).astype(dtype)
    ea = rng.standard_normal((E, 3)).astype(dtype)
    ea4 = rng.standard_normal((E, 4)).astype(dtype)
    x2 = rng.standard_normal((5, 3)).astype(dtype)
    bip_edges = np.array([[0, 1, 2, 3, 6, 6], [0, 0, 1, 4, 4, 2]], dtype=np.int64)
    cases = [
        (GINConv(_mlp(4, 8, 3, 0)), lambda m: m(x, EDGES), None),
        (GINConv(_mlp(4, 8, 3, 2), eps=0.2, train_eps=True), lambda m: m(x, EDGES), None),
        (GINEConv(_mlp(4, 8, 3, 4), edge_dim=3, train_eps=True, rng=1), lambda m: m(x, EDGES, ea), (None, None)),
        (GINEConv(_mlp(4, 8, 3, 6), edge_dim=3, rng=2), lambda m: m(x, EDGES, ea), (None, None)),
        (GINEConv(_mlp(4, 8, 3, 8)), lambda m: m(x, EDGES, ea4), (None, None)),
        (GINEConv(_mlp(4, 8, 3, 10), train_eps=True), lambda m: m(x, EDGES, ea4), (None, None)),
        (GATConv(4, 3, heads=2, rng=0), lambda m: m(x, EDGES), None),
        (GATConv(4, 3, heads=2, concat=False, edge_dim=3, residual=True, fill_value="max", rng=1),
         lambda m: m(x, EDGES, ea), (None, None)),
        (GATConv((4, 3), 2, heads=2, rng=2), lambda m: m((x, x2), bip_edges), (None, None)),
        (GATv2Conv(4, 3, heads=2, rng=3), lambda m: m(x, EDGES), None),
        (GATv2Conv(4, 3, heads=2, edge_dim=3, share_weights=True, residual=True, rng=4),
         lambda m: m(x, EDGES, ea), (None, None)),
    ]
    for aggr in ("mean", "max", "sum"):
        for kw in ({}, {"project": True}, {"normalize": True}, {"root_weight": False}, {"bias": False}):
            cases.append((SAGEConv(4, 3, aggr=aggr, rng=5, **kw), lambda m: m(x, EDGES), None))
    for mod, fwd, expect in cases:
        if dtype == np.float64:
            mod.double()
        mod.train()
        _compare(mod, fwd, rng, expect)


def _record_backward_calls(module, log, name):
    """Wrap ``module.backward`` to log the ``need_input_grad`` it was called with."""
    orig = module.backward

    def spy(grad, need_input_grad=True):
        log.append((name, need_input_grad))
        return orig(grad, need_input_grad=need_input_grad)

    object.__setattr__(module, "backward", spy)


def test_graph_sequential_skips_prefix_and_first_input_grad(rng):
    x = rng.standard_normal((N, 4))
    first = SAGEConv(4, 8, rng=0)
    model = GraphSequential([nn.Dropout(0.5, rng=1), nn.Tanh(), first, nn.ReLU(), nn.Dropout(0.5, rng=2),
                             SAGEConv(8, 3, rng=3)]).double()
    model.train()
    log = []
    for i, mod in enumerate(model):
        _record_backward_calls(mod, log, str(i))
    for lin in ("lin_l", "lin_r"):
        _record_backward_calls(getattr(first, lin), log, "first." + lin)
    out = model(x, EDGES)
    g = rng.standard_normal(out.shape)
    model.zero_grad()
    gx = model.backward(g)
    ref = _grads(model)
    assert isinstance(gx, np.ndarray) and gx.shape == x.shape
    log.clear()
    model.zero_grad()
    assert model.backward(g, need_input_grad=False) is None
    got = _grads(model)
    for name in ref:
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    # children 0 and 1 (no parameters, before the first layer) are not run; layer 2 is asked for
    # parameter gradients only, and so are its lin_l / lin_r
    assert log == [("5", True), ("4", True), ("3", True), ("2", False),
                   ("first.lin_l", False), ("first.lin_r", False)]


def test_graph_sequential_with_edge_features(rng):
    x = rng.standard_normal((N, 4))
    ea = rng.standard_normal((E, 3))
    model = GraphSequential([GINEConv(_mlp(4, 8, 4, 0), edge_dim=3, rng=1), nn.ReLU(),
                             GATConv(4, 2, heads=2, edge_dim=3, rng=2)]).double()
    model.train()
    _compare(model, lambda m: m(x, EDGES, ea), rng, (None, None))


def test_graph_sequential_without_parameters(rng):
    model = GraphSequential([nn.ReLU(), nn.Tanh()])
    y = model(rng.standard_normal((3, 2)))
    assert model.backward(np.ones_like(y), need_input_grad=False) is None


def test_run_backward_falls_back_for_modules_without_the_flag(rng):
    class Scale(Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2, rng=0)

        def forward(self, x):
            return self.lin(x)

        def backward(self, grad_output):          # no need_input_grad keyword
            return self.lin.backward(grad_output)

    mod = Scale()
    assert not supports_need_input_grad(mod)
    assert supports_need_input_grad(nn.Linear(2, 2))
    x = rng.standard_normal((4, 3))
    y = mod(x)
    out = run_backward(mod, np.ones_like(y), need_input_grad=False)
    assert out.shape == x.shape                   # ordinary backward ran
    np.testing.assert_allclose(mod.lin.weight.grad, np.ones((4, 2)).T @ x, rtol=1e-6)
    # inside a chain the module is still run (plain backward) and its gradients accumulate
    chain = GraphSequential([Scale(), nn.ReLU()])
    y = chain(x)
    chain.zero_grad()
    assert chain.backward(np.ones_like(y), need_input_grad=False) is None
    assert chain[0].lin.weight.grad is not None


def test_node_trainer_skips_input_gradient(rng):
    calls = []

    class Spy(GraphSequential):
        def backward(self, grad_output, need_input_grad=True):
            calls.append(need_input_grad)
            return super().backward(grad_output, need_input_grad=need_input_grad)

    x = rng.standard_normal((N, 4)).astype(np.float32)
    y = np.array([0, 1, 1, 0, 1, 0, 1])
    model = Spy([SAGEConv(4, 8, rng=0), nn.ReLU(), SAGEConv(8, 2, rng=1)])
    trainer = NodeClassificationTrainer(model, Adam(model.parameters(), lr=0.01), max_epochs=2, progress=False)
    trainer.fit(x, EDGES, y, np.ones(N, dtype=bool))
    assert calls == [False, False]


# ---------------------------------------------------------------- thread policy
def _threads_seen(log):
    class Probe(nn.Identity):
        def forward(self, x):
            log.append(numba.get_num_threads())
            return super().forward(x)

        def backward(self, grad_output, need_input_grad=True):
            log.append(numba.get_num_threads())
            return super().backward(grad_output, need_input_grad)

    return Probe()


def test_gin_small_graph_runs_numba_serial(rng):
    prev = numba.get_num_threads()
    if prev == 1:
        pytest.skip("numba runs on one thread here: nothing to observe")
    x = rng.standard_normal((N, 4))
    ea = rng.standard_normal((E, 4))
    for make, args in [(GINConv, (x, EDGES)), (GINEConv, (x, EDGES, ea))]:
        log = []
        conv = make(nn.Sequential(_threads_seen(log), nn.Linear(4, 2, rng=0)))
        y = conv(*args)
        conv.backward(np.ones_like(y))
        assert log == [1, 1]                      # serial inside the layer (forward and backward)
        assert numba.get_num_threads() == prev    # restored afterwards
    # a graph at the threshold keeps the parallel kernels
    big = np.stack([rng.integers(0, 50, 16_384), rng.integers(0, 50, 16_384)]).astype(np.int64)
    log = []
    conv = GINConv(nn.Sequential(_threads_seen(log), nn.Linear(4, 2, rng=0)))
    conv(rng.standard_normal((50, 4)), big)
    assert log == [prev]


def test_sage_small_graph_runs_numba_serial(rng, monkeypatch):
    prev = numba.get_num_threads()
    if prev == 1:
        pytest.skip("numba runs on one thread here: nothing to observe")
    import ruvector_graph_attn.graph.sage as sage_mod

    log = []
    # SAGEConv(4, 3) projects first: sage_combine forward, scaled_transpose_sum backward
    orig_fwd, orig_bwd = sage_mod.sage_combine, sage_mod.scaled_transpose_sum

    def fwd_spy(*a):
        log.append(numba.get_num_threads())
        return orig_fwd(*a)

    def bwd_spy(*a):
        log.append(numba.get_num_threads())
        return orig_bwd(*a)

    monkeypatch.setattr(sage_mod, "sage_combine", fwd_spy)
    monkeypatch.setattr(sage_mod, "scaled_transpose_sum", bwd_spy)
    conv = SAGEConv(4, 3, rng=0)
    y = conv(rng.standard_normal((N, 4)), EDGES)
    conv.backward(np.ones_like(y))
    assert log == [1, 1]
    assert numba.get_num_threads() == prev
