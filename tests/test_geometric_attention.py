"""GeometricAttention and HyperbolicGraphAttention against independent numpy references (here and in _manifold_refs)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.attention.geometric import GeometricAttention, HyperbolicGraphAttention
from ruvector_graph_attn.config import GeometricAttentionConfig
from ruvector_graph_attn.errors import (ConfigError, DimensionMismatchError, InputTooLargeError,
                                        InvalidInputError, NotFittedError)
from ruvector_graph_attn.manifold import Euclidean, PoincareBall, Product, Sphere

from _manifold_refs import ref_dist, ref_expmap, ref_lambda, ref_logmap


# ----------------------------------------------------------------------------- references
def ref_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_gyromidpoint(v, w, c):
    """geoopt-style weighted Möbius gyromidpoint: 1/2 (x) (sum w lambda v / sum w (lambda - 1))."""
    lam = ref_lambda(v, c)
    two_mean = (w[:, None] * lam * v).sum(0) / (w[:, None] * (lam - 1)).sum(0)
    n = np.linalg.norm(two_mean)
    sc = np.sqrt(c)
    return np.tanh(0.5 * np.arctanh(sc * n)) * two_mean / (sc * n)


def ball_points(rng, n, d, c, scale=0.85):
    v = rng.normal(size=(n, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v * rng.uniform(0.05, scale, size=(n, 1)) / np.sqrt(c)


# ------------------------------------------------------------------------------ weights
@pytest.mark.parametrize("c", [0.1, 1.0, 2.0])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_poincare_weights_match_reference(rng, c, temperature):
    ball = PoincareBall(c)
    att = rga.GeometricAttention(manifold=ball, temperature=temperature)
    q = ball_points(rng, 1, 6, c)[0]
    K = ball_points(rng, 40, 6, c)
    w = att.compute_manifold_weights(q, K)
    want = ref_softmax(-ref_dist(q[None], K, c) ** 2 / temperature)
    np.testing.assert_allclose(w, want, rtol=1e-9, atol=1e-14)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(att.attention_weights(), want[None], rtol=1e-9, atol=1e-14)
    Q = ball_points(rng, 3, 6, c)
    W = att.compute_manifold_weights_batch(Q, K)
    np.testing.assert_allclose(W, ref_softmax(-ref_dist(Q[:, None], K[None], c) ** 2 / temperature),
                               rtol=1e-9, atol=1e-14)
    # float32 is kept and still normalised
    w32 = att.compute_manifold_weights(q.astype(np.float32), K.astype(np.float32))
    assert w32.dtype == np.float32
    np.testing.assert_allclose(w32, want, rtol=2e-3, atol=1e-5)
    assert w32.sum() == pytest.approx(1.0, abs=1e-5)


def test_other_manifold_weights(rng):
    sph = Sphere(1.0)
    q = sph.proj(rng.normal(size=5))
    K = sph.proj(rng.normal(size=(30, 5)))
    att = GeometricAttention(sph, temperature=0.7)
    d = np.arccos(np.clip(K @ q, -1, 1))
    np.testing.assert_allclose(att.compute_manifold_weights(q, K), ref_softmax(-d**2 / 0.7), rtol=1e-9)
    eu = GeometricAttention(Euclidean(), temperature=2.0)
    qe, Ke = rng.normal(size=4), rng.normal(size=(10, 4))
    np.testing.assert_allclose(eu.compute_manifold_weights(qe, Ke),
                               ref_softmax(-np.sum((Ke - qe) ** 2, 1) / 2.0), rtol=1e-10)
    prod = Product([PoincareBall(1.0), Euclidean()], [3, 2])
    kp = np.concatenate([ball_points(rng, 12, 3, 1.0), rng.normal(size=(12, 2))], 1)
    qp = np.concatenate([ball_points(rng, 1, 3, 1.0)[0], rng.normal(size=2)])
    dp2 = ref_dist(qp[None, :3], kp[:, :3], 1.0) ** 2 + np.sum((kp[:, 3:] - qp[3:]) ** 2, 1)
    ap = GeometricAttention(prod)
    assert ap.config().dim == 5
    np.testing.assert_allclose(ap.compute_manifold_weights(qp, kp), ref_softmax(-dp2), rtol=1e-9)
    # batches agree with one query at a time (broadcasting path of every manifold)
    Qp = np.stack([qp, np.concatenate([ball_points(rng, 1, 3, 1.0)[0], rng.normal(size=2)])])
    Wp = ap.compute_manifold_weights_batch(Qp, kp)
    for b in range(2):
        np.testing.assert_allclose(Wp[b], ap.compute_manifold_weights(Qp[b], kp), rtol=1e-10)
    Qs = sph.proj(rng.normal(size=(3, 5)))
    Ws = att.compute_manifold_weights_batch(Qs, K)
    for b in range(3):
        np.testing.assert_allclose(Ws[b], att.compute_manifold_weights(Qs[b], K), rtol=1e-10)
    out = GeometricAttention(prod, values_on_manifold=True).forward_batch(Qp, kp, kp)
    assert out.shape == (2, 5) and np.all(prod.is_on_manifold(out))


# ------------------------------------------------------------------------------ forward
def test_forward_is_weighted_sum_of_values(rng):
    ball = PoincareBall(1.0)
    att = GeometricAttention(ball, temperature=0.9)
    K = ball_points(rng, 20, 4, 1.0)
    V = rng.normal(size=(20, 7))
    Q = ball_points(rng, 3, 4, 1.0)
    out = att.forward(Q[0], K, V)
    w = ref_softmax(-ref_dist(Q[0][None], K, 1.0) ** 2 / 0.9)
    np.testing.assert_allclose(out, w @ V, rtol=1e-9)
    outs = att.forward_batch(Q, K, V)
    assert outs.shape == (3, 7)
    for b in range(3):
        np.testing.assert_allclose(outs[b], att.forward(Q[b], K, V), rtol=1e-10)
    att.forward_batch(Q, K, V)
    assert att.attention_weights().shape == (3, 20)
    np.testing.assert_allclose(att.attention_weights().sum(1), 1.0, rtol=1e-12)
    out32 = att.forward(Q[0].astype(np.float32), K.astype(np.float32), V.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, w @ V, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("c", [0.1, 1.0, 2.0])
def test_forward_geometric_tangent_matches_reference(rng, c):
    ball = PoincareBall(c)
    att = GeometricAttention(ball, temperature=1.3, aggregation="tangent")
    q = ball_points(rng, 1, 5, c)[0]
    K = ball_points(rng, 25, 5, c)
    V = ball_points(rng, 25, 5, c)
    w = ref_softmax(-ref_dist(q[None], K, c) ** 2 / 1.3)
    want = ref_expmap(q, (w[:, None] * ref_logmap(q[None], V, c)).sum(0), c)
    out = att.forward_geometric(q, K, V)
    np.testing.assert_allclose(out, want, rtol=1e-8, atol=1e-11)
    Q = ball_points(rng, 4, 5, c)
    outs = att.forward_geometric_batch(Q, K, V)
    for b in range(4):
        np.testing.assert_allclose(outs[b], att.forward_geometric(Q[b], K, V), rtol=1e-9, atol=1e-12)
    # values_on_manifold=True routes forward() to the manifold aggregation
    att2 = GeometricAttention(ball, temperature=1.3, values_on_manifold=True)
    np.testing.assert_allclose(att2.forward(q, K, V), want, rtol=1e-8, atol=1e-11)
    # identical values aggregate to that value; a single key gives that value
    same = np.repeat(V[:1], 25, axis=0)
    np.testing.assert_allclose(att.forward_geometric(q, K, same), V[0], rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("c", [0.1, 1.0, 2.0])
def test_einstein_midpoint(rng, c):
    ball = PoincareBall(c)
    att = GeometricAttention(ball, temperature=0.8, aggregation="einstein")
    q = ball_points(rng, 1, 4, c)[0]
    K = ball_points(rng, 15, 4, c)
    V = ball_points(rng, 15, 4, c)
    w = ref_softmax(-ref_dist(q[None], K, c) ** 2 / 0.8)
    out = att.forward_geometric(q, K, V)
    np.testing.assert_allclose(out, ref_gyromidpoint(V, w, c), rtol=1e-8, atol=1e-11)
    # the Klein-model computation written out
    kl = 2 * V / (1 + c * np.sum(V * V, 1, keepdims=True))
    g = 1 / np.sqrt(1 - c * np.sum(kl * kl, 1, keepdims=True))
    m = (w[:, None] * g * kl).sum(0) / (w[:, None] * g).sum()
    np.testing.assert_allclose(out, m / (1 + np.sqrt(1 - c * m @ m)), rtol=1e-8, atol=1e-11)
    # midpoint of identical points is that point; of x and -x with equal weights is 0
    np.testing.assert_allclose(ball.einstein_midpoint(np.repeat(V[:1], 6, 0)), V[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ball.einstein_midpoint(np.stack([V[0], -V[0]])), 0, atol=1e-12)
    np.testing.assert_allclose(att.forward_geometric(q, K, np.repeat(V[:1], 15, 0)), V[0], rtol=1e-9)
    # the midpoint of two points lies on their geodesic, equidistant from both
    mid = ball.einstein_midpoint(V[:2])
    np.testing.assert_allclose(ball.dist(mid, V[0]), ball.dist(mid, V[1]), rtol=1e-8)
    np.testing.assert_allclose(ball.dist(mid, V[0]) * 2, ball.dist(V[0], V[1]), rtol=1e-8)


def test_sphere_and_euclidean_geometric(rng):
    sph = Sphere(2.0)
    att = GeometricAttention(sph, temperature=1.0)
    q = sph.proj(rng.normal(size=4))
    K = sph.proj(rng.normal(size=(10, 4)))
    V = sph.proj(q + 0.3 * rng.normal(size=(10, 4)))
    out = att.forward_geometric(q, K, V)
    assert np.linalg.norm(out) == pytest.approx(2.0)
    w = att.attention_weights()[0]
    t = (w[:, None] * sph.logmap(q, V)).sum(0)
    np.testing.assert_allclose(out, sph.expmap(q, t), rtol=1e-9)
    np.testing.assert_allclose(sph.dist(q, out), np.linalg.norm(t), rtol=1e-8)
    eu = GeometricAttention(Euclidean(), temperature=1.0)
    qe, Ke, Ve = rng.normal(size=3), rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    np.testing.assert_allclose(eu.forward_geometric(qe, Ke, Ve), eu.forward(qe, Ke, Ve), rtol=1e-12)


def test_trait_maps_and_config(rng):
    ball = PoincareBall(2.0)
    att = GeometricAttention(manifold=ball, temperature=0.5, aggregation="einstein", dim=3)
    x = ball_points(rng, 1, 3, 2.0)[0]
    y = ball_points(rng, 1, 3, 2.0)[0]
    u = att.project_tangent(y, x)
    np.testing.assert_allclose(u, ref_logmap(x, y, 2.0), rtol=1e-8)
    np.testing.assert_allclose(att.exp_map(x, u), y, rtol=1e-8)
    cfg = att.config()
    assert isinstance(cfg, rga.AttentionConfig) and isinstance(cfg, GeometricAttentionConfig)
    assert cfg.attention_type == "geometric" and cfg.dim == 3 and cfg.temperature == 0.5
    assert cfg.manifold == {"name": "poincare", "c": 2.0}
    again = GeometricAttention.from_config(json.loads(cfg.model_dump_json()))
    K = ball_points(rng, 9, 3, 2.0)
    np.testing.assert_allclose(again.forward_geometric(x, K, K), att.forward_geometric(x, K, K))
    att.reset()
    assert att.attention_weights() is None


def test_errors(rng):
    ball = PoincareBall(1.0)
    att = GeometricAttention(ball, dim=3, max_keys=5)
    K = ball_points(rng, 4, 3, 1.0)
    with pytest.raises(InvalidInputError, match="outside the Poincaré ball"):
        att.forward(np.array([2.0, 0, 0]), K, K)
    with pytest.raises(InvalidInputError, match="keys"):
        att.compute_manifold_weights(K[0], K * 5)
    bad = K.copy()
    bad[2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        att.forward(K[0], bad, np.ones((4, 2)))
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        att.forward_batch(K[:2], bad, np.ones((4, 2)))
    with pytest.raises(InvalidInputError, match="values"):
        att.forward_geometric(K[0], K, K * 5)
    with pytest.raises(DimensionMismatchError):
        att.forward(K[0, :2], K, K)
    with pytest.raises(DimensionMismatchError):
        att.forward(K[0], K, K[:3])
    with pytest.raises(DimensionMismatchError):
        att.forward_geometric(K[0], K, rng.normal(size=(4, 5)) * 0.1)
    with pytest.raises(InputTooLargeError):
        att.forward(K[0], ball_points(rng, 6, 3, 1.0), np.ones((6, 2)))
    with pytest.raises(InvalidInputError):
        att.forward(K[0], K, np.full((4, 2), np.nan))
    with pytest.raises(InvalidInputError):
        att.forward(K[0], np.zeros((0, 3)), np.zeros((0, 2)))
    with pytest.raises(ConfigError):
        GeometricAttention(Sphere(), aggregation="einstein")
    with pytest.raises(ConfigError):
        GeometricAttention(ball, temperature=0.0)
    with pytest.raises(ConfigError):
        GeometricAttention(ball, aggregation="mean")
    with pytest.raises(ConfigError):
        GeometricAttention("poincare")
    with pytest.raises(NotFittedError):
        GeometricAttention(ball).backward(np.ones(3))


# ------------------------------------------------------------------------------ backward
def _fd_check(att, fn, args, G, h=1e-6):
    grads = att.backward(G)
    for which, (arr, g) in enumerate(zip(args, grads)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            a = [x.copy() for x in args]
            a[which][idx] += h
            lp = np.sum(fn(*a) * G)
            a[which][idx] -= 2 * h
            lm = np.sum(fn(*a) * G)
            num[idx] = (lp - lm) / (2 * h)
        rel = np.linalg.norm(g - num) / max(np.linalg.norm(num), 1e-12)
        assert rel < 1e-6, f"input {which}: relative error {rel:.3g}"


@pytest.mark.parametrize("mode", ["euclidean", "tangent", "einstein"])
@pytest.mark.parametrize("batch", [False, True])
def test_backward_finite_differences(rng, mode, batch):
    c = 0.8
    ball = PoincareBall(c)
    att = GeometricAttention(ball, temperature=0.7, aggregation="einstein" if mode == "einstein" else "tangent",
                             values_on_manifold=mode != "euclidean")
    K = ball_points(rng, 6, 4, c, 0.7)
    V = rng.normal(size=(6, 3)) if mode == "euclidean" else ball_points(rng, 6, 4, c, 0.7)
    if batch:
        Q = ball_points(rng, 3, 4, c, 0.7)
        fn = att.forward_batch
    else:
        Q = ball_points(rng, 1, 4, c, 0.7)[0]
        fn = att.forward
    out = fn(Q, K, V)
    G = rng.normal(size=out.shape)
    _fd_check(att, fn, [Q, K, V], G)


def test_backward_shape_checks(rng):
    att = GeometricAttention(PoincareBall())
    K = ball_points(rng, 5, 3, 1.0)
    att.forward(K[0], K, np.ones((5, 2)))
    with pytest.raises(DimensionMismatchError):
        att.backward(np.ones(3))
    gq, gk, gv = att.backward(np.ones(2))
    assert gq.shape == (3,) and gk.shape == (5, 3) and gv.shape == (5, 2)
    np.testing.assert_allclose(gv, np.repeat(att.attention_weights()[0][:, None], 2, 1))
    with pytest.raises(NotImplementedError):
        s = GeometricAttention(Sphere())
        s.forward(np.array([1.0, 0, 0]), np.eye(3), np.eye(3))
        s.backward(np.ones(3))


# ------------------------------------------------------------------- HyperbolicGraphAttention
def _ref_graph(X, ei, c, T):
    """Per-target softmax over incoming edges and tangent aggregation, with plain loops."""
    alpha = np.zeros(ei.shape[1])
    H = X.copy()
    for i in range(X.shape[0]):
        idx = np.where(ei[1] == i)[0]
        if idx.size == 0:
            continue
        d = ref_dist(X[ei[0, idx]], X[i][None], c)
        alpha[idx] = ref_softmax(-d**2 / T)
        logs = np.array([np.zeros(X.shape[1]) if ei[0, e] == i else ref_logmap(X[i], X[ei[0, e]], c) for e in idx])
        t = (alpha[idx, None] * logs).sum(0)
        H[i] = X[i] if not np.any(t) else ref_expmap(X[i], t, c)
    return alpha, H


@pytest.mark.parametrize("c", [0.5, 1.0])
def test_hyperbolic_graph_attention_matches_reference(rng, c):
    X = ball_points(rng, 8, 3, c)
    ei = np.array([[0, 1, 2, 3, 4, 5, 1, 1, 6, 6], [1, 2, 3, 4, 5, 0, 0, 0, 6, 0]])  # duplicate edge, self loop; 7 isolated
    layer = HyperbolicGraphAttention(c=c, temperature=0.6)
    H = layer(X, ei)
    ei_used, alpha = layer.attention_weights()
    assert ei_used.shape[1] == 9 + 8  # the given self loop replaced, one loop per node added
    ref_alpha, ref_H = _ref_graph(X, ei_used, c, 0.6)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(H, ref_H, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(np.bincount(ei_used[1], weights=alpha, minlength=8), 1.0, rtol=1e-12)
    np.testing.assert_allclose(H[7], X[7], atol=1e-12)  # only its self loop
    # without self loops an isolated node keeps its point and has no weights
    bare = HyperbolicGraphAttention(c=c, temperature=0.6, add_self_loops=False)
    Hb = bare(X, ei)
    ref_alpha_b, ref_Hb = _ref_graph(X, ei, c, 0.6)
    np.testing.assert_allclose(bare.attention_weights()[1], ref_alpha_b, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(Hb, ref_Hb, rtol=1e-8, atol=1e-11)
    np.testing.assert_array_equal(Hb[7], X[7])


def test_embed_and_float32_modes(rng):
    layer = HyperbolicGraphAttention(c=2.0)
    v = rng.normal(size=(7, 4)).astype(np.float32)
    pts = layer.embed(v, scale=0.5)
    assert pts.dtype == np.float32
    n = np.linalg.norm(0.5 * v.astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(pts, np.tanh(np.sqrt(2.0) * n) * 0.5 * v / (np.sqrt(2.0) * n), rtol=1e-5)
    assert np.all(PoincareBall(2.0).is_on_manifold(layer.embed(v * 1e3)))
    with pytest.raises(InvalidInputError):
        layer.embed(v, scale=0)
    ball = PoincareBall(1.0)
    q = ball_points(rng, 2, 4, 1.0).astype(np.float32)
    K = ball_points(rng, 9, 4, 1.0).astype(np.float32)
    for agg in ("tangent", "einstein"):
        att = GeometricAttention(ball, aggregation=agg)
        assert att.forward_geometric(q[0], K, K).dtype == np.float32
        assert att.forward_geometric_batch(q, K, K).dtype == np.float32
        att64 = GeometricAttention(ball, aggregation=agg)
        np.testing.assert_allclose(att.forward_geometric(q[0], K, K),
                                   att64.forward_geometric(q[0].astype(np.float64), K.astype(np.float64),
                                                           K.astype(np.float64)), rtol=1e-4, atol=1e-5)
    assert GeometricAttention(ball).forward_batch(q, K, K).dtype == np.float32


def test_hyperbolic_graph_attention_edge_cases(rng):
    X = ball_points(rng, 5, 3, 1.0).astype(np.float32)
    bare = HyperbolicGraphAttention(add_self_loops=False)
    H = bare(X, np.zeros((2, 0), dtype=np.int64))
    assert H.dtype == np.float32
    np.testing.assert_array_equal(H, X)
    assert bare.attention_weights()[1].shape == (0,)
    layer = HyperbolicGraphAttention(c=1.0)
    H32 = layer(X, np.array([[0, 1], [1, 0]]))
    assert H32.dtype == np.float32
    H64 = layer(X.astype(np.float64), np.array([[0, 1], [1, 0]]))
    np.testing.assert_allclose(H32, H64, rtol=1e-4, atol=1e-6)
    with pytest.raises(InvalidInputError):
        layer(X, np.array([[0, 1], [1, 5]]))  # node 5 does not exist
    with pytest.raises(InvalidInputError):
        layer(X, np.array([[0.0, 1.0], [1.0, 0.0]]))  # float edge index
    with pytest.raises(ConfigError):
        HyperbolicGraphAttention(temperature=-1)


def test_score_candidates(rng):
    c = 1.0
    layer = HyperbolicGraphAttention(c=c, temperature=2.0)
    X = ball_points(rng, 6, 4, c)
    q = ball_points(rng, 1, 4, c)[0]
    nbhd = [[1, 2], [0], [], [4, 5], [3], [3]]
    r1 = layer.score_candidates(q, X, neighbourhoods=nbhd)
    ei = np.array([[1, 2, 0, 4, 5, 3, 3], [0, 0, 1, 3, 3, 4, 5]])
    r2 = layer.score_candidates(q, X, edge_index=ei)
    np.testing.assert_allclose(r1.scores, r2.scores)
    np.testing.assert_allclose(r1.edge_weights, r2.edge_weights)
    _, H = _ref_graph(X, r1.edge_index, c, 2.0)
    np.testing.assert_allclose(r1.aggregated, H, rtol=1e-8, atol=1e-11)
    d = ref_dist(q[None], H, c)
    np.testing.assert_allclose(r1.distances, d, rtol=1e-8)
    np.testing.assert_allclose(r1.scores, -d**2 / 2.0, rtol=1e-8)
    np.testing.assert_allclose(r1.query_weights, ref_softmax(-d**2 / 2.0), rtol=1e-8)
    np.testing.assert_allclose(r1.aggregated[2], X[2], atol=1e-12)  # no neighbours
    with pytest.raises(InvalidInputError):
        layer.score_candidates(q, X)  # neither structure given
    with pytest.raises(InvalidInputError):
        layer.score_candidates(q, X, neighbourhoods=nbhd, edge_index=ei)
    with pytest.raises(DimensionMismatchError):
        layer.score_candidates(q, X, neighbourhoods=nbhd[:5])
    with pytest.raises(InvalidInputError, match="references node 6"):
        layer.score_candidates(q, X, neighbourhoods=[[6], [], [], [], [], []])
    with pytest.raises(InvalidInputError):
        layer.score_candidates(q * 10, X, edge_index=ei)
    with pytest.raises(InvalidInputError):
        layer(X * 10, ei)


@pytest.mark.torch
def test_einstein_against_geoopt(rng):
    torch = pytest.importorskip("torch")
    geoopt = pytest.importorskip("geoopt")
    from geoopt.manifolds.stereographic.math import weighted_midpoint

    c = 1.5
    V = ball_points(rng, 10, 4, c)
    w = rng.uniform(0.1, 1.0, size=10)
    want = weighted_midpoint(torch.tensor(V), torch.tensor(w), k=torch.tensor(-c, dtype=torch.float64),
                             reducedim=[0]).numpy()
    np.testing.assert_allclose(PoincareBall(c).einstein_midpoint(V, w), want.reshape(-1), rtol=1e-8)
    assert geoopt is not None


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["euclidean", "tangent", "einstein"])
def test_forward_and_backward_against_geoopt_autograd(rng, mode):
    """Forward with geoopt's ops and gradients from torch autograd, against ours (float64)."""
    torch = pytest.importorskip("torch")
    geoopt = pytest.importorskip("geoopt")
    from geoopt.manifolds.stereographic.math import weighted_midpoint

    c, temp = 1.3, 0.6
    gball = geoopt.PoincareBall(c=torch.tensor(c, dtype=torch.float64))
    Q = ball_points(rng, 3, 4, c, 0.8)
    K = ball_points(rng, 7, 4, c, 0.8)
    V = rng.normal(size=(7, 5)) if mode == "euclidean" else ball_points(rng, 7, 4, c, 0.8)
    att = GeometricAttention(PoincareBall(c), temperature=temp,
                             aggregation="einstein" if mode == "einstein" else "tangent",
                             values_on_manifold=mode != "euclidean")
    out = att.forward_batch(Q, K, V)
    G = rng.normal(size=out.shape)
    gq, gk, gv = att.backward(G)

    tq, tk, tv = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (Q, K, V))
    d = gball.dist(tq[:, None, :], tk[None, :, :])
    w = torch.softmax(-d**2 / temp, dim=1)
    if mode == "euclidean":
        tout = w @ tv
    elif mode == "tangent":
        logs = gball.logmap(tq[:, None, :], tv[None, :, :])
        tout = gball.expmap(tq, (w[:, :, None] * logs).sum(1))
    else:
        tout = torch.stack([weighted_midpoint(tv, w[b], k=torch.tensor(-c, dtype=torch.float64), reducedim=[0])
                            for b in range(3)]).reshape(3, -1)
    np.testing.assert_allclose(att.attention_weights(), w.detach().numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-7, atol=1e-10)
    (tout * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(gq, tq.grad.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gk, tk.grad.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gv, tv.grad.numpy(), rtol=1e-6, atol=1e-9)
