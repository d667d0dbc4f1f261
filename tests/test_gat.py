"""GATConv / GATv2Conv: dense numpy references of the published equations, attention sums,
finite-difference gradients (float64), state_dict handling, input validation, PyG equality."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn.errors import (
    DimensionMismatchError, InvalidInputError, NotFittedError, StateDictError,
)
from ruvector_graph_attn.graph import GATConv, GATv2Conv

from _rga_gradcheck import numeric_grad

N = 8
# 2->1 twice (duplicate), 3->3 (pre-existing self loop), 6 isolated, 5 and 7 have no in-edges
EI = np.array([[0, 2, 2, 3, 4, 1, 0, 3, 5, 4, 7],
               [1, 1, 1, 3, 0, 2, 2, 4, 4, 1, 0]], dtype=np.int64)
E = EI.shape[1]


# ----------------------------------------------------------------------------- references
def ref_edges(ei, ea, n, add_loops, fill):
    """Self-loop handling written from PyG's description: drop loops, append (i, i) for
    every node, loop feature = fill (or reduction of the node's incoming features)."""
    if not add_loops:
        return ei, ea
    keep = [k for k in range(ei.shape[1]) if ei[0, k] != ei[1, k]]
    ei2 = ei[:, keep]
    loops = np.stack([np.arange(n), np.arange(n)])
    out_ei = np.concatenate([ei2, loops], axis=1)
    if ea is None:
        return out_ei, None
    ea2 = ea[keep]
    rows = []
    for i in range(n):
        inc = [ea2[k] for k in range(ei2.shape[1]) if ei2[1, k] == i]
        if isinstance(fill, str):
            red = {"mean": np.mean, "add": np.sum, "max": np.max, "min": np.min}[fill]
            rows.append(red(np.array(inc), axis=0) if inc else np.zeros(ea.shape[1]))
        else:
            rows.append(np.full(ea.shape[1], fill))
    return out_ei, np.concatenate([ea2, np.array(rows)], axis=0)


def lrelu(v, s):
    return np.where(v > 0, v, s * v)


def ref_gat(sd, x, ei, ea, heads, c, concat=True, slope=0.2, add_loops=True, fill="mean"):
    """Velickovic et al.: alpha_ij = softmax_j(LeakyReLU(a^T [W x_i || W x_j] (+ a_e^T W_e e_ij)))."""
    n = x.shape[0]
    ei, ea = ref_edges(ei, ea, n, add_loops, fill)
    wx = (x @ sd["lin.weight"].T).reshape(n, heads, c)
    a_s, a_d = sd["att_src"][0], sd["att_dst"][0]
    out = np.zeros((n, heads, c))
    alpha = np.zeros((ei.shape[1], heads))
    for i in range(n):
        es = np.flatnonzero(ei[1] == i)
        if es.size == 0:
            continue
        for h in range(heads):
            s = np.array([wx[ei[0, k], h] @ a_s[h] + wx[i, h] @ a_d[h]
                          + (((sd["lin_edge.weight"] @ ea[k]).reshape(heads, c)[h] @ sd["att_edge"][0, h])
                             if ea is not None else 0.0) for k in es])
            s = lrelu(s, slope)
            w = np.exp(s - s.max())
            w /= w.sum()
            alpha[es, h] = w
            out[i, h] = sum(w[t] * wx[ei[0, k], h] for t, k in enumerate(es))
    y = out.reshape(n, heads * c) if concat else out.mean(axis=1)
    if "res.weight" in sd:
        y = y + x @ sd["res.weight"].T
    if "bias" in sd:
        y = y + sd["bias"]
    return y, ei, alpha


def ref_gatv2(sd, x, ei, ea, heads, c, concat=True, slope=0.2, add_loops=True, fill="mean"):
    """Brody et al.: e_ij = a^T LeakyReLU(W_l x_j + W_r x_i (+ W_e e_ij)); messages W_l x_j."""
    n = x.shape[0]
    ei, ea = ref_edges(ei, ea, n, add_loops, fill)
    xl = (x @ sd["lin_l.weight"].T + sd.get("lin_l.bias", 0)).reshape(n, heads, c)
    xr = (x @ sd["lin_r.weight"].T + sd.get("lin_r.bias", 0)).reshape(n, heads, c)
    att = sd["att"][0]
    out = np.zeros((n, heads, c))
    alpha = np.zeros((ei.shape[1], heads))
    for i in range(n):
        es = np.flatnonzero(ei[1] == i)
        for h in range(heads):
            if es.size == 0:
                continue
            s = []
            for k in es:
                z = xl[ei[0, k], h] + xr[i, h]
                if ea is not None:
                    z = z + (sd["lin_edge.weight"] @ ea[k]).reshape(heads, c)[h]
                s.append(lrelu(z, slope) @ att[h])
            s = np.array(s)
            w = np.exp(s - s.max())
            w /= w.sum()
            alpha[es, h] = w
            out[i, h] = sum(w[t] * xl[ei[0, k], h] for t, k in enumerate(es))
    y = out.reshape(n, heads * c) if concat else out.mean(axis=1)
    if "bias" in sd:
        y = y + sd["bias"]
    return y, ei, alpha


def randomise(layer, rng, scale=1.0):
    sd = {k: rng.uniform(-scale, scale, size=v.shape) for k, v in layer.state_dict().items()}
    layer.load_state_dict(sd)
    return {k: v.astype(np.float64) for k, v in layer.state_dict().items()}


@pytest.fixture
def data(rng):
    x = rng.normal(size=(N, 5))
    ea = rng.normal(size=(E, 3))
    return x, ea


# ----------------------------------------------------------------------------- forward
GAT_CONFIGS = [
    dict(heads=1),
    dict(heads=3, concat=True),
    dict(heads=2, concat=False),
    dict(heads=2, edge_dim=3),
    dict(heads=2, edge_dim=3, fill_value="max", concat=False),
    dict(heads=2, edge_dim=3, fill_value=0.5),
    dict(heads=2, edge_dim=3, fill_value=np.array([0.1, -0.2, 0.3])),
    dict(heads=2, add_self_loops=False),
    dict(heads=2, bias=False, negative_slope=0.05),
    dict(heads=2, residual=True, edge_dim=3, fill_value="add"),
]


@pytest.mark.parametrize("cfg", GAT_CONFIGS)
def test_gatconv_matches_dense_reference(cfg, data, rng):
    x, ea = data
    layer = GATConv(5, 4, rng=0, **cfg).double()
    sd = randomise(layer, rng)
    use_ea = ea if "edge_dim" in cfg else None
    out, (ei_used, alpha) = layer(x, EI, use_ea, return_attention_weights=True)
    ref, ref_ei, ref_alpha = ref_gat(sd, x, EI, use_ea, cfg.get("heads", 1), 4, cfg.get("concat", True),
                                     cfg.get("negative_slope", 0.2), cfg.get("add_self_loops", True),
                                     cfg.get("fill_value", "mean"))
    np.testing.assert_array_equal(ei_used, ref_ei)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cfg", [dict(heads=1), dict(heads=3, edge_dim=3), dict(heads=2, concat=False),
                                 dict(heads=2, share_weights=True, edge_dim=3, fill_value="min"),
                                 dict(heads=2, add_self_loops=False, bias=False)])
