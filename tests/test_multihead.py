"""MultiHeadAttention: torch.nn.MultiheadAttention semantics, names and shapes; numpy reference; backward."""
from __future__ import annotations

import math

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import (
    ConfigError, DimensionMismatchError, InputTooLargeError, InvalidInputError, NotFittedError,
    StateDictError,
)

from _rga_gradcheck import numeric_grad


def ref_mha(xq, xk, xv, sd, H, key_padding_mask=None, attn_mask=None):
    """Numpy reference from the equations (per batch, per head), float64. Batch-first inputs.

    Returns (output [B, L, E], per-head weights [B, H, L, S]).
    """
    xq, xk, xv = (np.asarray(a, np.float64) for a in (xq, xk, xv))
    B, L, E = xq.shape
    S = xk.shape[1]
    hd = E // H
    if "in_proj_weight" in sd:
        Wq, Wk, Wv = np.split(np.asarray(sd["in_proj_weight"], np.float64), 3)
    else:
        Wq, Wk, Wv = (np.asarray(sd[n], np.float64) for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"))
    if "in_proj_bias" in sd:
        bq, bk, bv = np.split(np.asarray(sd["in_proj_bias"], np.float64), 3)
    else:
        bq = bk = bv = np.zeros(E)
    Wo = np.asarray(sd["out_proj.weight"], np.float64)
    bo = np.asarray(sd.get("out_proj.bias", np.zeros(E)), np.float64)
    out = np.zeros((B, L, E))
    weights = np.zeros((B, H, L, S))
    for b in range(B):
        q = xq[b] @ Wq.T + bq
        k = xk[b] @ Wk.T + bk
        v = xv[b] @ Wv.T + bv
        heads = []
        for h in range(H):
            sl = slice(h * hd, (h + 1) * hd)
            s = (q[:, sl] @ k[:, sl].T) / math.sqrt(hd)
            if attn_mask is not None:
                m = attn_mask if attn_mask.ndim == 2 else attn_mask[b * H + h]
                s = np.where(m, -np.inf, s) if m.dtype == bool else s + m
            if key_padding_mask is not None:
                s = np.where(key_padding_mask[b][None, :], -np.inf, s)
            w = np.zeros_like(s)
            for i in range(L):
                if np.isneginf(s[i]).all():
                    continue  # documented: a fully masked row gets zero weights
                e = np.exp(s[i] - s[i].max())
                w[i] = e / e.sum()
            weights[b, h] = w
            heads.append(w @ v[:, sl])
        out[b] = np.concatenate(heads, axis=1) @ Wo.T + bo
    return out, weights


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# -- parameters, names, init ---------------------------------------------------------------------
def test_state_dict_names_and_shapes_match_torch():
    m = rga.MultiHeadAttention(embed_dim=64, num_heads=8, bias=True, rng=0)
    sd = m.state_dict()
    assert list(sd) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    assert [sd[k].shape for k in sd] == [(192, 64), (192,), (64, 64), (64,)]
    assert all(v.dtype == np.float32 for v in sd.values())
    m2 = rga.MultiHeadAttention(64, 8, kdim=16, vdim=24, rng=0)
    sd2 = m2.state_dict()
    assert list(sd2) == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                         "out_proj.weight", "out_proj.bias"]
    assert [sd2[k].shape for k in sd2] == [(64, 64), (64, 16), (64, 24), (192,), (64, 64), (64,)]
    m3 = rga.MultiHeadAttention(64, 8, bias=False)
    assert list(m3.state_dict()) == ["in_proj_weight", "out_proj.weight"]
    assert [n for n, _ in m.named_parameters()] == list(sd)
    assert m.num_parameters() == 192 * 64 + 192 + 64 * 64 + 64


def test_init_scheme_is_torchs():
    E = 96
    m = rga.MultiHeadAttention(E, 4, rng=1)
    sd = m.state_dict()
    bound = math.sqrt(6.0 / (E + 3 * E))  # xavier_uniform on [3E, E]
    w = sd["in_proj_weight"]
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # std of U(-a, a) is a/sqrt(3)
    np.testing.assert_array_equal(sd["in_proj_bias"], 0)
    np.testing.assert_array_equal(sd["out_proj.bias"], 0)
    wo = sd["out_proj.weight"]
    assert np.abs(wo).max() <= 1 / math.sqrt(E) and np.abs(wo).max() > 0.95 / math.sqrt(E)
    m2 = rga.MultiHeadAttention(E, 4, kdim=10, rng=1)
    kb = math.sqrt(6.0 / (E + 10))
    assert np.abs(m2.k_proj_weight.data).max() <= kb and np.abs(m2.k_proj_weight.data).max() > 0.9 * kb
    # the same seed gives the same weights
    np.testing.assert_array_equal(rga.MultiHeadAttention(E, 4, rng=1).state_dict()["in_proj_weight"], w)


