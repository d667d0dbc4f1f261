"""GINConv, GINEConv, SAGEConv: dense numpy references of the published equations,
float64 finite-difference gradients, state_dict names and round trips, input validation,
and (when torch_geometric is importable) equality with PyG on the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from _rga_gradcheck import check_module_grads
from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError, StateDictError
from ruvector_graph_attn.graph import GINConv, GINEConv, SAGEConv

N = 7
# duplicate edge 0->1 (twice), pre-existing self loop 2->2, node 0 has no in-edges,
# node 6 is isolated
EDGES = np.array([[0, 0, 2, 1, 3, 4, 2, 5, 1, 3],
                  [1, 1, 2, 2, 2, 3, 4, 4, 5, 5]], dtype=np.int64)


def dense_adj(ei, n):
    """A[i, j] = number of edges j -> i."""
    A = np.zeros((n, n))
    np.add.at(A, (ei[1], ei[0]), 1.0)
    return A


def mlp(fin, hidden, fout, seed):
    return nn.Sequential(nn.Linear(fin, hidden, rng=seed), nn.ReLU(), nn.Linear(hidden, fout, rng=seed + 1))


def np_mlp(seq, h):
    W0, b0 = seq[0].weight.data, seq[0].bias.data
    W2, b2 = seq[2].weight.data, seq[2].bias.data
    return np.maximum(h @ W0.T + b0, 0) @ W2.T + b2


# ---------------------------------------------------------------- GIN
def test_gin_matches_dense_reference(rng):
    x = rng.standard_normal((N, 4))
    A = dense_adj(EDGES, N)
    for eps, train in [(0.0, False), (0.3, True), (-0.2, False)]:
        conv = GINConv(mlp(4, 8, 3, 0), eps=eps, train_eps=train).double()
        eps = float(conv.state_dict()["eps"][0])      # stored as float32, like PyG
        ref = np_mlp(conv.nn, (1 + eps) * x + A @ x)
        np.testing.assert_allclose(conv(x, EDGES), ref, rtol=1e-12, atol=1e-12)
    # isolated node / no in-edges: just nn((1 + eps) x_i)
    np.testing.assert_allclose(conv(x, EDGES)[[0, 6]], np_mlp(conv.nn, (1 + eps) * x[[0, 6]]), rtol=1e-12)
    # float32 in, float32 out
    conv32 = GINConv(mlp(4, 8, 3, 0))
    assert conv32(x.astype(np.float32), EDGES).dtype == np.float32


def test_gin_state_dict_names_and_round_trip(rng):
    conv = GINConv(mlp(4, 8, 3, 0), eps=0.5)
    sd = conv.state_dict()
    assert list(sd) == ["eps", "nn.0.weight", "nn.0.bias", "nn.2.weight", "nn.2.bias"]
    assert sd["eps"].shape == (1,) and sd["eps"][0] == np.float32(0.5)
    assert [n for n, _ in conv.named_parameters()] == ["nn.0.weight", "nn.0.bias", "nn.2.weight", "nn.2.bias"]
    trained = GINConv(mlp(4, 8, 3, 0), train_eps=True)
    assert "eps" in [n for n, _ in trained.named_parameters()]
    other = GINConv(mlp(4, 8, 3, 10), eps=0.0)
    other.load_state_dict(sd)
    assert other.eps[0] == np.float32(0.5)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    np.testing.assert_array_equal(other(x, EDGES), conv(x, EDGES))
    with pytest.raises(StateDictError):
        other.load_state_dict({k: v for k, v in sd.items() if k != "eps"})
    with pytest.raises(StateDictError):
        other.load_state_dict({**sd, "lin.weight": np.ones((4, 4))})
    with pytest.raises(StateDictError):
        other.load_state_dict({**sd, "nn.0.weight": np.ones((8, 5))})


def test_gin_gradients(rng):
    for train_eps in (False, True):
        conv = GINConv(mlp(3, 5, 2, 1), eps=0.25, train_eps=train_eps).double()
        x = rng.standard_normal((N, 3))
        errs = check_module_grads(conv, [x], lambda a: conv(a, EDGES), conv.backward, rng)
        assert ("eps" in errs) == train_eps


def test_gine_matches_dense_reference(rng):
    x = rng.standard_normal((N, 4))
    E = EDGES.shape[1]
    ea = rng.standard_normal((E, 4))
    conv = GINEConv(mlp(4, 6, 3, 2), eps=0.1).double()
    eps = float(conv.state_dict()["eps"][0])
    msg = np.maximum(x[EDGES[0]] + ea, 0)
    aggr = np.zeros((N, 4))
    for e in range(E):                       # reference: one message per edge, summed per target
        aggr[EDGES[1, e]] += msg[e]
    np.testing.assert_allclose(conv(x, EDGES, ea), np_mlp(conv.nn, (1 + eps) * x + aggr), rtol=1e-12, atol=1e-12)
    assert "lin.weight" not in conv.state_dict()
    # with an edge projection lin: edge_dim -> in_features of nn[0]
    conv2 = GINEConv(mlp(4, 6, 3, 2), edge_dim=2, rng=0).double()
    assert list(conv2.state_dict()) == ["eps", "nn.0.weight", "nn.0.bias", "nn.2.weight", "nn.2.bias",
                                        "lin.weight", "lin.bias"]
    assert conv2.lin.weight.shape == (4, 2)
    ea2 = rng.standard_normal((E, 2))
    e_proj = ea2 @ conv2.lin.weight.data.T + conv2.lin.bias.data
    msg2 = np.maximum(x[EDGES[0]] + e_proj, 0)
    aggr2 = np.zeros((N, 4))
    np.add.at(aggr2, EDGES[1], msg2)
    np.testing.assert_allclose(conv2(x, EDGES, ea2), np_mlp(conv2.nn, x + aggr2), rtol=1e-12, atol=1e-12)
    with pytest.raises(InvalidInputError):
        conv2(x, EDGES)                                   # edge_attr required
    with pytest.raises(DimensionMismatchError):
        conv(x, EDGES, rng.standard_normal((E, 3)))       # width must equal node features
    with pytest.raises(DimensionMismatchError):
        conv2(x, EDGES, rng.standard_normal((E - 1, 2)))


def test_gine_gradients(rng):
    E = EDGES.shape[1]
    x = rng.standard_normal((N, 3))
    ea = rng.standard_normal((E, 3))
    conv = GINEConv(mlp(3, 4, 2, 3), eps=0.2, train_eps=True).double()
    check_module_grads(conv, [x, ea], lambda a, b: conv(a, EDGES, b), conv.backward, rng)
    conv2 = GINEConv(mlp(3, 4, 2, 3), edge_dim=2, rng=1).double()
    ea2 = rng.standard_normal((E, 2))
    errs = check_module_grads(conv2, [x, ea2], lambda a, b: conv2(a, EDGES, b), conv2.backward, rng)
    assert "lin.weight" in errs and "input1" in errs


# ---------------------------------------------------------------- SAGE
def sage_reference(conv, x, ei, aggr):
    n = x.shape[0]
    A = dense_adj(ei, n)
    xs = x
    if conv.project:
        xs = np.maximum(x @ conv.lin.weight.data.T + conv.lin.bias.data, 0)
    deg = A.sum(axis=1)
    if aggr == "sum":
        a = A @ xs
    elif aggr == "mean":
        a = (A @ xs) / np.maximum(deg, 1)[:, None]
    else:
        a = np.zeros((n, xs.shape[1]))
        for i in range(n):
            nbrs = np.nonzero(A[i])[0]
            if nbrs.size:
                a[i] = xs[nbrs].max(axis=0)
    out = a @ conv.lin_l.weight.data.T
    if conv.lin_l.bias is not None:
        out = out + conv.lin_l.bias.data
    if conv.root_weight:
        out = out + x @ conv.lin_r.weight.data.T
    if conv.normalize:
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


SAGE_CASES = [
    dict(aggr="mean"), dict(aggr="max"), dict(aggr="sum"),
    dict(aggr="mean", normalize=True), dict(aggr="max", project=True),
    dict(aggr="mean", root_weight=False, bias=False), dict(aggr="sum", project=True, normalize=True),
]


@pytest.mark.parametrize("kw", SAGE_CASES)
def test_sage_matches_dense_reference(kw, rng):
    conv = SAGEConv(4, 3, rng=0, **kw).double()
    x = rng.standard_normal((N, 4))
    ref = sage_reference(conv, x, EDGES, kw["aggr"])
    np.testing.assert_allclose(conv(x, EDGES), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", SAGE_CASES)
def test_sage_gradients(kw, rng):
    conv = SAGEConv(3, 2, rng=1, **kw).double()
    x = rng.standard_normal((N, 3))
    check_module_grads(conv, [x], lambda a: conv(a, EDGES), conv.backward, rng)


def test_sage_names():
    assert list(SAGEConv(4, 3).state_dict()) == ["lin_l.weight", "lin_l.bias", "lin_r.weight"]
    assert list(SAGEConv(4, 3, project=True, bias=False, root_weight=False).state_dict()) == [
        "lin.weight", "lin.bias", "lin_l.weight"]
    c = SAGEConv(4, 3)
    assert c.lin_l.weight.shape == (3, 4) and c.lin_r.weight.shape == (3, 4)
    with pytest.raises(InvalidInputError):
        SAGEConv(4, 3, aggr="lstm")


def test_sage_state_dict_round_trip(rng):
    a = SAGEConv(4, 3, project=True, rng=0)
    b = SAGEConv(4, 3, project=True, rng=1)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    assert not np.allclose(a(x, EDGES), b(x, EDGES))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x, EDGES), b(x, EDGES))
    sd = a.state_dict()
    with pytest.raises(StateDictError):
        b.load_state_dict({k: v for k, v in sd.items() if k != "lin_r.weight"})
    with pytest.raises(StateDictError):
        b.load_state_dict({**sd, "bias": np.zeros(3)})
    with pytest.raises(StateDictError):
        b.load_state_dict({**sd, "lin_l.weight": np.zeros((4, 3))})


# ---------------------------------------------------------------- shared behaviour
LAYERS = [
    lambda: GINConv(mlp(4, 5, 3, 0)),
    lambda: SAGEConv(4, 3, rng=0),
    lambda: SAGEConv(4, 3, aggr="max", rng=0),
]


@pytest.mark.parametrize("make", LAYERS)
def test_bad_edge_index_rejected(make, rng):
    conv = make()
    x = rng.standard_normal((N, 4))
    for bad in (np.array([[0, 1], [1, N]]),            # out of range
                np.array([[0, -1], [1, 2]]),           # negative
                np.array([0, 1, 2]),                   # wrong shape
                np.array([[0, 1, 2]]),                 # wrong shape
                np.array([[0.0, 1.0], [1.0, 2.0]])):   # float dtype
        with pytest.raises(InvalidInputError):
            conv(x, bad)
    with pytest.raises(DimensionMismatchError):
        conv(rng.standard_normal((N, 5)), EDGES)
    with pytest.raises(InvalidInputError):
        conv(np.full((N, 4), np.nan), EDGES)


@pytest.mark.parametrize("make", LAYERS)
def test_empty_edge_set_and_edge_order(make, rng):
    conv = make().double()
    x = rng.standard_normal((N, 4))
    y = conv(x, EDGES)
    perm = rng.permutation(EDGES.shape[1])
    np.testing.assert_allclose(conv(x, EDGES[:, perm]), y, rtol=1e-12, atol=1e-12)
    no_edges = conv(x, np.zeros((2, 0), dtype=np.int64))
    np.testing.assert_allclose(no_edges[6], y[6], rtol=1e-12)   # isolated node unaffected


# ---------------------------------------------------------------- PyG comparison
def _pyg():
    pytest.importorskip("torch")
    return pytest.importorskip("torch_geometric")


@pytest.mark.torch
def test_against_pyg(rng):
    _pyg()
    import torch
    from torch_geometric.nn import GINConv as PGIN, GINEConv as PGINE, SAGEConv as PSAGE

    x = rng.standard_normal((N, 4)).astype(np.float32)
    ea = rng.standard_normal((EDGES.shape[1], 2)).astype(np.float32)
    tx, tei, tea = torch.from_numpy(x), torch.from_numpy(EDGES), torch.from_numpy(ea)

    def tmlp():
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    pairs = [
        (PGIN(tmlp(), eps=0.3, train_eps=True), GINConv(mlp(4, 8, 3, 0), train_eps=True), ()),
        (PGIN(tmlp(), eps=0.1), GINConv(mlp(4, 8, 3, 0)), ()),
        (PGINE(tmlp(), edge_dim=2), GINEConv(mlp(4, 8, 3, 0), edge_dim=2), (ea,)),
    ] + [
        (PSAGE(4, 3, **kw), SAGEConv(4, 3, **kw), ()) for kw in SAGE_CASES
    ]
    for theirs, ours, extra in pairs:
        sd = theirs.state_dict()
        ours.load_state_dict(sd)
        assert set(ours.state_dict()) == set(sd)
        with torch.no_grad():
            ref = theirs(tx, tei, *(torch.from_numpy(e) for e in extra)).numpy()
        np.testing.assert_allclose(ours(x, EDGES, *extra), ref, rtol=1e-4, atol=1e-5)
        # and back: our weights load into PyG
        theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ours.state_dict().items()})


@pytest.mark.torch
def test_gradients_against_pyg_autograd(rng):
    _pyg()
    import torch
    from torch_geometric.nn import GINConv as PGIN, GINEConv as PGINE, SAGEConv as PSAGE

    torch.manual_seed(0)
    x = rng.standard_normal((N, 4))
    ea = rng.standard_normal((EDGES.shape[1], 2))
    tei = torch.from_numpy(EDGES)

    def tmlp():
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()

    def ours_mlp():
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))

    pairs = [
        (PGIN(tmlp(), eps=0.2, train_eps=True).double(), GINConv(ours_mlp(), train_eps=True), False),
        (PGINE(tmlp(), edge_dim=2, train_eps=True).double(), GINEConv(ours_mlp(), edge_dim=2, train_eps=True), True),
    ] + [(PSAGE(4, 3, **kw).double(), SAGEConv(4, 3, **kw), False) for kw in SAGE_CASES]
    for theirs, ours, with_edges in pairs:
        ours.double().load_state_dict(theirs.state_dict())
        G = rng.standard_normal((N, 3))
        tx = torch.tensor(x, requires_grad=True)
        args = (torch.tensor(ea, requires_grad=True),) if with_edges else ()
        out = theirs(tx, tei, *args)
        (out * torch.from_numpy(G)).sum().backward()
        ours.zero_grad()
        ours(x, EDGES, *((ea,) if with_edges else ()))
        grads = ours.backward(G)
        gx = grads[0] if with_edges else grads
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        if with_edges:
            np.testing.assert_allclose(grads[1], args[0].grad.numpy(), rtol=1e-9, atol=1e-12)
        tp = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------- random graphs (hypothesis)
from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def random_graph(draw):
    n = draw(st.integers(1, 9))
    e = draw(st.integers(0, 25))
    src = draw(st.lists(st.integers(0, n - 1), min_size=e, max_size=e))
    dst = draw(st.lists(st.integers(0, n - 1), min_size=e, max_size=e))
    seed = draw(st.integers(0, 2**31 - 1))
    return n, np.array([src, dst], dtype=np.int64).reshape(2, e), seed


@settings(max_examples=30, deadline=None)
@given(random_graph(), st.sampled_from(["mean", "max", "sum"]))
def test_sage_and_gin_random_graphs(graph, aggr):
    n, ei, seed = graph
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 3))
    conv = SAGEConv(3, 2, aggr=aggr, rng=seed).double()
    np.testing.assert_allclose(conv(x, ei), sage_reference(conv, x, ei, aggr), rtol=1e-10, atol=1e-12)
    gin = GINConv(mlp(3, 4, 2, seed % 1000), eps=0.5).double()
    ref = np_mlp(gin.nn, 1.5 * x + dense_adj(ei, n) @ x)
    np.testing.assert_allclose(gin(x, ei), ref, rtol=1e-10, atol=1e-12)