def test_gatv2conv_matches_dense_reference(cfg, data, rng):
    x, ea = data
    layer = GATv2Conv(5, 4, rng=1, **cfg).double()
    sd = randomise(layer, rng)
    if cfg.get("share_weights"):
        assert layer.lin_l is layer.lin_r
        sd["lin_r.weight"], sd["lin_r.bias"] = sd["lin_l.weight"], sd["lin_l.bias"]
    use_ea = ea if "edge_dim" in cfg else None
    out, (ei_used, alpha) = layer(x, EI, use_ea, return_attention_weights=True)
    ref, ref_ei, ref_alpha = ref_gatv2(sd, x, EI, use_ea, cfg.get("heads", 1), 4, cfg.get("concat", True),
                                       0.2, cfg.get("add_self_loops", True), cfg.get("fill_value", "mean"))
    np.testing.assert_array_equal(ei_used, ref_ei)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [GATConv, GATv2Conv])
@pytest.mark.parametrize("add_loops", [True, False])
def test_attention_sums_to_one_per_target_and_head(cls, add_loops, data):
    x, _ = data
    layer = cls(5, 4, heads=3, add_self_loops=add_loops, rng=3)
    _, (ei, alpha) = layer(x.astype(np.float32), EI, return_attention_weights=True)
    assert alpha.shape == (ei.shape[1], 3) and alpha.dtype == np.float32
    sums = np.zeros((N, 3))
    np.add.at(sums, ei[1], alpha)
    has_in = np.bincount(ei[1], minlength=N) > 0
    np.testing.assert_allclose(sums[has_in], 1.0, rtol=1e-5)
    assert np.all(sums[~has_in] == 0)
    assert has_in.all() == add_loops  # with loops every node has an in-edge


