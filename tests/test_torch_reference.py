"""Comparison with the real PyTorch / PyTorch Geometric / geoopt layers, WITHOUT torch.

The fixtures ``tests/reference/*.npz`` were written by ``tests/reference/make_torch_refs.py``
(run by hand with torch + PyG + geoopt installed; see docs/reference_fixtures.md). Each
case holds the inputs, the torch ``state_dict`` under torch's names, the torch outputs
(and attention weights with the edge_index PyG attended over) and the gradients of
``L = sum(out * R)`` (``R`` = ``in/gout``) w.r.t. the inputs and every parameter.

Every case loads the state_dict into OUR layer with ``load_state_dict`` (strict: the
names and shapes must match torch's exactly), runs forward and ``backward(R)`` and
compares. The torch references were computed in float64 from float32-representable
inputs and weights, so both of our precisions are checked against the same numbers:

* float64 (``layer.double()``): ``rtol=1e-9``, ``atol=1e-9 * max(1, max|ref|)``: only
  summation order may differ, so any semantic slip (a missing term, a wrong loop
  attribute, a different normalisation) fails by many orders of magnitude;
* float32 (the library default): ``rtol=1e-5``, ``atol=1e-6 * max(1, max|ref|)``
  (float32 rounding through a few dozen operations);
* geoopt's PoincareBall: the references were computed by geoopt *in* float32 and float64
  (its projection margin depends on the dtype): float64 as above; float32
  ``rtol=1e-5``, ``atol=1e-5 * max(1, max|ref|)`` (distances near the boundary go
  through ``artanh`` close to 1, which amplifies the float32 rounding of its argument);
* training trajectories (5 optimizer steps of a 2-layer GAT): both dtypes, tolerances as
  above (measured float32 drift after 5 steps: <= 2.5e-7 absolute);
* geoopt's RiemannianAdam / RiemannianSGD trajectories: float64, tolerances as above.

Covered: GATConv, GATv2Conv, GINConv, GINEConv, SAGEConv, global pools,
AttentionalAggregation, MultiHeadAttention (torch.nn.MultiheadAttention), scaled dot-product
attention, SGD / Adam / AdamW on a 2-layer GAT, PoincareBall, the Riemannian optimizers,
torch.nn modules (Linear, LayerNorm, activations) and the training losses.

This module does not import torch.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn import nn as rnn
from ruvector_graph_attn.graph import (
    AttentionalAggregation, DirGNNConv, GATConv, GATv2Conv, GINConv, GINEConv, GraphSequential, MaxPool, MeanPool,
    SAGEConv,
    SumPool, global_add_pool, global_max_pool, global_mean_pool,
)
from ruvector_graph_attn.manifold import PoincareBall
from ruvector_graph_attn.nn import Parameter
from ruvector_graph_attn.training import (
    SGD, Adam, AdamW, RiemannianAdam, RiemannianSGD, binary_cross_entropy_with_logits, cross_entropy, margin_ranking,
    mse,
)

REF_DIR = Path(__file__).parent / "reference"
FILES = ("gat", "gin_sage", "readout", "attention", "training", "poincare", "riemannian", "nn", "dirgnn")
MAX_TOTAL_BYTES = 2 * 1024 * 1024

#: (rtol, atol factor) per dtype; atol = factor * max(1, max|reference|)
TOL = {np.float64: (1e-9, 1e-9), np.float32: (1e-5, 1e-6)}
TOL_BALL32 = (1e-5, 1e-5)

#: cases where our layer disagrees with torch: (file, case, dtype name) -> reason.
#: Each is marked xfail(strict=True) so the suite stays green until the owner fixes it.
KNOWN_MISMATCH: dict[tuple[str, str, str], str] = {}


# ----------------------------------------------------------------------------- loading
@lru_cache(maxsize=None)
def _fixture(name: str) -> dict:
    """``{case: {"meta": dict, "in": {...}, "sd": {...}, "out": {...}, ...}}`` plus ``"__meta__"``."""
    path = REF_DIR / f"{name}.npz"
    cases: dict = {}
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            if key == "__meta__":
                cases["__meta__"] = json.loads(str(z[key]))
                continue
            case, rest = key.split("/", 1)
            entry = cases.setdefault(case, {})
            if rest == "meta":
                entry["meta"] = json.loads(str(z[key]))
            else:
                group, name_ = rest.split("/", 1)
                entry.setdefault(group, {})[name_] = z[key]
    return cases


def _case_names(name: str) -> list[str]:
    path = REF_DIR / f"{name}.npz"
    if not path.exists():
        return []
    with np.load(path, allow_pickle=False) as z:
        return sorted({k.split("/", 1)[0] for k in z.files if k != "__meta__"})


def _params(file: str, dtypes=(np.float32, np.float64)) -> list:
    out = []
    for case in _case_names(file):
        for dt in dtypes:
            dname = np.dtype(dt).name
            marks = []
            reason = KNOWN_MISMATCH.get((file, case, dname))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            out.append(pytest.param(case, dt, id=f"{case}-{dname}", marks=marks))
    return out


def _close(actual, expected, dt, what: str, tol=None) -> None:
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, torch {expected.shape}"
    rtol, afac = tol if tol is not None else TOL[dt]
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=afac * scale,
                               err_msg=f"{what} ({np.dtype(dt).name}) differs from torch")


def _all_params(module) -> dict:
    """Every parameter by its state_dict name, shared ones under each of their names."""
    out = {}
    for prefix, mod in module.named_modules():
        for name, p in mod._parameters.items():
            out[f"{prefix}.{name}" if prefix else name] = p
    return out


def _load(layer, sd: dict, dt):
    layer.load_state_dict(sd)  # strict: torch's names and shapes
    for k, v in layer.state_dict().items():  # round trip: the values really landed
        np.testing.assert_array_equal(v, sd[k].astype(v.dtype), err_msg=f"state_dict entry {k}")
    if dt == np.float64:
        layer.double()
    return layer


def _edge_attr_grad_checked(grads, ea, c, dt, case):
    """``layer.backward`` returns ``(d x, d edge_attr)`` when an ``edge_attr`` was given:
    check the edge_attr gradient against the fixture and return ``d x``."""
    if ea is None:
        return grads
    gx, gea = grads
    _close(gea, c["grad"]["edge_attr"], dt, f"{case} d loss / d edge_attr")
    return gx


def _check_param_grads(layer, pgrad: dict, dt, what: str) -> None:
    ours = _all_params(layer)
    trainable = {k for k, p in ours.items() if p.requires_grad}
    assert trainable == set(pgrad), f"{what}: parameters {sorted(trainable)} vs torch grads {sorted(pgrad)}"
    for k, g in pgrad.items():
        assert ours[k].grad is not None, f"{what}: no gradient for {k}"
        _close(ours[k].grad, g, dt, f"{what} d loss / d {k}")


def _seq(spec) -> rnn.Sequential:
    mods = []
    for item in spec:
        if item[0] == "Linear":
            mods.append(rnn.Linear(item[1], item[2]))
        else:
            mods.append(getattr(rnn, item[0])())
    return rnn.Sequential(*mods)


# ----------------------------------------------------------------------------- meta checks
def test_fixtures_present_small_and_pickle_free():
    total = 0
    for name in FILES:
        path = REF_DIR / f"{name}.npz"
        assert path.exists(), f"missing fixture {path}; run tests/reference/make_torch_refs.py"
        total += path.stat().st_size
        meta = _fixture(name)["__meta__"]
        assert meta["torch"] and meta["torch_geometric"], meta
        assert len(_case_names(name)) >= 3
    assert total < MAX_TOTAL_BYTES, f"fixtures total {total} bytes"


def test_fixture_graph_has_the_edge_cases():
    """The shared test graph really contains what the fixtures claim to cover."""
    case = _fixture("gat")["gat_heads3_concat"]
    ei = case["in"]["edge_index"]
    n = case["in"]["x"].shape[0]
    pairs = list(zip(ei[0].tolist(), ei[1].tolist()))
    assert len(pairs) != len(set(pairs)), "duplicate edges"
    assert any(s == d for s, d in pairs), "a pre-existing self loop"
    deg_in = np.bincount(ei[1], minlength=n)
    deg_out = np.bincount(ei[0], minlength=n)
    assert np.any((deg_in == 0) & (deg_out == 0)), "an isolated node"
    assert np.any((deg_in == 0) & (deg_out > 0)), "a node with out-edges but no in-edges"


# ----------------------------------------------------------------------------- GAT / GATv2
@pytest.mark.parametrize("case,dt", _params("gat"))
def test_gat_matches_pyg(case, dt):
    c = _fixture("gat")[case]
    meta = c["meta"]
    cls = {"GATConv": GATConv, "GATv2Conv": GATv2Conv}[meta["layer"]]
    layer = _load(cls(**meta["kwargs"]), c["sd"], dt)
    bip = meta.get("bipartite", False)
    x = (c["in"]["x_src"].astype(dt), c["in"]["x_dst"].astype(dt)) if bip else c["in"]["x"].astype(dt)
    ei = c["in"]["edge_index"]
    ea = c["in"].get("edge_attr")
    args = (x, ei) if ea is None else (x, ei, ea.astype(dt))
    # eval mode, no attention weights requested (the fast path)
    layer.eval()
    _close(layer(*args), c["out"]["y"], dt, f"{case} eval output")
    # train mode (dropout 0): output, attention weights and the edge list they belong to
    layer.train()
    layer.zero_grad()
    y, (ei_used, alpha) = layer(*args, return_attention_weights=True)
    _close(y, c["out"]["y"], dt, f"{case} output")
    np.testing.assert_array_equal(ei_used, c["out"]["ei"], err_msg=f"{case}: attended edge_index")
    _close(alpha, c["out"]["alpha"], dt, f"{case} attention weights")
    gx = _edge_attr_grad_checked(layer.backward(c["in"]["gout"].astype(dt)), ea, c, dt, case)
    if bip:
        _close(gx[0], c["grad"]["x_src"], dt, f"{case} d loss / d x_src")
        _close(gx[1], c["grad"]["x_dst"], dt, f"{case} d loss / d x_dst")
    else:
        _close(gx, c["grad"]["x"], dt, f"{case} d loss / d x")
    _check_param_grads(layer, c["pgrad"], dt, case)


# ----------------------------------------------------------------------------- GIN / GINE / SAGE
@pytest.mark.parametrize("case,dt", _params("gin_sage"))
def test_gin_sage_matches_pyg(case, dt):
    c = _fixture("gin_sage")[case]
    meta = c["meta"]
    kw = dict(meta["kwargs"])
    if meta["layer"] == "GINConv":
        layer = GINConv(_seq(meta["nn"]), **kw)
    elif meta["layer"] == "GINEConv":
        layer = GINEConv(_seq(meta["nn"]), **kw)
    else:
        layer = SAGEConv(**kw)
    layer = _load(layer, c["sd"], dt)
    x = c["in"]["x"].astype(dt)
    ei = c["in"]["edge_index"]
    ea = c["in"].get("edge_attr")
    layer.train()
    layer.zero_grad()
    y = layer(x, ei) if ea is None else layer(x, ei, ea.astype(dt))
    _close(y, c["out"]["y"], dt, f"{case} output")
    gx = _edge_attr_grad_checked(layer.backward(c["in"]["gout"].astype(dt)), ea, c, dt, case)
    _close(gx, c["grad"]["x"], dt, f"{case} d loss / d x")
    _check_param_grads(layer, c["pgrad"], dt, case)


# ----------------------------------------------------------------------------- DirGNN
@pytest.mark.parametrize("case,dt", _params("dirgnn"))
def test_dirgnn_matches_pyg(case, dt):
    c = _fixture("dirgnn")[case]
    meta = c["meta"]
    layer = _load(DirGNNConv(SAGEConv(**meta["conv"]), **meta["kwargs"]), c["sd"], dt)
    x = c["in"]["x"].astype(dt)
    layer.train()
    layer.zero_grad()
    _close(layer(x, c["in"]["edge_index"]), c["out"]["y"], dt, f"{case} output")
    _close(layer.backward(c["in"]["gout"].astype(dt)), c["grad"]["x"], dt, f"{case} d loss / d x")
    _check_param_grads(layer, c["pgrad"], dt, case)


# ----------------------------------------------------------------------------- readouts
@pytest.mark.parametrize("case,dt", _params("readout"))
def test_readout_matches_pyg(case, dt):
    c = _fixture("readout")[case]
    meta = c["meta"]
    x = c["in"]["x"].astype(dt)
    batch = c["in"]["batch"]
    size = meta["size"]
    g = c["in"]["gout"].astype(dt)
    if meta["layer"] == "AttentionalAggregation":
        nn = _seq(meta["nn"]) if meta["nn"] else None
        layer = _load(AttentionalAggregation(_seq(meta["gate_nn"]), nn), c["sd"], dt)
        layer.zero_grad()
        y, alpha = layer(x, batch, size)
        _close(alpha, c["out"]["alpha"], dt, f"{case} attention weights")
        _close(y, c["out"]["y"], dt, f"{case} output")
        _close(layer.backward(g), c["grad"]["x"], dt, f"{case} d loss / d x")
        _check_param_grads(layer, c["pgrad"], dt, case)
        return
    fn, module = {"global_add_pool": (global_add_pool, SumPool), "global_mean_pool": (global_mean_pool, MeanPool),
                  "global_max_pool": (global_max_pool, MaxPool)}[meta["layer"]]
    _close(fn(x, batch, size)[0], c["out"]["y"], dt, f"{case} output")
    pool = module()
    y, _ = pool(x, batch, size)
    _close(y, c["out"]["y"], dt, f"{case} module output")
    _close(pool.backward(g), c["grad"]["x"], dt, f"{case} d loss / d x")


# ----------------------------------------------------------------------------- attention
@pytest.mark.parametrize("fold", [False, True], ids=["projected", "folded"])
@pytest.mark.parametrize("case,dt", [p for p in _params("attention") if p.values[0].startswith("mha")])
def test_multihead_matches_torch(case, dt, fold):
    c = _fixture("attention")[case]
    meta = c["meta"]
    layer = _load(rga.MultiHeadAttention(**meta["kwargs"]), c["sd"], dt)
    layer.fold_kv_projections = fold
    layer.train()
    layer.zero_grad()
    q, k, v = (c["in"][n].astype(dt) for n in ("query", "key", "value"))
    kw = {}
    if "key_padding_mask" in c["in"]:
        kw["key_padding_mask"] = c["in"]["key_padding_mask"]
    if "attn_mask" in c["in"]:
        am = c["in"]["attn_mask"]
        kw["attn_mask"] = am if am.dtype == np.bool_ else am.astype(dt)
    avg = meta["average_attn_weights"]
    y, w = layer(q, k, v, need_weights=True, average_attn_weights=avg, **kw)
    _close(y, c["out"]["y"], dt, f"{case} output")
    _close(w, c["out"]["weights"], dt, f"{case} attention weights")
    _close(layer.attention_weights(average=avg), c["out"]["weights"], dt, f"{case} attention_weights()")
    y2, w2 = layer(q, k, v, need_weights=False, **kw)
    assert w2 is None
    _close(y2, c["out"]["y"], dt, f"{case} output (need_weights=False)")
    layer.zero_grad()
    layer(q, k, v, need_weights=True, average_attn_weights=avg, **kw)
    gq, gk, gv = layer.backward(c["in"]["gout"].astype(dt))
    _close(gq, c["grad"]["query"], dt, f"{case} d loss / d query")
    _close(gk, c["grad"]["key"], dt, f"{case} d loss / d key")
    _close(gv, c["grad"]["value"], dt, f"{case} d loss / d value")
    _check_param_grads(layer, c["pgrad"], dt, case)


@pytest.mark.parametrize("case,dt", [p for p in _params("attention") if p.values[0].startswith("sdpa")])
def test_scaled_dot_product_matches_torch(case, dt):
    c = _fixture("attention")[case]
    meta = c["meta"]
    att = rga.ScaledDotProductAttention(dim=meta["dim"], scale=meta["scale"])
    Q, K, V = (c["in"][n].astype(dt) for n in ("query", "key", "value"))
    mask = c["in"].get("mask")
    y = att.forward_batch(Q, K, V, mask=mask)
    _close(y, c["out"]["y"], dt, f"{case} output")
    _close(att.attention_weights(), c["out"]["weights"], dt, f"{case} attention weights")
    gq, gk, gv = att.backward(c["in"]["gout"].astype(dt))
    _close(gq, c["grad"]["query"], dt, f"{case} d loss / d query")
    _close(gk, c["grad"]["key"], dt, f"{case} d loss / d key")
    _close(gv, c["grad"]["value"], dt, f"{case} d loss / d value")
    # one query at a time (the single-vector entry) gives the same rows
    for i in range(Q.shape[0]):
        yi = att.forward(Q[i], K, V, mask=None if mask is None else mask[i])
        _close(yi, c["out"]["y"][i], dt, f"{case} single-query output row {i}")


# ----------------------------------------------------------------------------- training
def _gat_model(spec) -> GraphSequential:
    mods = []
    for item in spec:
        if item[0] == "GATConv":
            mods.append(GATConv(item[1], item[2], **item[3]))
        else:
            mods.append(getattr(rnn, item[0])())
    return GraphSequential(mods)


@pytest.mark.parametrize("case,dt", _params("training"))
def test_training_trajectory_matches_torch(case, dt):
    c = _fixture("training")[case]
    meta = c["meta"]
    model = _load(_gat_model(meta["model"]), c["sd"], dt)
    opt = {"Adam": Adam, "AdamW": AdamW, "SGD": SGD}[meta["optimizer"]](model.parameters(), **meta["kwargs"])
    x = c["in"]["x"].astype(dt)
    ei, y, mask = c["in"]["edge_index"], c["in"]["y"], c["in"]["mask"]
    model.train()
    for step in range(meta["steps"]):
        model.zero_grad()
        logits = model(x, ei)
        loss, g = cross_entropy(logits, y, mask=mask)
        model.backward(g)
        if step == 0:
            _close(logits, c["out"]["logits0"], dt, f"{case} logits before training")
            _check_param_grads(model, c["pgrad"], dt, f"{case} step 1")
        assert loss == pytest.approx(c["out"]["losses"][step], rel=TOL[dt][0], abs=TOL[dt][1]), \
            f"{case}: loss at step {step + 1}"
        opt.step()
        state = model.state_dict()
        ref = c[f"step{step + 1}"]
        assert set(state) == set(ref)
        for k, v in ref.items():
            _close(state[k], v, dt, f"{case} {k} after step {step + 1}")


# ----------------------------------------------------------------------------- geoopt PoincareBall
def _ball_params() -> list:
    out = []
    for case in _case_names("poincare"):
        reason = KNOWN_MISMATCH.get(("poincare", case, ""))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(case, id=case, marks=marks))
    return out


@pytest.mark.parametrize("case", _ball_params())
def test_poincare_matches_geoopt(case):
    c = _fixture("poincare")[case]
    meta = c["meta"]
    dt = np.float32 if meta["dtype"] == "f32" else np.float64
    tol = TOL_BALL32 if dt == np.float32 else TOL[dt]
    ball = PoincareBall(c=meta["c"])
    x, y, u = (c["in"][n] for n in ("x", "y", "u"))
    assert x.dtype == dt
    r, m, v, outside = (c["in"][n] for n in ("r", "m", "v", "outside"))
    ours = {
        "cdist": ball.cdist(x, y),
        "mobius_sub": ball.mobius_sub(x, y),
        "mobius_scalar_mul": ball.mobius_scalar_mul(r[:, 0], x),
        "mobius_matvec": ball.mobius_matvec(m, x),
        "transp": ball.transp(x, y, v),
        "egrad2rgrad": ball.egrad2rgrad(x, v),
        "inner": ball.inner(x, u, v),
        "norm": ball.norm(x, v),
        "lambda_x": ball.lambda_x(x),
        "retr": ball.retr(x, v * dt(0.3)),
        "proj": ball.proj(outside),
        "gyration": ball.gyration(x, y, v),
        "dist": ball.dist(x, y),
        "mobius_add": ball.mobius_add(x, y),
        "expmap": ball.expmap(x, u),
        "logmap": ball.logmap(x, y),
        "expmap0": ball.expmap0(u),
        "logmap0": ball.logmap0(y),
        "dist0": ball.dist0(x),
    }
    assert set(ours) == (set(c["out"]) - {"projx"}) | {"proj"}
    for name, value in ours.items():
        ref = c["out"]["projx" if name == "proj" else name]
        assert np.asarray(value).dtype == dt, f"{name} returned {np.asarray(value).dtype}"
        _close(value, ref.astype(np.float64), dt, f"PoincareBall(c={meta['c']}).{name}", tol=tol)


# ----------------------------------------------------------------------------- geoopt optimizers
@pytest.mark.parametrize("case", _case_names("riemannian"))
def test_riemannian_optimizer_matches_geoopt(case):
    """RiemannianAdam / RiemannianSGD on a Poincare-ball parameter and a Euclidean one, loss
    ``0.5 |X - T|^2 + 0.5 |e - s|^2`` (Euclidean gradients ``X - T``, ``e - s``), float64."""
    c = _fixture("riemannian")[case]
    meta = c["meta"]
    dt = np.float64
    x = Parameter(c["in"]["x0"].astype(dt), manifold=PoincareBall(c=meta["c"]))
    e = Parameter(c["in"]["e0"].astype(dt))
    t, s = c["in"]["t"].astype(dt), c["in"]["s"].astype(dt)
    cls = {"RiemannianAdam": RiemannianAdam, "RiemannianSGD": RiemannianSGD}[meta["optimizer"]]
    opt = cls([x, e], **meta["kwargs"])
    for step in range(meta["steps"]):
        opt.zero_grad()
        x.grad = x.data - t
        e.grad = e.data - s
        opt.step()
        _close(x.data, c[f"step{step + 1}"]["x"], dt, f"{case} ball parameter after step {step + 1}")
        _close(e.data, c[f"step{step + 1}"]["e"], dt, f"{case} Euclidean parameter after step {step + 1}")


# ----------------------------------------------------------------------------- nn modules and losses
@pytest.mark.parametrize("case,dt", [p for p in _params("nn") if "nn" in _fixture("nn")[p.values[0]]["meta"]])
def test_nn_modules_match_torch(case, dt):
    c = _fixture("nn")[case]
    mods = [getattr(rnn, cls)(*args, **kw) for cls, args, kw in c["meta"]["nn"]]
    model = _load(rnn.Sequential(*mods), c["sd"], dt)
    model.zero_grad()
    _close(model(c["in"]["x"].astype(dt)), c["out"]["y"], dt, f"{case} output")
    _close(model.backward(c["in"]["gout"].astype(dt)), c["grad"]["x"], dt, f"{case} d loss / d x")
    _check_param_grads(model, c["pgrad"], dt, case)


@pytest.mark.parametrize("case,dt", [p for p in _params("nn") if "loss" in _fixture("nn")[p.values[0]]["meta"]])
def test_losses_match_torch(case, dt):
    c = _fixture("nn")[case]
    meta = c["meta"]["loss"]
    a = {k: (v.astype(dt) if v.dtype.kind == "f" else v) for k, v in c["in"].items()}
    red = meta.get("reduction", "mean")
    if meta["fn"] == "cross_entropy":
        value, grads = cross_entropy(a["logits"], a["y"], mask=a.get("mask"), weight=a.get("weight"),
                                     reduction=red, label_smoothing=meta.get("label_smoothing", 0.0))
        grads = {"logits": grads}
    elif meta["fn"] == "mse":
        value, g = mse(a["pred"], a["target"], reduction=red)
        grads = {"pred": g}
    elif meta["fn"] == "binary_cross_entropy_with_logits":
        value, g = binary_cross_entropy_with_logits(a["logits"], a["targets"], pos_weight=a.get("pos_weight"),
                                                    reduction=red)
        grads = {"logits": g}
    else:
        value, (g1, g2) = margin_ranking(a["x1"], a["x2"], a["y"], margin=meta["margin"], reduction=red)
        grads = {"x1": g1, "x2": g2}
    _close(np.float64(value), c["out"]["loss"], dt, f"{case} loss value")
    assert set(grads) == set(c["grad"]), f"{case}: gradients {sorted(grads)} vs torch {sorted(c['grad'])}"
    for k, g in grads.items():
        assert np.asarray(g).dtype == dt
        _close(g, c["grad"][k], dt, f"{case} d loss / d {k}")
