"""Optimizers and schedules against the published update equations, step by step."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.nn.module import Parameter
from ruvector_graph_attn.training import optim as O


def _grads(rng, shape, steps):
    return [rng.normal(size=shape) for _ in range(steps)]


def _run(opt_factory, p0, grads):
    p = Parameter(p0.copy())
    opt = opt_factory([p])
    out = []
    for g in grads:
        p.grad = g.copy()
        opt.step()
        out.append(p.data.copy())
    return out


def ref_sgd(p, grads, lr, mu=0.0, damp=0.0, wd=0.0, nesterov=False):
    p = p.copy()
    b = None
    out = []
    for t, g in enumerate(grads):
        d = g + wd * p
        if mu:
            b = d.copy() if t == 0 else mu * b + (1 - damp) * d
            d = d + mu * b if nesterov else b
        p = p - lr * d
        out.append(p.copy())
    return out


def ref_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, amsgrad=False, decoupled=False):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        p = p - lr * mhat / (np.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps)
        out.append(p.copy())
    return out


@pytest.mark.parametrize("kw", [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.8, dampening=0.3, weight_decay=0.01),
    dict(momentum=0.9, nesterov=True, weight_decay=0.05),
])
def test_sgd_matches_equations(rng, kw):
    p0 = rng.normal(size=(3, 4))
    grads = _grads(rng, (3, 4), 5)
    got = _run(lambda ps: O.SGD(ps, lr=0.1, **kw), p0, grads)
    want = ref_sgd(p0, grads, 0.1, kw.get("momentum", 0.0), kw.get("dampening", 0.0),
                   kw.get("weight_decay", 0.0), kw.get("nesterov", False))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sgd_hand_step():
    p = Parameter(np.array([1.0, -2.0]))
    opt = O.SGD([p], lr=0.5, momentum=0.9)
    p.grad = np.array([1.0, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.5, -2.5])
    p.grad = np.array([1.0, 0.0])
    opt.step()  # buffer = 0.9*[1,1] + [1,0] = [1.9, 0.9]
    np.testing.assert_allclose(p.data, [0.5 - 0.95, -2.5 - 0.45])


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.1), dict(amsgrad=True, betas=(0.8, 0.99))])
def test_adam_matches_equations(rng, kw):
    p0 = rng.normal(size=(5,))
    grads = _grads(rng, (5,), 6)
    got = _run(lambda ps: O.Adam(ps, lr=0.01, **kw), p0, grads)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    want = ref_adam(p0, grads, 0.01, b1, b2, wd=kw.get("weight_decay", 0.0), amsgrad=kw.get("amsgrad", False))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_adam_first_step_is_lr_times_sign():
    p = Parameter(np.array([0.0, 0.0, 0.0]))
    opt = O.Adam([p], lr=0.1, eps=0.0)
    p.grad = np.array([3.0, -0.5, 1e-3])
    opt.step()
    np.testing.assert_allclose(p.data, [-0.1, 0.1, -0.1], rtol=1e-12)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_decoupled(rng, amsgrad):
    p0 = rng.normal(size=(2, 3))
    grads = _grads(rng, (2, 3), 5)
    got = _run(lambda ps: O.AdamW(ps, lr=0.05, weight_decay=0.1, amsgrad=amsgrad), p0, grads)
    want = ref_adam(p0, grads, 0.05, wd=0.1, amsgrad=amsgrad, decoupled=True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # AdamW differs from Adam with the same weight decay
    adam = _run(lambda ps: O.Adam(ps, lr=0.05, weight_decay=0.1), p0, grads)
    assert not np.allclose(adam[-1], got[-1])


def test_param_groups_and_skip_none_grad():
    a = Parameter(np.ones(2))
    b = Parameter(np.ones(2))
    c = Parameter(np.ones(2))
    opt = O.SGD([{"params": [a], "lr": 1.0}, {"params": [b, c], "weight_decay": 0.5}], lr=0.1)
    a.grad = np.ones(2)
    b.grad = np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, [0.0, 0.0])
    np.testing.assert_allclose(b.data, 1 - 0.1 * 1.5)
    np.testing.assert_allclose(c.data, 1.0)  # no grad: untouched
    opt.lr = 0.2
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    with pytest.raises(InvalidInputError):
        O.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(InvalidInputError):
        O.SGD([], lr=0.1)
    with pytest.raises(InvalidInputError):
        O.SGD([a], lr=-1.0)
    with pytest.raises(InvalidInputError):
        O.SGD([a], lr=0.1, nesterov=True)


def test_float32_params_stay_float32(rng):
    p = Parameter(rng.normal(size=4).astype(np.float32))
    opt = O.AdamW([p], lr=0.01)
    p.grad = rng.normal(size=4).astype(np.float32)
    opt.step()
    assert p.data.dtype == np.float32


def test_clip_grad_norm():
    a = Parameter(np.zeros(2))
    b = Parameter(np.zeros(1))
    a.grad = np.array([3.0, 0.0])
    b.grad = np.array([4.0])
    total = O.clip_grad_norm_([a, b], max_norm=1.0)
    assert total == pytest.approx(5.0)
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3 * coef, 0])
    np.testing.assert_allclose(b.grad, [4 * coef])
    a.grad = np.array([0.3, 0.0])
    b.grad = np.array([-0.4])
    assert O.clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(0.5)
    np.testing.assert_allclose(a.grad, [0.3, 0.0])  # no clipping below the limit
    a.grad = np.array([2.0, -7.0])
    assert O.clip_grad_norm_([a, b], 1.0, norm_type=float("inf")) == pytest.approx(7.0)
    a.grad = np.array([np.nan, 0.0])
    with pytest.raises(InvalidInputError):
        O.clip_grad_norm_([a], 1.0, error_if_nonfinite=True)


def test_schedules():
    p = Parameter(np.zeros(1))
    opt = O.SGD([p], lr=1.0)
    s = O.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [opt.lr]
    for _ in range(5):
        s.step()
        lrs.append(opt.lr)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]

    opt = O.SGD([p], lr=0.1)
    s = O.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    got = [opt.lr]
    for _ in range(4):
        s.step()
        got.append(opt.lr)
    want = [0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(got, want)
    assert got[-1] == pytest.approx(0.01)

    opt = O.SGD([p], lr=0.2)
    s = O.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=3)
    got = [opt.lr]
    for _ in range(4):
        s.step()
        got.append(opt.lr)
    np.testing.assert_allclose(got, [0.05, 0.1, 0.15, 0.2, 0.2])

    opt = O.SGD([p], lr=1.0)
    after = O.CosineAnnealingLR(opt, T_max=2)
    s = O.LinearWarmup(opt, warmup_steps=4, after=after)
    got = [opt.lr]
    for _ in range(6):
        s.step()
        got.append(opt.lr)
    np.testing.assert_allclose(got, [0.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.0], atol=1e-12)

    opt = O.SGD([p], lr=1.0)
    s = O.MultiStepLR(opt, milestones=[1, 3], gamma=0.1)
    got = [opt.lr]
    for _ in range(3):
        s.step()
        got.append(opt.lr)
    np.testing.assert_allclose(got, [1.0, 0.1, 0.1, 0.01])


# -- Riemannian ------------------------------------------------------------------------------
class _Ball:
    """Minimal Poincaré ball (curvature -c) for optimizer tests, independent of the manifold module."""

    def __init__(self, c):
        self.c = c


def _proj_ref(x, c, eps=1e-5):
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    m = (1 - eps) / math.sqrt(c)
    return np.where(n > m, x / n * m, x)


def test_riemannian_sgd_euclidean_equals_sgd(rng):
    p0 = rng.normal(size=(3, 2))
    grads = _grads(rng, (3, 2), 4)
    got = _run(lambda ps: O.RiemannianSGD(ps, lr=0.1), p0, grads)
    want = ref_sgd(p0, grads, 0.1)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_riemannian_adam_euclidean_equals_adam(rng):
    p0 = rng.normal(size=(3, 2))
    grads = _grads(rng, (3, 2), 4)
    got = _run(lambda ps: O.RiemannianAdam(ps, lr=0.01, weight_decay=0.1), p0, grads)
    want = ref_adam(p0, grads, 0.01, wd=0.1)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_riemannian_sgd_ball_step(rng, c):
    x0 = rng.normal(size=(4, 3)) * 0.3 / math.sqrt(c)
    p = Parameter(x0.copy(), manifold=_Ball(c))
    opt = O.RiemannianSGD([p], lr=0.2)
    g = rng.normal(size=(4, 3))
    p.grad = g.copy()
    opt.step()
    scale = (1 - c * (x0 * x0).sum(1, keepdims=True)) ** 2 / 4
    np.testing.assert_allclose(p.data, _proj_ref(x0 - 0.2 * g * scale, c), rtol=1e-12)
    # a huge step is projected back inside the ball
    p.grad = g * 1e6
    opt.step()
    assert (np.linalg.norm(p.data, axis=1) < 1 / math.sqrt(c)).all()


def _lam(x, c):
    return 2 / (1 - c * (x * x).sum(-1, keepdims=True))


def test_ball_parallel_transport_is_isometry(rng):
    c = 1.3
    ops = O._BallOps(_Ball(c))
    x = rng.normal(size=(5, 3)) * 0.2
    y = rng.normal(size=(5, 3)) * 0.2
    v = rng.normal(size=(5, 3))
    w = ops.transp(x, y, v)
    np.testing.assert_allclose(_lam(y, c) * np.linalg.norm(w, axis=1, keepdims=True),
                               _lam(x, c) * np.linalg.norm(v, axis=1, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(ops.transp(x, x, v), v, rtol=1e-12)


def test_riemannian_adam_ball_steps(rng):
    c = 1.0
    x = rng.normal(size=(3, 2)) * 0.3
    p = Parameter(x.copy(), manifold=_Ball(c))
    opt = O.RiemannianAdam([p], lr=0.05)
    ops = O._BallOps(_Ball(c))
    m = np.zeros_like(x)
    v = np.zeros((3, 1))
    for t in range(1, 4):
        g = rng.normal(size=(3, 2))
        p.grad = g.copy()
        opt.step()
        r = g / _lam(x, c) ** 2
        m = 0.9 * m + 0.1 * r
        v = 0.999 * v + 0.001 * (_lam(x, c) ** 2 * (r * r).sum(1, keepdims=True))
        d = (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        y = _proj_ref(x - 0.05 * d, c)
        m = ops.transp(x, y, m)
        x = y
        np.testing.assert_allclose(p.data, x, rtol=1e-10)


def test_riemannian_sgd_momentum_transport(rng):
    c = 1.0
    x = rng.normal(size=(2, 3)) * 0.3
    p = Parameter(x.copy(), manifold=_Ball(c))
    opt = O.RiemannianSGD([p], lr=0.1, momentum=0.9)
    ops = O._BallOps(_Ball(c))
    g1 = rng.normal(size=(2, 3))
    p.grad = g1.copy()
    opt.step()
    buf = 0.9 * g1 + g1 / _lam(x, c) ** 2  # geoopt: buffer starts at the raw gradient
    y = _proj_ref(x - 0.1 * buf, c)
    np.testing.assert_allclose(p.data, y, rtol=1e-12)
    np.testing.assert_allclose(opt.state[id(p)]["momentum_buffer"], ops.transp(x, y, buf), rtol=1e-12)


def test_with_library_poincare_ball(rng):
    from ruvector_graph_attn.manifold import PoincareBall

    ball = PoincareBall(c=1.0)
    x0 = rng.normal(size=(4, 3)) * 0.3
    g = rng.normal(size=(4, 3))
    # same result as the formula-only stand-in
    a = Parameter(x0.copy(), manifold=ball)
    b = Parameter(x0.copy(), manifold=_Ball(1.0))
    for p in (a, b):
        opt = O.RiemannianSGD([p], lr=0.1, momentum=0.5)
        for _ in range(3):
            p.grad = g.copy()
            opt.step()
    np.testing.assert_allclose(a.data, b.data, rtol=1e-10)
    # our transport agrees with the manifold's own parallel transport
    ops = O._BallOps(ball)
    y = rng.normal(size=(4, 3)) * 0.3
    v = rng.normal(size=(4, 3))
    np.testing.assert_allclose(ops.transp(x0, y, v), ball.transp(x0, y, v), rtol=1e-8)
    # exponential-map retraction
    p = Parameter(x0.copy(), manifold=ball)
    opt = O.RiemannianSGD([p], lr=0.1, retraction="expmap")
    p.grad = g.copy()
    opt.step()
    rg = g * (1 - (x0 * x0).sum(1, keepdims=True)) ** 2 / 4
    np.testing.assert_allclose(p.data, ball.expmap(x0, -0.1 * rg), rtol=1e-10)


@pytest.mark.parametrize("cls", [O.RiemannianSGD, O.RiemannianAdam])
def test_riemannian_optimizers_converge_on_ball(rng, cls):
    from ruvector_graph_attn.manifold import PoincareBall

    ball = PoincareBall(c=1.0)
    target = rng.normal(size=(5, 2))
    target = 0.85 * target / np.linalg.norm(target, axis=1, keepdims=True)  # near the boundary
    p = Parameter(np.zeros((5, 2)), manifold=ball)
    opt = cls([p], lr=2.0 if cls is O.RiemannianSGD else 0.05)
    for _ in range(400):
        p.grad = 2 * (p.data - target)
        opt.step()
        assert (np.linalg.norm(p.data, axis=1) < 1).all()
    np.testing.assert_allclose(p.data, target, atol=2e-3)