def test_hand_computed_uniform_attention_counts_duplicates():
    """With zero attention vectors every in-edge of a node gets the same weight, so the
    output is the plain mean of the projected sources, a duplicate edge counting twice."""
    layer = GATConv(1, 1, heads=1, add_self_loops=False, bias=False)
    layer.load_state_dict({"att_src": np.zeros((1, 1, 1)), "att_dst": np.zeros((1, 1, 1)),
                           "lin.weight": np.array([[2.0]])})
    x = np.array([[1.0], [10.0], [100.0]], dtype=np.float32)
    ei = np.array([[1, 1, 2, 0], [0, 0, 0, 1]])
    out, (_, alpha) = layer(x, ei, return_attention_weights=True)
    np.testing.assert_allclose(alpha[:, 0], [1 / 3, 1 / 3, 1 / 3, 1.0], rtol=1e-6)
    np.testing.assert_allclose(out[:, 0], [2 * (10 + 10 + 100) / 3, 2.0, 0.0], rtol=1e-6)


def test_isolated_node_and_no_in_edges(data, rng):
    x, _ = data
    layer = GATConv(5, 4, heads=2, add_self_loops=False, rng=4)
    layer.load_state_dict({**layer.state_dict(), "bias": rng.normal(size=8)})
    out = layer(x, EI)
    for node in (5, 6, 7):  # no in-edges: only the bias
        np.testing.assert_allclose(out[node], layer.bias.data, rtol=1e-6)
    looped = GATConv(5, 4, heads=2, rng=4, bias=False)
    out2 = looped(x, EI)
    proj = (x @ looped.lin.weight.data.T.astype(np.float64))
    np.testing.assert_allclose(out2[6], proj[6], rtol=1e-5)  # isolated: attends only to itself


def test_gatconv_ignores_edge_attr_without_edge_dim_like_pyg(data):
    x, ea = data
    layer = GATConv(5, 4, heads=2, rng=5)
    np.testing.assert_array_equal(layer(x, EI, ea), layer(x, EI))
    with pytest.raises(InvalidInputError, match="edge_dim"):
        GATv2Conv(5, 4, rng=5)(x, EI, ea)


def test_float64_kept_and_float32_default(data):
    x, _ = data
    layer = GATConv(5, 4, heads=2, rng=6)
    # lists are arrays of rows (a two-row list is not a bipartite pair; only tuples are)
    np.testing.assert_allclose(layer(x[:2].tolist(), [[0, 1], [1, 0]]), layer(x[:2], np.array([[0, 1], [1, 0]])))
    assert layer(x.astype(np.float32), EI).dtype == np.float32
    assert layer(x, EI).dtype == np.float64
    assert layer.lin.weight.data.dtype == np.float32