# -- forward against the numpy reference ---------------------------------------------------------
def _random_state(m, rng):
    sd = {k: rng.standard_normal(v.shape).astype(np.float32) * 0.3 for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    return sd


@pytest.mark.parametrize("kdim,vdim,bias", [(None, None, True), (12, 20, True), (None, None, False)])
def test_forward_matches_reference(rng, kdim, vdim, bias):
    E, H, B, L, S = 16, 4, 3, 5, 7
    m = rga.MultiHeadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim)
    sd = _random_state(m, rng)
    xq, xk, xv = _x(rng, B, L, E), _x(rng, B, S, kdim or E), _x(rng, B, S, vdim or E)
    out, w = m(xq, xk, xv)
    ref_out, ref_w = ref_mha(xq, xk, xv, sd, H)
    assert out.shape == (B, L, E) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)
    assert w.shape == (B, L, S)
    np.testing.assert_allclose(w, ref_w.mean(axis=1), rtol=1e-4, atol=1e-6)
    _, w_heads = m(xq, xk, xv, average_attn_weights=False)
    assert w_heads.shape == (B, H, L, S)
    np.testing.assert_allclose(w_heads, ref_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m.attention_weights(), ref_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m.attention_weights(average=True), ref_w.mean(axis=1), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError):
        w_heads[0, 0, 0, 0] = 1.0  # the layer's own per-head weights are handed out read-only
    out2, none = m(xq, xk, xv, need_weights=False)
    assert none is None
    np.testing.assert_allclose(out2, out, rtol=1e-6)


