"""Kernels: softmax, dense products, layer norm, top-k against numpy references from the equations."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ruvector_graph_attn.kernels import dense, norm, softmax, topk
from ruvector_graph_attn.kernels.softmax import (
    PARALLEL_MIN_ELEMENTS, exp_nonpositive, masked_softmax_rows, softmax_rows, softmax_rows_backward,
    softmax_rows_inplace,
)


def ref_softmax(x, scale=1.0):
    x = np.asarray(x, dtype=np.float64) * scale
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- softmax -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 7), (5, 33), (300, 300)])  # the last takes the parallel kernel
def test_softmax_matches_reference(rng, dtype, shape):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    w = softmax_rows(x, scale=0.7)
    assert w.dtype == dtype and w.shape == shape
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(w, ref_softmax(x, 0.7), rtol=tol * 10, atol=tol)
    assert (300 * 300 >= PARALLEL_MIN_ELEMENTS)


def test_softmax_1d_and_in_place(rng):
    x = rng.standard_normal(10)
    ref = ref_softmax(x)
    np.testing.assert_allclose(softmax_rows(x), ref, rtol=1e-13)
    y = x.copy()
    out = softmax_rows(y, out=y)
    assert out is y
    np.testing.assert_allclose(y, ref, rtol=1e-13)


def test_softmax_extreme_values_are_stable():
    big = np.finfo(np.float32).max
    x = np.array([[big, big / 2, -big, 0.0], [1e30, 1e30, -1e30, -1e30]], dtype=np.float32)
    w = softmax_rows(x)
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w[0], [1, 0, 0, 0], atol=0)
    np.testing.assert_allclose(w[1], [0.5, 0.5, 0, 0], atol=0)


def test_softmax_special_rows_documented_behaviour():
    x = np.array([
        [-np.inf, -np.inf, -np.inf],  # all -inf -> all zeros
        [np.inf, 0.0, np.inf],       # +inf entries split the weight
        [np.nan, 0.0, 1.0],          # NaN propagates, never a plausible number
        [-np.inf, 0.0, -np.inf],     # a single finite entry takes everything
    ])
    w = softmax_rows(x)
    np.testing.assert_array_equal(w[0], [0, 0, 0])
    np.testing.assert_array_equal(w[1], [0.5, 0, 0.5])
    assert np.isnan(w[2]).all()
    np.testing.assert_array_equal(w[3], [0, 1, 0])


def test_masked_softmax(rng):
    x = rng.standard_normal((6, 9))
    mask = rng.random((6, 9)) > 0.4
    mask[2] = False  # a fully masked row
    w = masked_softmax_rows(x, mask, scale=2.0)
    for r in range(6):
        if not mask[r].any():
            np.testing.assert_array_equal(w[r], 0.0)
            continue
        expect = np.zeros(9)
        expect[mask[r]] = ref_softmax(x[r, mask[r]], 2.0)
        np.testing.assert_allclose(w[r], expect, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError):
        masked_softmax_rows(x, mask[:, :3])


def test_softmax_backward_matches_finite_differences(rng):
    x = rng.standard_normal((3, 5))
    g = rng.standard_normal((3, 5))
    scale = 0.8
    w = softmax_rows(x, scale)
    dx = softmax_rows_backward(w, g, scale)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in range(3):
        for j in range(5):
            xp, xm = x.copy(), x.copy()
            xp[i, j] += eps
            xm[i, j] -= eps
            num[i, j] = ((softmax_rows(xp, scale) - softmax_rows(xm, scale)) * g).sum() / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-9)
    # the Jacobian of row-softmax has the closed form diag(w) - w w^T
    J = np.diag(w[0]) - np.outer(w[0], w[0])
    np.testing.assert_allclose(dx[0], scale * J @ g[0], rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 40)),
              elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_softmax_rows_are_distributions(x):
    w = softmax_rows(x)
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    # shift invariance: adding a constant to a row does not change it
    np.testing.assert_allclose(softmax_rows(x + 3.0), w, atol=1e-9)


@pytest.mark.parametrize("dtype,lo,rel", [(np.float32, -87.0, 4e-7), (np.float64, -708.0, 5e-14)])
def test_vectorised_exp_accuracy(rng, dtype, lo, rel):
    t = -np.concatenate([rng.random(50_000) * 800, np.linspace(0, 750, 20_001), [0.0, 1e-30]]).astype(dtype)
    e = exp_nonpositive(t)
    ref = np.exp(t.astype(np.float64))
    normal = t >= lo
    np.testing.assert_allclose(e[normal], ref[normal], rtol=rel, atol=0)
    # below t = -87 (float32) / -708 (float64) the value is 0 (true value < 1.7e-38 / 3.4e-308)
    assert (e[~normal] == 0).all() and ref[~normal].max() < (1.7e-38 if dtype == np.float32 else 3.4e-308)
    assert exp_nonpositive(np.array([-np.inf, -0.0], dtype))[0] == 0
    assert exp_nonpositive(np.array([-np.inf, -0.0], dtype))[1] == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_inplace_matches_reference(rng, dtype):
    x = (rng.standard_normal((6, 257)) * 20).astype(dtype)
    x[1] = -np.inf  # all -inf row -> zeros
    x[2, ::3] = -np.inf  # masked entries -> weight 0
    y = x.copy()
    out = softmax_rows_inplace(y, scale=0.6)
    assert out is y
    tol = 2e-6 if dtype == np.float32 else 1e-13
    for r in range(6):
        ok = np.isfinite(x[r])
        expect = np.zeros(257)
        if ok.any():
            expect[ok] = ref_softmax(x[r, ok], 0.6)
        np.testing.assert_allclose(y[r], expect, rtol=tol, atol=tol * 1e-3)
    np.testing.assert_array_equal(y[1], 0)
    np.testing.assert_array_equal(y[2, ::3], 0)
    z = x[0].copy()
    softmax_rows_inplace(z, 0.6)  # 1-D
    np.testing.assert_allclose(z, y[0], rtol=1e-6)
    with pytest.raises(ValueError):
        softmax_rows_inplace(np.ones(3, np.int64))


# -- dense products -----------------------------------------------------------------------------
def test_scores_and_weighted_sum(rng):
    Q = rng.standard_normal((4, 8)).astype(np.float32)
    K = rng.standard_normal((10, 8)).astype(np.float32)
    V = rng.standard_normal((10, 3)).astype(np.float32)
    s = dense.scores(Q, K, 0.5)
    ref = np.array([[0.5 * sum(float(Q[b, d]) * float(K[n, d]) for d in range(8)) for n in range(10)]
                    for b in range(4)])
    np.testing.assert_allclose(s, ref, rtol=1e-5, atol=1e-5)
    assert dense.scores(Q[0], K).shape == (10,)
    W = ref_softmax(ref)
    np.testing.assert_allclose(dense.weighted_sum(W, V), np.einsum("bn,nf->bf", W, V), rtol=1e-6)


def test_pair_dot_and_gather_pair_dot(rng):
    A = rng.standard_normal((20, 5))
    B = rng.standard_normal((20, 5))
    np.testing.assert_allclose(dense.pair_dot(A, B), np.einsum("ij,ij->i", A, B), rtol=1e-12)
    ia = rng.integers(0, 20, 50)
    ib = rng.integers(0, 20, 50)
    C = rng.standard_normal((20, 5)).astype(np.float32)
    got = dense.gather_pair_dot(C, C, ia, ib)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.einsum("ij,ij->i", C[ia], C[ib]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        dense.pair_dot(A, B[:3])
    with pytest.raises(ValueError):
        dense.gather_pair_dot(A, B, ia, ib[:3])


# -- layer norm ---------------------------------------------------------------------------------
def test_layer_norm_forward_matches_equation(rng):
    x = rng.standard_normal((7, 12)) * 3 + 1000.0  # a large common offset
    gamma = rng.standard_normal(12)
    beta = rng.standard_normal(12)
    y, xhat, rstd = norm.layer_norm_forward(x, gamma, beta, eps=1e-5)
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    ref = (x - mu) / np.sqrt(var + 1e-5) * gamma + beta
    np.testing.assert_allclose(y, ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(var[:, 0] + 1e-5), rtol=1e-12)
    y32, _, _ = norm.layer_norm_forward(x.astype(np.float32), gamma, beta)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ref, rtol=1e-3, atol=1e-3)


def test_layer_norm_backward_finite_differences(rng):
    x = rng.standard_normal((4, 6))
    gamma = rng.standard_normal(6)
    beta = rng.standard_normal(6)
    g = rng.standard_normal((4, 6))
    _, xhat, rstd = norm.layer_norm_forward(x, gamma, beta)
    dx, dgamma, dbeta = norm.layer_norm_backward(g, xhat, rstd, gamma)

    def loss(x_, gm, bt):
        return (norm.layer_norm_forward(x_, gm, bt)[0] * g).sum()

    eps = 1e-6

    def fd(arr, f):
        out = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            p, m = arr.copy(), arr.copy()
            p[idx] += eps
            m[idx] -= eps
            out[idx] = (f(p) - f(m)) / (2 * eps)
        return out

    np.testing.assert_allclose(dx, fd(x, lambda a: loss(a, gamma, beta)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dgamma, fd(gamma, lambda a: loss(x, a, beta)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dbeta, fd(beta, lambda a: loss(x, gamma, a)), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("magnitude", [1e30, 1e-30])
def test_layer_norm_extreme_float32_magnitudes(rng, magnitude):
    # float64 accumulators: squares of 1e30 do not overflow, tiny values are not lost to eps order
    x = (rng.standard_normal((3, 16)) * magnitude).astype(np.float32)
    y, _, _ = norm.layer_norm_forward(x, np.ones(16), np.zeros(16), eps=0.0 if magnitude < 1 else 1e-5)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    ref = (x64 - mu) / np.sqrt(((x64 - mu) ** 2).mean(axis=1, keepdims=True))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_topk_extreme_values():
    big = np.finfo(np.float32).max
    x = np.array([[big, -big, 0.0, -np.inf, big / 2, np.float32(1e-45)]], np.float32)
    v, i = topk.topk_rows(x, 6)
    np.testing.assert_array_equal(i[0], [0, 4, 5, 2, 1, 3])
    v, i = topk.topk_rows(x, 2, largest=False)
    np.testing.assert_array_equal(i[0], [3, 1])
    assert v[0, 0] == -np.inf


def test_layer_norm_shape_errors():
    with pytest.raises(ValueError):
        norm.layer_norm_forward(np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError):
        norm.layer_norm_forward(np.ones((2, 3)), np.ones(4), np.zeros(3))


# -- top-k --------------------------------------------------------------------------------------
@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_stable_argsort(rng, largest):
    x = rng.integers(-5, 5, size=(40, 200)).astype(np.float32)  # many ties
    x[3, :] = -np.inf
    x[4, 10] = -np.inf
    vals, idx = topk.topk_rows(x, 17, largest=largest)
    order = np.argsort(-x if largest else x, axis=1, kind="stable")[:, :17]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_array_equal(vals, np.take_along_axis(x, order, axis=1))


def test_topk_1d_and_limits(rng):
    x = rng.standard_normal(50)
    v, i = topk.topk_rows(x, 5)
    np.testing.assert_array_equal(i, np.argsort(-x)[:5])
    v, i = topk.topk_rows(x, 50)
    np.testing.assert_array_equal(i, np.argsort(-x))
    for bad in (0, 51, 2.0, True):
        with pytest.raises(ValueError):
            topk.topk_rows(x, bad)
    with pytest.raises(ValueError):
        topk.topk_rows(np.array([1.0, np.nan]), 1)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 30)),
              elements=st.floats(-100, 100, allow_nan=False)), st.data())
def test_topk_property(x, data):
    k = data.draw(st.integers(1, x.shape[1]))
    vals, idx = topk.topk_rows(x, k)
    np.testing.assert_array_equal(idx, np.argsort(-x, axis=1, kind="stable")[:, :k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unchecked_vector_kernel_counts_neg_inf(dtype):
    from ruvector_graph_attn.kernels.softmax import softmax_vector_fast32, softmax_vector_fast64

    kernel = softmax_vector_fast32 if dtype == np.float32 else softmax_vector_fast64
    x = np.array([0.5, -np.inf, 2.0, -np.inf], dtype)
    y = x.copy()
    assert kernel(y, dtype(2.0), dtype(1.5)) == 2
    total = np.exp(1.5 * (0.5 - 2.0)) + 1.0  # exp(scale * (x - max)) over the finite entries
    np.testing.assert_allclose(y, [np.exp(-2.25) / total, 0, 1 / total, 0], rtol=1e-6)
    z = np.full(3, -np.inf, dtype)
    assert kernel(z, dtype(-np.inf), dtype(1.0)) == 3 and (z == 0).all()
    assert kernel(np.zeros(4, dtype), dtype(0.0), dtype(1.0)) == 0


def test_kernels_accept_big_endian_integer_and_strided_inputs(rng):
    x = rng.standard_normal((4, 9))
    ref = ref_softmax(x)
    np.testing.assert_allclose(softmax_rows(x.astype(">f8")), ref, rtol=1e-13)
    np.testing.assert_allclose(softmax_rows(np.asfortranarray(x)), ref, rtol=1e-13)
    np.testing.assert_allclose(softmax_rows(np.arange(3)), ref_softmax(np.arange(3.0)), rtol=1e-13)
    np.testing.assert_allclose(dense.pair_dot(x.astype(">f4"), x), (x * x).sum(1), rtol=1e-5)
    v, i = topk.topk_rows(x.astype(">f8"), 3)
    np.testing.assert_array_equal(i, np.argsort(-x, axis=1, kind="stable")[:, :3])
    y, _, _ = norm.layer_norm_forward(x.astype(">f8"), np.ones(9), np.zeros(9))
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    with pytest.raises(ValueError):
        softmax_rows_inplace(x.astype(">f8"))


def test_kernel_package_exports():
    import ruvector_graph_attn.kernels as K

    for name in ("softmax_rows", "masked_softmax_rows", "softmax_rows_backward", "scores", "weighted_sum",
                 "pair_dot", "gather_pair_dot", "layer_norm_forward", "layer_norm_backward", "topk_rows"):
        assert callable(getattr(K, name)), name
    assert softmax.softmax_rows is K.softmax_rows