def test_bipartite_pair_input(rng):
    xs, xd = rng.normal(size=(6, 5)), rng.normal(size=(4, 3))
    ei = np.array([[0, 5, 2, 2, 3], [0, 1, 3, 3, 1]])
    layer = GATConv((5, 3), 4, heads=2, rng=7).double()
    sd = layer.state_dict()
    out, (ei_used, alpha) = layer((xs, xd), ei, return_attention_weights=True)
    assert out.shape == (4, 8)
    # (0, 0) counts as a self loop (as in PyG) and is removed; loops 0..min(6, 4)-1 appended
    assert ei_used.shape[1] == 4 + 4
    ps = (xs @ sd["lin_src.weight"].T).reshape(6, 2, 4)
    pd = (xd @ sd["lin_dst.weight"].T).reshape(4, 2, 4)
    s = lrelu((ps[ei_used[0]] * sd["att_src"]).sum(-1) + (pd[ei_used[1]] * sd["att_dst"]).sum(-1), 0.2)
    ref = np.zeros((4, 2, 4))
    for i in range(4):
        m = ei_used[1] == i
        w = np.exp(s[m] - s[m].max(0))
        w /= w.sum(0)
        np.testing.assert_allclose(alpha[m], w, rtol=1e-10)
        ref[i] = (w[:, :, None] * ps[ei_used[0][m]]).sum(0)
    np.testing.assert_allclose(out, ref.reshape(4, 8) + sd["bias"], rtol=1e-10, atol=1e-12)
    with pytest.raises(InvalidInputError, match="target node"):
        layer((xs, xd), np.array([[0], [4]]))


# ----------------------------------------------------------------------------- dropout
def test_attention_dropout_only_in_training(data):
    x, _ = data
    layer = GATConv(5, 4, heads=2, dropout=0.5, rng=8)
    layer.eval()
    out_eval, (_, a_eval) = layer(x, EI, return_attention_weights=True)
    np.testing.assert_array_equal(layer(x, EI), out_eval)
    layer.train()
    out_tr, (ei, a_tr) = layer(x, EI, return_attention_weights=True)
    dropped = a_tr == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_allclose(a_tr[~dropped], 2.0 * a_eval[~dropped], rtol=1e-6)
    # the output uses the dropped coefficients
    again = GATConv(5, 4, heads=2, dropout=0.5, rng=8)
    again.load_state_dict(layer.state_dict())
    ref = np.zeros((N, 2, 4))
    proj = (x @ layer.lin.weight.data.T).reshape(N, 2, 4)
    np.add.at(ref, ei[1], a_tr[:, :, None] * proj[ei[0]])
    np.testing.assert_allclose(out_tr, ref.reshape(N, 8) + layer.bias.data, rtol=1e-5, atol=1e-6)
    # seeded: the same seed gives the same mask
    l1, l2 = GATConv(5, 4, heads=2, dropout=0.3, rng=9), GATConv(5, 4, heads=2, dropout=0.3, rng=9)
    np.testing.assert_array_equal(l1(x, EI), l2(x, EI))


# ----------------------------------------------------------------------------- gradients
def _fd_check(layer, x, ea, reseed=None, eps=1e-6):
    """Central differences of L = sum(w * layer(x, EI, ea)) w.r.t. x, edge_attr and every parameter."""
    rng = np.random.default_rng(99)
    out = layer(x, EI, ea) if reseed is None else (reseed(), layer(x, EI, ea))[1]
    w = rng.normal(size=out.shape)

    def loss():
        if reseed is not None:
            reseed()
        return float((layer(x, EI, ea) * w).sum())

    if reseed is not None:
        reseed()
    layer.zero_grad()
    layer(x, EI, ea)
    grads = layer.backward(w)
    gx, gea = grads if ea is not None else (grads, None)
    checks = [("x", x, gx)] + ([("edge_attr", ea, gea)] if ea is not None else [])
    checks += [(name, p.data, p.grad) for name, p in layer.named_parameters()]
    for name, arr, analytic in checks:
        num = numeric_grad(loss, arr, eps)
        assert analytic is not None and analytic.shape == arr.shape, name
        err = np.linalg.norm(analytic - num) / max(np.linalg.norm(num), np.linalg.norm(analytic), 1e-300)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