def test_unbatched_and_sequence_first_layouts(rng):
    E, H, L, S = 8, 2, 4, 6
    m = rga.MultiHeadAttention(E, H, rng=3)
    sd = _random_state(m, rng)
    xq, xk, xv = _x(rng, L, E), _x(rng, S, E), _x(rng, S, E)
    out, w = m(xq, xk, xv, average_attn_weights=False)
    ref_out, ref_w = ref_mha(xq[None], xk[None], xv[None], sd, H)
    assert out.shape == (L, E) and w.shape == (H, L, S)
    np.testing.assert_allclose(out, ref_out[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w, ref_w[0], rtol=1e-4, atol=1e-6)
    assert m.attention_weights().shape == (H, L, S)
    # batch_first=False: [L, B, E]
    ms = rga.MultiHeadAttention(E, H, batch_first=False)
    ms.load_state_dict(sd)
    xqb, xkb, xvb = _x(rng, 2, L, E), _x(rng, 2, S, E), _x(rng, 2, S, E)
    out_s, w_s = ms(xqb.transpose(1, 0, 2), xkb.transpose(1, 0, 2), xvb.transpose(1, 0, 2))
    ref_out, ref_w = ref_mha(xqb, xkb, xvb, sd, H)
    assert out_s.shape == (L, 2, E)
    np.testing.assert_allclose(out_s.transpose(1, 0, 2), ref_out, rtol=1e-4, atol=1e-5)
    assert w_s.shape == (2, L, S)


def test_forward_vector_is_the_unbatched_single_query_call(rng):
    m = rga.MultiHeadAttention(8, 2, rng=0)
    sd = _random_state(m, rng)
    q, K, V = _x(rng, 8), _x(rng, 5, 8), _x(rng, 5, 8)
    out = m.forward_vector(q, K, V)
    assert out.shape == (8,)
    np.testing.assert_allclose(out, ref_mha(q[None, None], K[None], V[None], sd, 2)[0][0, 0], rtol=1e-4, atol=1e-5)
    assert m.attention_weights().shape == (2, 1, 5)
    with pytest.raises(InvalidInputError, match="query must be 1-D"):
        m.forward_vector(q[None], K, V)


def test_self_attention_cross_attention_and_float64(rng):
    E, H = 12, 3
    m = rga.MultiHeadAttention(E, H, rng=4).double()
    sd = m.state_dict()
    x = rng.standard_normal((2, 5, E))
    out, _ = m(x, x, x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ref_mha(x, x, x, sd, H)[0], rtol=1e-12, atol=1e-12)
    mem = rng.standard_normal((2, 9, E))  # cross-attention: keys/values from another sequence
    out, w = m(x, mem, mem)
    assert w.shape == (2, 5, 9)
    np.testing.assert_allclose(out, ref_mha(x, mem, mem, sd, H)[0], rtol=1e-12, atol=1e-12)


def test_masks_follow_torch_semantics(rng):
    E, H, B, L, S = 8, 2, 2, 4, 6
    m = rga.MultiHeadAttention(E, H, rng=5)
    sd = _random_state(m, rng)
    xq, xk, xv = _x(rng, B, L, E), _x(rng, B, S, E), _x(rng, B, S, E)
    kpm = np.zeros((B, S), bool)
    kpm[0, 4:] = True  # True = ignore this key
    kpm[1, 0] = True
    out, w = m(xq, xk, xv, key_padding_mask=kpm, average_attn_weights=False)
    ref_out, ref_w = ref_mha(xq, xk, xv, sd, H, key_padding_mask=kpm)
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(w[0, :, :, 4:], 0)
    # causal boolean attn_mask [L, S]: True = not allowed
    causal = np.triu(np.ones((L, S), bool), k=1)
    out, w = m(xq, xk, xv, attn_mask=causal, average_attn_weights=False)
    np.testing.assert_allclose(out, ref_mha(xq, xk, xv, sd, H, attn_mask=causal)[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(w[..., causal], 0)
    # float additive mask [B*H, L, S] combined with a padding mask
    fm = rng.standard_normal((B * H, L, S)).astype(np.float32)
    out, _ = m(xq, xk, xv, attn_mask=fm, key_padding_mask=kpm)
    np.testing.assert_allclose(out, ref_mha(xq, xk, xv, sd, H, kpm, fm)[0], rtol=1e-4, atol=1e-5)


def test_fully_masked_row_gives_bias_not_nan(rng):
    E, H = 8, 2
    m = rga.MultiHeadAttention(E, H, rng=6)
    sd = _random_state(m, rng)
    xq, xk = _x(rng, 1, 3, E), _x(rng, 1, 4, E)
    kpm = np.ones((1, 4), bool)
    out, w = m(xq, xk, xk, key_padding_mask=kpm)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(w, 0)
    np.testing.assert_allclose(out, np.broadcast_to(sd["out_proj.bias"], out.shape), rtol=1e-6)


def test_dropout_only_in_training(rng):
    E, H = 8, 2
    m = rga.MultiHeadAttention(E, H, dropout=0.5, rng=0, seed=3)
    x = _x(rng, 1, 6, E)
    m.eval()
    out_eval, w_eval = m(x, x, x)
    np.testing.assert_allclose(w_eval.sum(-1), 1, rtol=1e-6)
    m.train()
    out_train, w_train = m(x, x, x, average_attn_weights=False)
    assert (w_train == 0).any()  # dropped weights are returned, as torch does
    assert set(np.unique(np.round(w_train[w_train > 0] / m.attention_weights()[w_train > 0], 6))) == {1.0}
    assert not np.allclose(out_train, out_eval)


@pytest.mark.parametrize("kdim,vdim,bias", [(None, None, True), (5, 9, True), (None, None, False)])
def test_folded_projection_path_equals_projected_path(rng, kdim, vdim, bias):
    E, H, B, L, S = 32, 4, 2, 2, 50
    m = rga.MultiHeadAttention(E, H, kdim=kdim, vdim=vdim, bias=bias, rng=0).double()
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.3
    xq = rng.standard_normal((B, L, E))
    xk = rng.standard_normal((B, S, kdim or E))
    xv = rng.standard_normal((B, S, vdim or E))
    kpm = rng.random((B, S)) > 0.7
    kpm[1] = True  # one batch entry fully masked
    am = rng.standard_normal((L, S))
    results = []
    for fold in (True, False, "auto"):
        m.fold_kv_projections = fold
        out, w = m(xq, xk, xv, key_padding_mask=kpm, attn_mask=am, average_attn_weights=False)
        results.append((out, w))
    ref_out, ref_w = ref_mha(xq, xk, xv, m.state_dict(), H, kpm, am)
    for out, w in results:
        np.testing.assert_allclose(out, ref_out, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(w, ref_w, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("fold", [True, False])
def test_nan_found_on_both_paths(rng, fold):
    m = rga.MultiHeadAttention(8, 2, rng=0)
    m.fold_kv_projections = fold
    x = _x(rng, 1, 3, 8)
    kpm = np.zeros((1, 3), bool)
    kpm[0, 2] = True
    for i, name in enumerate(("query", "key", "value")):
        args = [x.copy(), x.copy(), x.copy()]
        args[i][0, 2, 5] = np.inf  # at a masked key position: still an invalid input
        with pytest.raises(InvalidInputError, match=f"{name} contains NaN or Inf .*position 2, feature 5"):
            m(*args, key_padding_mask=kpm)


# -- state dict round trip and errors -------------------------------------------------------------
def test_state_dict_round_trip(rng):
    a = rga.MultiHeadAttention(16, 4, kdim=6, vdim=10, rng=1)
    b = rga.MultiHeadAttention(16, 4, kdim=6, vdim=10, rng=2)
    xq, xk, xv = _x(rng, 2, 3, 16), _x(rng, 2, 5, 6), _x(rng, 2, 5, 10)
    assert not np.allclose(a(xq, xk, xv)[0], b(xq, xk, xv)[0])
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(xq, xk, xv)[0], b(xq, xk, xv)[0])
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    sd = a.state_dict()
    sd["in_proj_bias"][:] = 1.0  # state_dict returns copies
    assert not np.allclose(a.in_proj_bias.data, 1.0)


def test_state_dict_errors():
    m = rga.MultiHeadAttention(8, 2, rng=0)
    good = m.state_dict()
    before = {k: v.copy() for k, v in good.items()}
    missing = dict(good)
    del missing["out_proj.bias"]
    with pytest.raises(StateDictError, match="missing keys \\['out_proj.bias'\\]"):
        m.load_state_dict(missing)
    extra = dict(good, bias_k=np.zeros((1, 1, 8)))
    with pytest.raises(StateDictError, match="unexpected keys \\['bias_k'\\]"):
        m.load_state_dict(extra)
    wrong = dict(good, in_proj_weight=np.zeros((8, 8)))
    with pytest.raises(StateDictError, match="in_proj_weight.*shape"):
        m.load_state_dict(wrong)
    nan = dict(good, in_proj_bias=np.full(24, np.nan))
    with pytest.raises(StateDictError, match="NaN"):
        m.load_state_dict(nan)
    # a state dict for different kdim/vdim has other names
    with pytest.raises(StateDictError):
        rga.MultiHeadAttention(8, 2, kdim=4).load_state_dict(good)
    for k, v in m.state_dict().items():  # failed loads left the module unchanged
        np.testing.assert_array_equal(v, before[k])


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(embed_dim=10, num_heads=3), dict(embed_dim=0, num_heads=1),
                                    dict(embed_dim=8, num_heads=0), dict(embed_dim=8, num_heads=2, dropout=1.0),
                                    dict(embed_dim=8, num_heads=2, kdim=0), dict(embed_dim=8.0, num_heads=2)])
def test_constructor_errors(kwargs):
    with pytest.raises(InvalidInputError):
        rga.MultiHeadAttention(**kwargs)


def test_divisibility_is_a_config_error():
    with pytest.raises(ConfigError, match="divisible"):
        rga.MultiHeadAttention(10, 3)


def test_input_errors(rng):
    m = rga.MultiHeadAttention(8, 2, max_keys=5)
    x = _x(rng, 2, 3, 8)
    with pytest.raises(InvalidInputError, match="query is empty"):
        m(np.zeros((2, 0, 8), np.float32), x, x)
    with pytest.raises(InvalidInputError, match="must be 2-D or 3-D"):
        m(x[0, 0], x, x)
    with pytest.raises(InvalidInputError, match="all be batched"):
        m(x[0], x, x)
    with pytest.raises(DimensionMismatchError, match="embed_dim"):
        m(x[..., :6], x, x)
    with pytest.raises(DimensionMismatchError, match="kdim"):
        m(x, x[..., :6], x)
    with pytest.raises(DimensionMismatchError, match="value batch/sequence"):
        m(x, x, x[:, :2])
    with pytest.raises(DimensionMismatchError, match="batch size"):
        m(x, x[:1], x[:1])
    for i, name in enumerate(("query", "key", "value")):
        args = [x.copy(), x.copy(), x.copy()]
        args[i][1, 2, 3] = np.nan
        with pytest.raises(InvalidInputError, match=f"{name} contains NaN"):
            m(*args)
    with pytest.raises(InvalidInputError, match="non-numeric"):
        m(x.astype(str), x, x)
    big = _x(rng, 2, 6, 8)
    with pytest.raises(InputTooLargeError):
        m(x, big, big)
    with pytest.raises(DimensionMismatchError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(DimensionMismatchError, match="attn_mask"):
        m(x, x, x, attn_mask=np.zeros((3, 4), bool))
    with pytest.raises(DimensionMismatchError, match="attn_mask"):
        m(x, x, x, attn_mask=np.zeros((2, 3, 3), bool))
    with pytest.raises(InvalidInputError, match="attn_mask"):
        m(x, x, x, attn_mask=np.zeros((3, 3), dtype=object))
    with pytest.raises(InvalidInputError, match="NaN"):
        m(x, x, x, attn_mask=np.full((3, 3), np.nan))
    huge = np.full((1, 2, 8), np.finfo(np.float32).max / 2, np.float32)
    m2 = rga.MultiHeadAttention(8, 2, rng=0)
    m2.in_proj_weight.data[...] = 1.0  # 8 * (max / 2) overflows float32 in the projection
    with pytest.raises(InvalidInputError, match="overflowed in float32"):
        m2(huge, huge, huge)


@pytest.mark.parametrize("magnitude", [1e20, float(np.finfo(np.float32).max / 2)])
def test_large_inputs_whose_scores_overflow_float32(rng, magnitude):
    # projections stay finite in float32, their dot products do not: scores are redone in float64
    E, H = 8, 2
    m = rga.MultiHeadAttention(E, H, rng=0)
    for p in m.parameters():
        p.data[...] = rng.uniform(-0.1, 0.1, p.shape)
    sd = m.state_dict()
    x = (rng.uniform(-1, 1, (2, 3, E)) * magnitude).astype(np.float32)
    with np.errstate(all="raise"):
        out, w = m(x, x, x, average_attn_weights=False)
    assert np.isfinite(out).all()
    ref_out, ref_w = ref_mha(x, x, x, sd, H)
    np.testing.assert_allclose(w, ref_w, atol=1e-6)
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-6 * np.abs(ref_out).max())


def test_config_and_reset(rng):
    m = rga.MultiHeadAttention(16, 4, dropout=0.1)
    cfg = m.config()
    assert cfg.attention_type == "multi_head"
    assert (cfg.dim, cfg.num_heads, cfg.dropout) == (16, 4, 0.1)
    assert cfg.scale == pytest.approx(0.5)
    assert m.attention_weights() is None
    x = _x(rng, 1, 2, 16)
    m.eval()(x, x, x)
    assert m.attention_weights().shape == (1, 4, 2, 2)
    m.reset()
    assert m.attention_weights() is None
    with pytest.raises(NotFittedError):
        m.backward(np.ones((1, 2, 16)))


# -- backward ------------------------------------------------------------------------------------
def _rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("case", ["same_dim", "kdim_vdim", "masked_no_bias", "unbatched_seq_first",
                                  "folded", "folded_masked"])
def test_backward_matches_finite_differences(rng, case):
    E, H, B, L, S = 6, 2, 2, 3, 4
    kw = dict(kdim=None, vdim=None, bias=True, batch_first=True)
    kpm = am = None
    if case == "kdim_vdim":
        kw.update(kdim=5, vdim=3)
    if case == "masked_no_bias":
        kw.update(bias=False)
        kpm = np.zeros((B, S), bool)
        kpm[0, 1] = True
        kpm[1] = True  # batch 1 fully masked: zero gradients there, no NaN
        am = rng.standard_normal((L, S))
    if case == "folded_masked":
        kpm = np.zeros((B, S), bool)
        kpm[1, 2:] = True
    m = rga.MultiHeadAttention(E, H, rng=7, **kw).double()
    m.fold_kv_projections = case.startswith("folded")
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5
    if case == "unbatched_seq_first":
        xq, xk, xv = rng.standard_normal((L, E)), rng.standard_normal((S, E)), rng.standard_normal((S, E))
    else:
        xq = rng.standard_normal((B, L, E))
        xk = rng.standard_normal((B, S, kw["kdim"] or E))
        xv = rng.standard_normal((B, S, kw["vdim"] or E))
    out, _ = m(xq, xk, xv, key_padding_mask=kpm, attn_mask=am)
    G = rng.standard_normal(out.shape)
    m.zero_grad()
    gq, gk, gv = m.backward(G)
    assert gq.shape == xq.shape and gk.shape == xk.shape and gv.shape == xv.shape

    def loss():
        return float((m(xq, xk, xv, key_padding_mask=kpm, attn_mask=am)[0] * G).sum())

    for got, arr in ((gq, xq), (gk, xk), (gv, xv)):
        assert _rel_err(got, numeric_grad(loss, arr)) < 1e-6
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert _rel_err(p.grad, numeric_grad(loss, p.data)) < 1e-6, name
    # gradients accumulate over backward calls, like torch's .grad
    m(xq, xk, xv, key_padding_mask=kpm, attn_mask=am)
    first = {n: p.grad.copy() for n, p in m.named_parameters()}
    m.backward(G)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * first[n], rtol=1e-12)


def test_backward_with_dropout_uses_the_forward_mask(rng):
    E, H = 4, 2
    m = rga.MultiHeadAttention(E, H, dropout=0.4, rng=1, seed=9).double()
    x = rng.standard_normal((1, 3, E))
    out, _ = m(x, x, x)
    G = rng.standard_normal(out.shape)
    gq, gk, gv = m.backward(G)

    def loss():
        fresh = rga.MultiHeadAttention(E, H, dropout=0.4, rng=1, seed=9).double()
        fresh.load_state_dict(m.state_dict())
        return float((fresh(xq, xk, xv)[0] * G).sum())

    xq, xk, xv = x.copy(), x.copy(), x.copy()
    assert _rel_err(gq, numeric_grad(loss, xq)) < 1e-6
    assert _rel_err(gk, numeric_grad(loss, xk)) < 1e-6
    assert _rel_err(gv, numeric_grad(loss, xv)) < 1e-6


def test_backward_grad_shape_error(rng):
    m = rga.MultiHeadAttention(4, 2)
    x = _x(rng, 1, 2, 4)
    m(x, x, x)
    with pytest.raises(DimensionMismatchError):
        m.backward(np.ones((1, 3, 4)))


# -- optional: the same weights in torch give the same output -------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("kdim,vdim,bias", [(None, None, True), (5, 7, True), (None, None, False)])
def test_matches_torch_multihead_attention(rng, kdim, vdim, bias):
    torch = pytest.importorskip("torch")
    E, H, B, L, S = 16, 4, 2, 3, 5
    tm = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=True).double().eval()
    m = rga.MultiHeadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim).double()
    m.load_state_dict(tm.state_dict())  # torch names and shapes load unchanged
    xq = rng.standard_normal((B, L, E))
    xk = rng.standard_normal((B, S, kdim or E))
    xv = rng.standard_normal((B, S, vdim or E))
    kpm = np.zeros((B, S), bool)
    kpm[0, -2:] = True
    am = np.triu(np.ones((L, S), bool), k=3)
    for fold, kwargs in [(f, kw) for f in (True, False) for kw in
                         (dict(), dict(key_padding_mask=kpm), dict(attn_mask=am, average_attn_weights=False))]:
        m.fold_kv_projections = fold
        t_kwargs = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
        with torch.no_grad():
            t_out, t_w = tm(torch.from_numpy(xq), torch.from_numpy(xk), torch.from_numpy(xv), **t_kwargs)
        out, w = m(xq, xk, xv, **kwargs)
        np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(w, t_w.numpy(), rtol=1e-10, atol=1e-12)
    # and our state dict loads into torch
    tm2 = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=True).double()
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    # gradients agree too
    tq = torch.from_numpy(xq).requires_grad_()
    tk = torch.from_numpy(xk).requires_grad_()
    tv = torch.from_numpy(xv).requires_grad_()
    t_out, _ = tm(tq, tk, tv)
    G = rng.standard_normal(t_out.shape)
    (t_out * torch.from_numpy(G)).sum().backward()
    m.zero_grad()
    m(xq, xk, xv)
    gq, gk, gv = m.backward(G)
    np.testing.assert_allclose(gq, tq.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gk, tk.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gv, tv.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in m.named_parameters():
        tp = dict(tm.named_parameters())[name]
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12)
