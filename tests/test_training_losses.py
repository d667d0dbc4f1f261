"""Losses: hand-computed values and central finite differences (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.training import losses as L


def fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def assert_close_grad(a, b, tol=1e-6):
    err = np.abs(a - b).max() / max(1e-8, np.abs(b).max())
    assert err < tol, err


def test_cross_entropy_hand_value():
    z = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    y = np.array([2, 0])
    v, g = L.cross_entropy(z, y)
    lse0 = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    want = ((lse0 - 3.0) + math.log(3.0)) / 2
    assert v == pytest.approx(want, rel=1e-12)
    p0 = np.exp(z[0] - lse0)
    np.testing.assert_allclose(g[0], (p0 - [0, 0, 1]) / 2, rtol=1e-12)
    np.testing.assert_allclose(g[1], (np.full(3, 1 / 3) - [1, 0, 0]) / 2, rtol=1e-12)


def test_cross_entropy_mask_and_fd(rng):
    z = rng.normal(size=(7, 4)) * 3
    y = rng.integers(0, 4, size=7)
    mask = np.array([True, False, True, True, False, False, True])
    v, g = L.cross_entropy(z, y, mask=mask)
    # mean over masked rows only
    v_sub, _ = L.cross_entropy(z[mask], y[mask])
    assert v == pytest.approx(v_sub, rel=1e-12)
    assert np.all(g[~mask] == 0)
    assert_close_grad(g, fd_grad(lambda t: L.cross_entropy(t, y, mask=mask)[0], z.copy()))
    # index mask is the same as the boolean one
    v2, g2 = L.cross_entropy(z, y, mask=np.flatnonzero(mask))
    assert v2 == pytest.approx(v) and np.allclose(g2, g)


def test_cross_entropy_weight_smoothing_fd(rng):
    z = rng.normal(size=(6, 3))
    y = rng.integers(0, 3, size=6)
    w = np.array([0.5, 2.0, 1.0])
    v, g = L.cross_entropy(z, y, weight=w, label_smoothing=0.1)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    nll = -(w[y] * logp[np.arange(6), y]).sum() / w[y].sum()
    smooth = -(logp * w).sum() / w[y].sum() / 3
    assert v == pytest.approx(0.9 * nll + 0.1 * smooth, rel=1e-10)
    assert_close_grad(g, fd_grad(lambda t: L.cross_entropy(t, y, weight=w, label_smoothing=0.1)[0], z.copy()))
    vs, gs = L.cross_entropy(z, y, reduction="sum")
    assert vs == pytest.approx(6 * L.cross_entropy(z, y)[0])


def test_cross_entropy_extreme_logits_stable():
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    v, g = L.cross_entropy(z, np.array([0, 0]))
    assert v == pytest.approx(1000.0)  # (0 + 2000) / 2
    assert np.isfinite(g).all()


def test_cross_entropy_errors():
    z = np.zeros((3, 2))
    with pytest.raises(InvalidInputError):
        L.cross_entropy(z, np.array([0, 2, 1]))
    with pytest.raises(DimensionMismatchError):
        L.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(InvalidInputError):
        L.cross_entropy(z, np.array([0, 1, 1]), mask=np.zeros(3, bool))
    with pytest.raises(InvalidInputError):
        L.cross_entropy(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(InvalidInputError):
        L.cross_entropy(z, np.array([0.0, 1.0, 1.0]))


def test_mse(rng):
    p = np.array([1.0, 2.0, 4.0])
    t = np.array([0.0, 2.0, 1.0])
    v, g = L.mse(p, t)
    assert v == pytest.approx((1 + 0 + 9) / 3)
    np.testing.assert_allclose(g, 2 * (p - t) / 3)
    x = rng.normal(size=(3, 4))
    tt = rng.normal(size=(3, 4))
    assert_close_grad(L.mse(x, tt)[1], fd_grad(lambda a: L.mse(a, tt)[0], x.copy()))
    with pytest.raises(DimensionMismatchError):
        L.mse(p, t[:2])


def test_bce_with_logits_values_and_stability(rng):
    x = np.array([0.0, 2.0, -3.0, 800.0, -800.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    v, g = L.binary_cross_entropy_with_logits(x, y)
    want = [math.log(2), math.log1p(math.exp(2)), math.log1p(math.exp(3)), 800.0, 800.0]
    assert v == pytest.approx(np.mean(want), rel=1e-12)
    assert np.isfinite(g).all()
    sig = 1 / (1 + np.exp(-np.clip(x, -50, 50)))
    np.testing.assert_allclose(g, (sig - y) / 5, atol=1e-15)
    xs = rng.normal(size=(4, 3)) * 2
    ys = rng.uniform(size=(4, 3))
    pw = np.array([1.0, 3.0, 0.5])
    f = lambda a: L.binary_cross_entropy_with_logits(a, ys, pos_weight=pw)[0]  # noqa: E731
    vv, gg = L.binary_cross_entropy_with_logits(xs, ys, pos_weight=pw)
    s = 1 / (1 + np.exp(-xs))
    ref = -(pw * ys * np.log(s) + (1 - ys) * np.log(1 - s)).mean()
    assert vv == pytest.approx(ref, rel=1e-10)
    assert_close_grad(gg, fd_grad(f, xs.copy()))
    with pytest.raises(InvalidInputError):
        L.binary_cross_entropy_with_logits(x, y * 2)


def test_margin_ranking():
    x1 = np.array([1.0, 0.2, 3.0])
    x2 = np.array([0.5, 1.0, 1.0])
    y = np.array([1.0, 1.0, -1.0])
    v, (g1, g2) = L.margin_ranking(x1, x2, y, margin=0.1)
    # hinge terms: max(0, -(0.5)+0.1)=0, max(0, 0.8+0.1)=0.9, max(0, 2+0.1)=2.1
    assert v == pytest.approx((0 + 0.9 + 2.1) / 3)
    np.testing.assert_allclose(g1, [0, -1 / 3, 1 / 3])
    np.testing.assert_allclose(g2, -g1)
    with pytest.raises(InvalidInputError):
        L.margin_ranking(x1, x2, np.array([1.0, 0.0, 1.0]))


def _info_nce_ref(q, p, neg, tau, in_batch, normalize):
    if normalize:
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        if neg is not None:
            neg = neg / np.linalg.norm(neg, axis=-1, keepdims=True)
    total = 0.0
    b = q.shape[0]
    for i in range(b):
        cands = [p[j] for j in range(b)] if in_batch else [p[i]]
        if neg is not None:
            cands += list(neg[i] if neg.ndim == 3 else neg)
        s = np.array([q[i] @ c for c in cands]) / tau
        t = i if in_batch else 0
        total += -(s[t] - math.log(np.exp(s).sum()))
    return total / b


@pytest.mark.parametrize("mode", ["in_batch", "per_query", "shared", "both"])
@pytest.mark.parametrize("normalize", [True, False])
def test_info_nce_value_and_fd(rng, mode, normalize):
    b, d, k = 4, 5, 3
    q = rng.normal(size=(b, d))
    p = rng.normal(size=(b, d))
    neg = None
    in_batch = mode in ("in_batch", "both")
    if mode in ("per_query", "both"):
        neg = rng.normal(size=(b, k, d))
    elif mode == "shared":
        neg = rng.normal(size=(k, d))
    tau = 0.3
    v, (gq, gp, gn) = L.info_nce(q, p, neg, temperature=tau, in_batch=in_batch, normalize=normalize)
    assert v == pytest.approx(_info_nce_ref(q, p, neg, tau, in_batch, normalize), rel=1e-10)
    assert_close_grad(gq, fd_grad(lambda a: L.info_nce(a, p, neg, tau, in_batch, normalize)[0], q.copy()))
    assert_close_grad(gp, fd_grad(lambda a: L.info_nce(q, a, neg, tau, in_batch, normalize)[0], p.copy()))
    if neg is not None:
        assert_close_grad(gn, fd_grad(lambda a: L.info_nce(q, p, a, tau, in_batch, normalize)[0], neg.copy()))
    else:
        assert gn is None


def test_info_nce_errors(rng):
    q = rng.normal(size=(3, 4))
    with pytest.raises(InvalidInputError):
        L.info_nce(q, q, temperature=0.0)
    with pytest.raises(DimensionMismatchError):
        L.info_nce(q, q[:2])
    with pytest.raises(InvalidInputError):
        L.info_nce(q, q, None, in_batch=False)