GRAD_CONFIGS = [
    (GATConv, dict(heads=2, edge_dim=3)),
    (GATConv, dict(heads=2, concat=False, edge_dim=3, fill_value="max", residual=True)),
    (GATConv, dict(heads=1, add_self_loops=False)),
    (GATv2Conv, dict(heads=2, edge_dim=3)),
    (GATv2Conv, dict(heads=2, concat=False, share_weights=True, edge_dim=3, fill_value="add")),
    (GATv2Conv, dict(heads=3, residual=True)),
]


@pytest.mark.parametrize("cls,cfg", GRAD_CONFIGS)
def test_backward_matches_finite_differences(cls, cfg, data, rng):
    x, ea = data
    layer = cls(5, 3, rng=10, **cfg).double()
    randomise(layer, rng, scale=0.7)
    _fd_check(layer, x.copy(), ea.copy() if "edge_dim" in cfg else None)


@pytest.mark.parametrize("cls", [GATConv, GATv2Conv])
def test_backward_with_attention_dropout(cls, data, rng):
    x, ea = data
    layer = cls(5, 3, heads=2, dropout=0.4, edge_dim=3, rng=11).double()
    randomise(layer, rng, scale=0.7)
    layer.train()

    def reseed():
        object.__setattr__(layer, "_rng", np.random.default_rng(1234))  # the same mask every call

    _fd_check(layer, x.copy(), ea.copy(), reseed=reseed)


