"""ScaledDotProductAttention against a numpy reference written from softmax(q K^T / sqrt(d)) V."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ruvector_graph_attn as rga
from ruvector_graph_attn.attention.standard import rescaled_attention
from ruvector_graph_attn.errors import (
    ConfigError, DimensionMismatchError, InputTooLargeError, InvalidInputError, NotFittedError,
)

from _rga_gradcheck import numeric_grad

F32_HALF_MAX = np.float32(np.finfo(np.float32).max / 2)


def ref_attention(Q, K, V, scale, mask=None):
    """Reference in float64 from the equation, with an explicit per-key loop for the weights."""
    Q = np.atleast_2d(np.asarray(Q, dtype=np.float64))
    K = np.asarray(K, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    W = np.zeros((Q.shape[0], K.shape[0]))
    for b in range(Q.shape[0]):
        s = np.array([scale * np.dot(Q[b], K[n]) for n in range(K.shape[0])])
        allowed = np.ones(K.shape[0], bool) if mask is None else np.broadcast_to(mask, W.shape)[b]
        if not allowed.any():
            continue
        s = np.where(allowed, s, -np.inf)
        e = np.exp(s - s[allowed].max())
        W[b] = e / e.sum()
    return W @ V, W


def data(rng, B=3, N=11, D=8, F=5, dtype=np.float32):
    return (rng.standard_normal((B, D)).astype(dtype), rng.standard_normal((N, D)).astype(dtype),
            rng.standard_normal((N, F)).astype(dtype))


# -- forward -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_batch_match_reference(rng, dtype):
    Q, K, V = data(rng, dtype=dtype)
    att = rga.ScaledDotProductAttention(dim=8)
    assert att.attention_weights() is None
    ref_out, ref_w = ref_attention(Q, K, V, 1 / np.sqrt(8))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    out = att.forward(Q[1], K, V)
    assert out.shape == (5,) and out.dtype == dtype
    np.testing.assert_allclose(out, ref_out[1], rtol=tol, atol=tol)
    assert att.attention_weights().shape == (1, 11)
    np.testing.assert_allclose(att.attention_weights()[0], ref_w[1], rtol=tol, atol=tol)
    outs = att.forward_batch(Q, K, V)
    assert outs.shape == (3, 5) and outs.dtype == dtype
    np.testing.assert_allclose(outs, ref_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(att.attention_weights(), ref_w, rtol=tol, atol=tol)
    att.reset()
    assert att.attention_weights() is None


def test_custom_scale_lists_and_mixed_dtypes(rng):
    Q, K, V = data(rng, B=1)
    att = rga.ScaledDotProductAttention(dim=8, scale=0.05)
    out = att.forward(Q[0].tolist(), K.tolist(), V.astype(np.float64))
    assert out.dtype == np.float64  # float64 anywhere is kept
    np.testing.assert_allclose(out, ref_attention(Q, K, V, 0.05)[0][0], rtol=1e-5)
    assert att.scale == 0.05
    assert rga.ScaledDotProductAttention(dim=16).scale == pytest.approx(0.25)


def test_masks(rng):
    Q, K, V = data(rng, B=4, N=9)
    att = rga.ScaledDotProductAttention(dim=8)
    mask = rng.random((4, 9)) > 0.5
    mask[0, 3] = True
    mask[2] = False  # a query that may attend to nothing
    out = att.forward_batch(Q, K, V, mask=mask)
    ref_out, ref_w = ref_attention(Q, K, V, 1 / np.sqrt(8), mask)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
    w = att.attention_weights()
    np.testing.assert_array_equal(w[~mask], 0.0)
    np.testing.assert_array_equal(out[2], 0.0)  # documented: zero output, never NaN
    np.testing.assert_allclose(w.sum(axis=1), [1, 1, 0, 1], rtol=1e-6)
    shared = mask[0]
    out = att.forward_batch(Q, K, V, mask=shared)  # a 1-D mask is shared by every query
    np.testing.assert_allclose(out, ref_attention(Q, K, V, 1 / np.sqrt(8), shared)[0], rtol=1e-5, atol=1e-6)
    out1 = att.forward(Q[0], K, V, mask=shared)
    np.testing.assert_allclose(out1, out[0], rtol=1e-6)


def test_config():
    att = rga.ScaledDotProductAttention(dim=32, dropout=0.1, max_keys=500)
    cfg = att.config()
    assert isinstance(cfg, rga.AttentionConfig)
    assert cfg.attention_type == "scaled_dot_product"
    assert (cfg.dim, cfg.num_heads, cfg.scale, cfg.dropout, cfg.max_keys) == (32, 1, None, 0.1, 500)
    cfg.dim = 7  # a copy: the layer is not changed
    assert att.config().dim == 32
    assert rga.AttentionConfig.model_validate_json(att.config().model_dump_json()) == att.config()
    assert rga.ScaledDotProductAttention(dim=4, scale=2.0).config().scale == 2.0


# -- extreme values ------------------------------------------------------------------------------
def test_seed_numerical_stability_case():
    # huge finite inputs: query and keys at float32 max / 2, values 0.5
    q = np.full(64, F32_HALF_MAX, np.float32)
    K = np.full((10, 64), F32_HALF_MAX, np.float32)
    V = np.full((10, 64), 0.5, np.float32)
    att = rga.ScaledDotProductAttention(dim=64)
    out = att.forward(q, K, V)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, 0.5, rtol=1e-6)
    np.testing.assert_allclose(att.attention_weights(), 0.1, rtol=1e-6)


@pytest.mark.parametrize("magnitude", [1e18, 1e25, float(F32_HALF_MAX)])
def test_huge_inputs_match_float64_reference(rng, magnitude):
    # float32 inputs whose products overflow float32 but not float64: the float64 reference is exact
    Q = (rng.uniform(-1, 1, (3, 6)) * magnitude).astype(np.float32)
    K = (rng.uniform(-1, 1, (7, 6)) * magnitude).astype(np.float32)
    V = (rng.uniform(-1, 1, (7, 4)) * magnitude).astype(np.float32)
    att = rga.ScaledDotProductAttention(dim=6)
    with np.errstate(all="raise"):  # no floating-point warning leaks to the user either
        out = att.forward_batch(Q, K, V)
    assert np.isfinite(out).all()
    ref_out, ref_w = ref_attention(Q, K, V, 1 / np.sqrt(6))
    np.testing.assert_allclose(att.attention_weights(), ref_w, atol=1e-6)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6 * magnitude)


def test_huge_values_with_small_scores(rng):
    Q, K, _ = data(rng)
    V = np.full((11, 5), F32_HALF_MAX, np.float32)
    V[::2] *= -1
    out = rga.ScaledDotProductAttention(dim=8).forward_batch(Q, K, V)
    assert np.isfinite(out).all()
    ref_out, _ = ref_attention(Q, K, V, 1 / np.sqrt(8))
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-6 * F32_HALF_MAX)


def test_rescaled_path_equals_fast_path_on_ordinary_inputs(rng):
    Q, K, V = data(rng, dtype=np.float64)
    mask = rng.random((3, 11)) > 0.3
    mask[1] = False
    att = rga.ScaledDotProductAttention(dim=8)
    out = att.forward_batch(Q, K, V, mask=mask)
    r_out, r_w = rescaled_attention(Q, K, V, mask, att.scale)
    np.testing.assert_allclose(r_out, out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r_w, att.attention_weights(), rtol=1e-12, atol=1e-14)


# -- hypothesis properties -----------------------------------------------------------------------
_dims = st.tuples(st.integers(1, 4), st.integers(1, 30), st.integers(1, 8), st.integers(1, 5))


@settings(max_examples=50, deadline=None)
@given(_dims, st.integers(0, 2**31 - 1), st.floats(0.01, 100.0))
def test_weights_are_distributions_and_shapes(dims, seed, spread):
    B, N, D, F = dims
    r = np.random.default_rng(seed)
    Q = r.standard_normal((B, D)) * spread
    K = r.standard_normal((N, D)) * spread
    V = r.standard_normal((N, F))
    att = rga.ScaledDotProductAttention(dim=D)
    out = att.forward_batch(Q, K, V)
    assert out.shape == (B, F)
    w = att.attention_weights()
    assert w.shape == (B, N)
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    # a convex combination of the values
    assert (out <= V.max(axis=0) + 1e-12).all() and (out >= V.min(axis=0) - 1e-12).all()


@settings(max_examples=50, deadline=None)
@given(_dims, st.integers(0, 2**31 - 1))
def test_permuting_keys_and_values_together_leaves_output_unchanged(dims, seed):
    B, N, D, F = dims
    r = np.random.default_rng(seed)
    Q, K, V = r.standard_normal((B, D)), r.standard_normal((N, D)), r.standard_normal((N, F))
    perm = r.permutation(N)
    att = rga.ScaledDotProductAttention(dim=D)
    out = att.forward_batch(Q, K, V)
    w = att.attention_weights().copy()
    out_p = att.forward_batch(Q, K[perm], V[perm])
    np.testing.assert_allclose(out_p, out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(att.attention_weights(), w[:, perm], rtol=1e-10, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 40), st.integers(2, 16), st.integers(0, 2**31 - 1))
def test_key_equal_to_query_with_huge_scale_takes_all_weight(N, D, seed):
    r = np.random.default_rng(seed)
    K = r.standard_normal((N, D))
    K /= np.linalg.norm(K, axis=1, keepdims=True)
    j = int(r.integers(N))
    q = K[j].copy()
    cos = K @ q
    cos[j] = -np.inf
    if cos.max() > 1 - 1e-3:  # another key (almost) equal to the query: not this property
        return
    att = rga.ScaledDotProductAttention(dim=D, scale=1e6)
    att.forward(q, K, r.standard_normal((N, 3)))
    w = att.attention_weights()[0]
    assert w[j] > 1 - 1e-9
    assert np.argmax(w) == j


# -- validation ----------------------------------------------------------------------------------
def _ok(rng):
    return (rng.standard_normal(8).astype(np.float32), rng.standard_normal((5, 8)).astype(np.float32),
            rng.standard_normal((5, 3)).astype(np.float32))


def test_empty_inputs(rng):
    q, K, V = _ok(rng)
    att = rga.ScaledDotProductAttention(dim=8)
    with pytest.raises(InvalidInputError, match="query is empty"):
        att.forward(np.zeros(0, np.float32), K, V)
    with pytest.raises(InvalidInputError, match="keys is empty"):
        att.forward(q, np.zeros((0, 8), np.float32), np.zeros((0, 3), np.float32))
    with pytest.raises(InvalidInputError, match="values is empty"):
        att.forward(q, K, np.zeros((5, 0), np.float32))
    with pytest.raises(InvalidInputError, match="queries is empty"):
        att.forward_batch(np.zeros((0, 8)), K, V)


def test_wrong_rank(rng):
    q, K, V = _ok(rng)
    att = rga.ScaledDotProductAttention(dim=8)
    with pytest.raises(InvalidInputError, match="query must be 1-D"):
        att.forward(q[None], K, V)
    with pytest.raises(InvalidInputError, match="queries must be 2-D"):
        att.forward_batch(q, K, V)
    with pytest.raises(InvalidInputError, match="keys must be 2-D"):
        att.forward(q, K[0], V)
    with pytest.raises(InvalidInputError, match="values must be 2-D"):
        att.forward(q, K, V[None])


def test_count_and_dimension_mismatches(rng):
    q, K, V = _ok(rng)
    att = rga.ScaledDotProductAttention(dim=8)
    with pytest.raises(DimensionMismatchError, match="number of values") as e:
        att.forward(q, K, V[:4])
    assert (e.value.expected, e.value.actual) == (5, 4)
    with pytest.raises(DimensionMismatchError, match="query dimension") as e:
        att.forward(q[:7], K, V)
    assert (e.value.expected, e.value.actual) == (8, 7)
    with pytest.raises(DimensionMismatchError, match="key dimension"):
        att.forward(q[:6], K[:, :6], V)
    with pytest.raises(DimensionMismatchError):
        att.forward_batch(np.ones((2, 7)), K, V)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["query", "keys", "values"])
def test_nan_inf_in_each_input(rng, bad, which):
    q, K, V = _ok(rng)
    arrays_ = {"query": q, "keys": K, "values": V}
    target = arrays_[which]
    target.flat[target.size // 2] = bad
    att = rga.ScaledDotProductAttention(dim=8)
    with pytest.raises(InvalidInputError, match=f"{which} contains NaN or Inf"):
        att.forward(q, K, V)
    with pytest.raises(InvalidInputError, match=f"{'queries' if which == 'query' else which} contains NaN"):
        att.forward_batch(np.stack([q, q]), K, V)


def test_nan_hidden_by_zero_query_component_or_mask_is_still_found(rng):
    q, K, V = _ok(rng)
    att = rga.ScaledDotProductAttention(dim=8)
    q[3] = 0.0
    K[2, 3] = np.nan  # multiplied by an exact zero
    with pytest.raises(InvalidInputError, match="keys contains NaN"):
        att.forward(q, K, V)
    q, K, V = _ok(rng)
    mask = np.ones(5, bool)
    mask[4] = False
    K[4, 0] = np.inf  # the key is masked out, but the input is still invalid
    with pytest.raises(InvalidInputError, match="keys contains NaN or Inf"):
        att.forward(q, K, V, mask=mask)
    q, K, V = _ok(rng)
    V[4, 1] = np.nan  # its weight is exactly 0
    with pytest.raises(InvalidInputError, match="values contains NaN"):
        att.forward(q, K, V, mask=mask)


def test_nan_in_a_value_whose_weight_underflows_to_zero(rng):
    att = rga.ScaledDotProductAttention(dim=2, scale=1.0)
    q = np.array([100.0, 0.0], np.float32)
    K = np.array([[1.0, 0.0], [-1.0, 0.0], [0.5, 0.0]], np.float32)  # key 1: weight exp(-200) -> 0 in float32
    V = np.ones((3, 2), np.float32)
    att.forward(q, K, V)
    assert att.attention_weights()[0, 1] == 0.0
    V[1, 0] = np.nan
    with pytest.raises(InvalidInputError, match="values contains NaN"):
        att.forward(q, K, V)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_array_path_equals_general_path(rng, dtype):
    Q, K, V = data(rng, dtype=dtype)
    att = rga.ScaledDotProductAttention(dim=8)
    fast1 = att.forward(Q[0], K, V)  # C-contiguous arrays of one dtype: the lean path
    w_fast = att.attention_weights().copy()
    grads_fast = att.backward(np.ones(5))
    general1 = att.forward(Q[0].tolist(), K.tolist(), V.tolist())  # lists: the validating path
    assert general1.dtype == np.float64  # Python floats convert to float64, which is kept
    np.testing.assert_allclose(general1, fast1, rtol=1e-5 if dtype == np.float32 else 1e-6)
    np.testing.assert_allclose(att.attention_weights(), w_fast, rtol=1e-5, atol=1e-7)
    slow = att.forward(Q[0], np.asfortranarray(K), V)  # not C-contiguous: the general path
    tight = 1e-6 if dtype == np.float32 else 1e-13  # same maths, scale applied at another step
    np.testing.assert_allclose(slow, fast1, rtol=tight, atol=tight)
    for a, b in zip(att.backward(np.ones(5)), grads_fast):
        np.testing.assert_allclose(a, b, rtol=1e-12 if dtype == np.float64 else 1e-5, atol=1e-7)
    fastb = att.forward_batch(Q, K, V)
    w_b = att.attention_weights()
    with pytest.raises(ValueError):
        w_b[0, 0] = 1.0  # read-only view
    np.testing.assert_allclose(att.forward_batch(Q, np.asfortranarray(K), V), fastb, rtol=tight, atol=tight)


def test_big_endian_and_integer_inputs_are_converted(rng):
    Q, K, V = data(rng, B=2)
    att = rga.ScaledDotProductAttention(dim=8)
    ref = att.forward_batch(Q, K, V)
    be = [a.astype(">f4") for a in (Q, K, V)]
    np.testing.assert_allclose(att.forward_batch(*be), ref, rtol=1e-6)
    np.testing.assert_allclose(att.forward(be[0][0], be[1], be[2]), ref[0], rtol=1e-6)
    out = att.forward(np.arange(8), np.ones((3, 8), np.int64), np.eye(3, 2, dtype=np.int32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [1 / 3, 1 / 3], rtol=1e-6)  # equal scores: uniform weights


def test_non_numeric_and_ragged(rng):
    q, K, V = _ok(rng)
    att = rga.ScaledDotProductAttention(dim=8)
    with pytest.raises(InvalidInputError, match="non-numeric"):
        att.forward(np.array(["a"] * 8), K, V)
    with pytest.raises(InvalidInputError, match="non-numeric"):
        att.forward(q, K.astype(str), V)
    with pytest.raises(InvalidInputError):
        att.forward(q, K, [[1.0, 2.0], [1.0]] * 3)
    with pytest.raises(InvalidInputError, match="None"):
        att.forward(None, K, V)
    with pytest.raises(InvalidInputError, match="complex"):
        att.forward(q.astype(np.complex64), K, V)


def test_too_many_keys(rng):
    att = rga.ScaledDotProductAttention(dim=4, max_keys=10)
    q = np.ones(4)
    att.forward(q, np.ones((10, 4)), np.ones((10, 2)))
    with pytest.raises(InputTooLargeError) as e:
        att.forward(q, np.ones((11, 4)), np.ones((11, 2)))
    assert (e.value.max, e.value.actual) == (10, 11)
    default = rga.ScaledDotProductAttention(dim=1)
    with pytest.raises(InputTooLargeError, match="100000"):
        default.forward(np.ones(1), np.ones((100_001, 1)), np.ones((100_001, 1)))
    rga.ScaledDotProductAttention(dim=1, max_keys=None).forward(np.ones(1), np.ones((100_001, 1)),
                                                                np.ones((100_001, 1)))


def test_mask_errors(rng):
    q, K, V = _ok(rng)
    att = rga.ScaledDotProductAttention(dim=8)
    with pytest.raises(InvalidInputError, match="boolean"):
        att.forward(q, K, V, mask=np.ones(5))
    with pytest.raises(DimensionMismatchError, match="mask shape"):
        att.forward(q, K, V, mask=np.ones(4, bool))
    with pytest.raises(DimensionMismatchError, match="mask shape"):
        att.forward_batch(np.stack([q, q]), K, V, mask=np.ones((3, 5), bool))


@pytest.mark.parametrize("kwargs", [dict(dim=0), dict(dim=-3), dict(dim=2.5), dict(dim=True),
                                    dict(dim=4, scale=-1.0), dict(dim=4, scale=float("nan")),
                                    dict(dim=4, dropout=1.0), dict(dim=4, max_keys=0)])
def test_config_errors(kwargs):
    with pytest.raises(ConfigError):
        rga.ScaledDotProductAttention(**kwargs)


# -- backward ------------------------------------------------------------------------------------
def _rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def _fd(f, arrays_):
    return [numeric_grad(f, arr) for arr in arrays_]


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_backward_matches_finite_differences(rng, batched, masked):
    B, N, D, F = 3, 6, 4, 5
    Q = rng.standard_normal((B, D))
    K = rng.standard_normal((N, D))
    V = rng.standard_normal((N, F))
    G = rng.standard_normal((B, F))
    mask = None
    if masked:
        mask = rng.random((B, N)) > 0.4
        mask[:, 0] = True
        mask[1] = False  # fully masked query: zero gradient, no NaN
    att = rga.ScaledDotProductAttention(dim=D, scale=0.7)
    q = Q[0] if not batched else Q
    g = G[0] if not batched else G
    m = None if mask is None else (mask[0] if not batched else mask)

    def run():
        out = att.forward_batch(q, K, V, mask=m) if batched else att.forward(q, K, V, mask=m)
        return out

    run()
    gq, gk, gv = att.backward(g)
    assert gq.shape == q.shape and gk.shape == K.shape and gv.shape == V.shape
    num = _fd(lambda: float((run() * g).sum()), [q, K, V])
    for got, want in zip((gq, gk, gv), num):
        assert _rel_err(got, want) < 1e-6


def test_backward_with_dropout_matches_finite_differences(rng):
    Q, K, V = rng.standard_normal((2, 4)), rng.standard_normal((7, 4)), rng.standard_normal((7, 3))
    G = rng.standard_normal((2, 3))

    def fresh():
        return rga.ScaledDotProductAttention(dim=4, dropout=0.3, seed=11)

    att = fresh()
    out = att.forward_batch(Q, K, V)
    w = att.attention_weights()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)  # weights are reported before dropout
    assert not np.allclose(out, w @ V)  # but the output used dropped weights
    grads = att.backward(G)
    num = _fd(lambda: float((fresh().forward_batch(Q, K, V) * G).sum()), [Q, K, V])
    for got, want in zip(grads, num):
        assert _rel_err(got, want) < 1e-6
    att.eval()
    np.testing.assert_allclose(att.forward_batch(Q, K, V), ref_attention(Q, K, V, 0.5)[0], rtol=1e-12)


def test_backward_errors(rng):
    q, K, V = _ok(rng)
    att = rga.ScaledDotProductAttention(dim=8)
    with pytest.raises(NotFittedError):
        att.backward(np.ones(3))
    att.forward(q, K, V)
    with pytest.raises(DimensionMismatchError):
        att.backward(np.ones(4))
    with pytest.raises(InvalidInputError):
        att.backward(np.array([1.0, np.nan, 0.0]))
    att.reset()
    with pytest.raises(NotFittedError):
        att.backward(np.ones(3))


# -- optional: same result as torch's scaled_dot_product_attention ---------------------------------
@pytest.mark.torch
def test_matches_torch_scaled_dot_product_attention(rng):
    torch = pytest.importorskip("torch")
    Q, K, V = rng.standard_normal((4, 8)), rng.standard_normal((9, 8)), rng.standard_normal((9, 3))
    mask = rng.random((4, 9)) > 0.3
    mask[:, 0] = True
    att = rga.ScaledDotProductAttention(dim=8)
    for m in (None, mask):  # torch's boolean mask also means True = attend
        t = torch.nn.functional.scaled_dot_product_attention(
            torch.from_numpy(Q)[None], torch.from_numpy(K)[None], torch.from_numpy(V)[None],
            attn_mask=None if m is None else torch.from_numpy(m)[None])
        np.testing.assert_allclose(att.forward_batch(Q, K, V, mask=m), t[0].numpy(), rtol=1e-10, atol=1e-12)
    tq = torch.from_numpy(Q).requires_grad_()
    tk = torch.from_numpy(K).requires_grad_()
    tv = torch.from_numpy(V).requires_grad_()
    G = rng.standard_normal((4, 3))
    out = torch.nn.functional.scaled_dot_product_attention(tq[None], tk[None], tv[None])[0]
    (out * torch.from_numpy(G)).sum().backward()
    att.forward_batch(Q, K, V)
    for got, want in zip(att.backward(G), (tq.grad, tk.grad, tv.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-12)


# -- the benchmark runs (speed itself is measured by the benchmark, not by tests) -------------------
def test_attention_benchmark_smoke(tmp_path, capsys):
    import json

    from ruvector_graph_attn.cli import main

    out_json = tmp_path / "bench.json"
    rc = main(["bench", "attention", "--sizes", "64,200", "--dim", "16", "--batch", "4", "--heads", "2",
               "--budget", "0.001", "--min-reps", "2", "--max-reps", "3", "--json", str(out_json)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "speed-up" in text and "single query" in text and "MHA 2 heads" in text and "BLAS:" in text
    data = json.loads(out_json.read_text())
    assert {(r["case"], r["n"]) for r in data["results"]} == {
        (c, n) for c in ("single", "batch", "mha") for n in (64, 200)}
    for r in data["results"]:  # the library and the numpy reference computed the same thing
        assert r["max_abs_diff"] < 1e-5 and r["ours_us"] > 0 and r["numpy_us"] > 0
    assert main(["bench", "attention", "--cases", "nope"]) == 2