def test_backward_bipartite_and_errors(rng):
    xs, xd = rng.normal(size=(6, 5)), rng.normal(size=(4, 3))
    ei = np.array([[0, 5, 2, 2, 3], [0, 1, 3, 3, 1]])
    layer = GATv2Conv((5, 3), 2, heads=2, rng=12).double()
    w = rng.normal(size=(4, 4))
    layer((xs, xd), ei)
    gs, gd = layer.backward(w)
    eps = 1e-6
    for arr, g in ((xs, gs), (xd, gd)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(*arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            lp = (layer((xs, xd), ei) * w).sum()
            arr[idx] = old - eps
            lm = (layer((xs, xd), ei) * w).sum()
            arr[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)
    with pytest.raises(NotFittedError):
        GATConv(5, 2).backward(np.zeros((3, 2)))
    layer2 = GATConv(5, 2, heads=2)
    layer2(np.ones((3, 5)), np.array([[0], [1]]))
    with pytest.raises(DimensionMismatchError):
        layer2.backward(np.zeros((3, 2)))


# ----------------------------------------------------------------------------- state dict
def test_state_dict_names_shapes_and_round_trip(data, rng):
    x, ea = data
    layer = GATConv(5, 4, heads=3, edge_dim=3, rng=13)
    sd = layer.state_dict()
    assert {k: v.shape for k, v in sd.items()} == {
        "att_src": (1, 3, 4), "att_dst": (1, 3, 4), "att_edge": (1, 3, 4), "bias": (12,),
        "lin.weight": (12, 5), "lin_edge.weight": (12, 3)}
    assert np.all(sd["bias"] == 0)
    bound = np.sqrt(6 / (12 + 5))
    assert np.abs(sd["lin.weight"]).max() <= bound and np.abs(sd["lin.weight"]).max() > 0.5 * bound
    other = GATConv(5, 4, heads=3, edge_dim=3, rng=14)
    assert not np.allclose(other(x, EI, ea), layer(x, EI, ea))
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other(x, EI, ea), layer(x, EI, ea))
    v2 = GATv2Conv(5, 4, heads=2, concat=False, edge_dim=3, rng=15)
    assert {k: v.shape for k, v in v2.state_dict().items()} == {
        "att": (1, 2, 4), "bias": (4,), "lin_l.weight": (8, 5), "lin_l.bias": (8,),
        "lin_r.weight": (8, 5), "lin_r.bias": (8,), "lin_edge.weight": (8, 3)}
    v2b = GATv2Conv(5, 4, heads=2, concat=False, edge_dim=3, rng=16)
    v2b.load_state_dict(v2.state_dict())
    np.testing.assert_array_equal(v2b(x, EI, ea), v2(x, EI, ea))


def test_load_state_dict_errors():
    layer = GATConv(5, 4, heads=2)
    sd = layer.state_dict()
    missing = dict(sd)
    del missing["att_dst"]
    with pytest.raises(StateDictError, match="att_dst"):
        layer.load_state_dict(missing)
    with pytest.raises(StateDictError, match="lin_edge.weight"):
        layer.load_state_dict({**sd, "lin_edge.weight": np.zeros((8, 3))})
    with pytest.raises(StateDictError, match="lin.weight"):
        layer.load_state_dict({**sd, "lin.weight": np.zeros((8, 6))})
    with pytest.raises(StateDictError):
        GATv2Conv(5, 4).load_state_dict({**GATv2Conv(5, 4).state_dict(), "att": np.zeros((1, 2, 4))})


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("cls", [GATConv, GATv2Conv])
def test_bad_inputs_raise(cls, data):
    x, ea = data
    layer = cls(5, 4, heads=2, edge_dim=3)
    with pytest.raises(InvalidInputError, match="only 8 nodes"):
        layer(x, np.array([[0, 8], [1, 1]]))
    with pytest.raises(InvalidInputError, match="negative"):
        layer(x, np.array([[0, -1], [1, 1]]))
    with pytest.raises(InvalidInputError, match=r"\[2, E\]"):
        layer(x, np.array([0, 1, 2]))
    with pytest.raises(InvalidInputError, match=r"\[2, E\]"):
        layer(x, np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(InvalidInputError, match="integer dtype"):
        layer(x, EI.astype(np.float64))
    with pytest.raises(DimensionMismatchError):
        layer(x[:, :4], EI)
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        layer(bad, EI)
    with pytest.raises(InvalidInputError):
        layer(np.zeros((0, 5)), np.zeros((2, 0), dtype=np.int64))
    with pytest.raises(DimensionMismatchError):
        layer(x, EI, ea[:3])
    with pytest.raises(DimensionMismatchError):
        layer(x, EI, ea[:, :2])
    with pytest.raises(InvalidInputError):
        cls(5, 4, heads=0)
    with pytest.raises(InvalidInputError):
        cls(5, 4, dropout=1.5)
    with pytest.raises(InvalidInputError):
        cls(5, 4, fill_value="median")


def test_edge_attr_1d_is_one_feature(data, rng):
    x, _ = data
    layer = GATConv(5, 4, heads=2, edge_dim=1, rng=17)
    e1 = rng.normal(size=E)
    np.testing.assert_array_equal(layer(x, EI, e1), layer(x, EI, e1[:, None]))
    _, g2 = layer.backward(np.ones((N, 8)))
    layer(x, EI, e1)
    _, g1 = layer.backward(np.ones((N, 8)))
    assert g1.shape == (E,) and g2.shape == (E, 1)
    np.testing.assert_allclose(g1, g2[:, 0])


# ----------------------------------------------------------------------------- PyG
PYG_CONFIGS = [
    ("GATConv", dict(heads=1)),
    ("GATConv", dict(heads=4, edge_dim=3)),
    ("GATConv", dict(heads=3, concat=False, edge_dim=3, fill_value="max")),
    ("GATConv", dict(heads=2, add_self_loops=False, negative_slope=0.1)),
    ("GATConv", dict(heads=2, residual=True, bias=False, edge_dim=3, fill_value=0.3)),
    ("GATv2Conv", dict(heads=1)),
    ("GATv2Conv", dict(heads=4, edge_dim=3)),
    ("GATv2Conv", dict(heads=3, concat=False, share_weights=True)),
    ("GATv2Conv", dict(heads=2, edge_dim=3, fill_value="min", residual=True)),
]


@pytest.mark.torch
@pytest.mark.parametrize("name,cfg", PYG_CONFIGS)
def test_equal_to_pytorch_geometric(name, cfg, data):
    torch = pytest.importorskip("torch")
    tg = pytest.importorskip("torch_geometric.nn")
    x, ea = data
    x32, ea32 = x.astype(np.float32), ea.astype(np.float32)
    torch.manual_seed(0)
    ref = getattr(tg, name)(5, 4, **cfg)
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(-1, 1)
    ours = {"GATConv": GATConv, "GATv2Conv": GATv2Conv}[name](5, 4, **cfg)
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    use = "edge_dim" in cfg
    xt = torch.tensor(x32, requires_grad=True)
    eat = torch.tensor(ea32, requires_grad=True) if use else None
    t_out, (t_ei, t_alpha) = ref(xt, torch.tensor(EI), eat, return_attention_weights=True)
    out, (ei_used, alpha) = ours(x32, EI, ea32 if use else None, return_attention_weights=True)
    np.testing.assert_array_equal(ei_used, t_ei.numpy())
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alpha, t_alpha.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = np.random.default_rng(1).normal(size=out.shape).astype(np.float32)
    (t_out * torch.tensor(w)).sum().backward()
    grads = ours.backward(w)
    gx = grads[0] if use else grads
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    if use:
        np.testing.assert_allclose(grads[1], eat.grad.numpy(), rtol=1e-4, atol=1e-5)
    params = dict(ours.named_parameters())
    for pname, p in ref.named_parameters():
        np.testing.assert_allclose(params[pname].grad, p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=pname)


@pytest.mark.torch
def test_state_dict_loads_into_pytorch_geometric(data):
    torch = pytest.importorskip("torch")
    tg = pytest.importorskip("torch_geometric.nn")
    x, ea = data
    ours = GATConv(5, 4, heads=2, edge_dim=3, rng=18)
    ref = tg.GATConv(5, 4, heads=2, edge_dim=3)
    ref.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x32, ea32 = x.astype(np.float32), ea.astype(np.float32)
    np.testing.assert_allclose(ours(x32, EI, ea32), ref(torch.tensor(x32), torch.tensor(EI),
                                                         torch.tensor(ea32)).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [GATConv, GATv2Conv])
@pytest.mark.parametrize("add_loops", [True, False])
def test_no_edges(cls, add_loops, rng):
    """Zero edges: with loops every node attends to itself only; without, only the bias."""
    x = rng.normal(size=(4, 3))
    layer = cls(3, 2, heads=2, add_self_loops=add_loops, edge_dim=2, rng=19).double()
    randomise(layer, rng)
    ei = np.zeros((2, 0), dtype=np.int64)
    out, (ei_used, alpha) = layer(x, ei, np.zeros((0, 2)), return_attention_weights=True)
    assert ei_used.shape == (2, 4 if add_loops else 0) and alpha.shape == (ei_used.shape[1], 2)
    if add_loops:
        assert np.all(alpha == 1.0)
        proj = (x @ (layer.lin.weight.data if cls is GATConv else layer.lin_l.weight.data).T
                + (0 if cls is GATConv else layer.lin_l.bias.data))
        np.testing.assert_allclose(out, proj + layer.bias.data, rtol=1e-12)
    else:
        np.testing.assert_allclose(out, np.broadcast_to(layer.bias.data, out.shape))
    gx, gea = layer.backward(np.ones_like(out))
    assert gx.shape == x.shape and gea.shape == (0, 2)


def test_non_native_inputs(data):
    """Big-endian, Fortran-ordered and int32 inputs give the same result (float64 kept)."""
    x, _ = data
    layer = GATConv(5, 4, heads=2, rng=20)
    ref = layer(x, EI)
    got = layer(np.asfortranarray(x).astype(">f8"), EI.astype(">i8"))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(layer(x, EI.astype(np.int32)), ref)
