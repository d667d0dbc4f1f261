"""EWC: penalty and gradient values, and less forgetting on two sequential tasks."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import InvalidInputError, NotFittedError
from ruvector_graph_attn.nn.module import Parameter
from ruvector_graph_attn.training import Adam, EWC, cross_entropy


def test_penalty_and_grad_values():
    a = Parameter(np.array([1.0, 2.0]))
    b = Parameter(np.array([[0.5]]))
    ewc = EWC([("a", a), ("b", b)], lam=4.0)
    with pytest.raises(NotFittedError):
        ewc.penalty()
    ewc.consolidate({"a": np.array([1.0, 3.0]), "b": np.array([[2.0]])})
    a.data = np.array([2.0, 0.0])
    b.data = np.array([[1.5]])
    # 4/2 * (1*1 + 3*4 + 2*1) = 30
    assert ewc.penalty() == pytest.approx(30.0)
    g = ewc.penalty_grad()
    np.testing.assert_allclose(g["a"], 4 * np.array([1.0 * 1, 3.0 * -2]))
    np.testing.assert_allclose(g["b"], [[4 * 2.0 * 1.0]])
    a.grad = np.array([1.0, 1.0])
    assert ewc.accumulate_grad() == pytest.approx(30.0)
    np.testing.assert_allclose(a.grad, [5.0, -23.0])
    # finite-difference check of the gradient
    eps = 1e-6
    a.data[0] += eps
    up = ewc.penalty()
    a.data[0] -= 2 * eps
    down = ewc.penalty()
    a.data[0] += eps
    assert (up - down) / (2 * eps) == pytest.approx(g["a"][0], rel=1e-6)


def test_two_tasks_accumulate_and_online():
    p = Parameter(np.array([0.0]))
    ewc = EWC([("p", p)], lam=2.0)
    ewc.consolidate({"p": np.array([1.0])})
    p.data = np.array([1.0])
    ewc.consolidate({"p": np.array([3.0])})
    p.data = np.array([2.0])
    assert ewc.penalty() == pytest.approx(1.0 * (1 * 4 + 3 * 1))
    on = EWC([("p", p)], lam=2.0, online=True, gamma=0.5)
    p.data = np.array([0.0])
    on.consolidate({"p": np.array([1.0])})
    p.data = np.array([1.0])
    on.consolidate({"p": np.array([3.0])})
    p.data = np.array([2.0])
    assert on.penalty() == pytest.approx(1.0 * (0.5 + 3.0) * 1.0)
    with pytest.raises(InvalidInputError):
        on.consolidate({"p": np.array([-1.0])})
    with pytest.raises(InvalidInputError):
        on.consolidate({})


def test_fisher_is_mean_squared_gradient():
    p = Parameter(np.array([1.0, -1.0]))
    ewc = EWC([("p", p)])

    def backward(batch):
        p.accumulate(batch * p.data)  # gradient of 0.5 * batch * p^2

    f = ewc.estimate_fisher(backward, [1.0, 3.0])
    np.testing.assert_allclose(f["p"], [(1 + 9) / 2, (1 + 9) / 2])
    assert p.grad is None


def _task(rng, n, informative):
    """Binary labels from x[:, informative]. Task A (informative=0) leaves inputs 2, 3 at zero;
    in task B x0 is anti-correlated with the label, so plain training on B overwrites A's use
    of x0, while a joint solution (weight on x0 for A, a larger one on x2 for B) exists."""
    x = rng.normal(size=(n, 4))
    y = (x[:, informative] > 0).astype(np.int64)
    if informative == 0:
        x[:, 2:] = 0.0
    else:
        x[:, 0] = -1.5 * x[:, 2] + 0.3 * rng.normal(size=n)
    return x, y


def _train(model, x, y, epochs, ewc=None):
    opt = Adam(model.parameters(), lr=0.05)
    for _ in range(epochs):
        model.zero_grad()
        _, g = cross_entropy(model(x), y)
        model.backward(g)
        if ewc is not None:
            ewc.accumulate_grad()
        opt.step()


def _acc(model, x, y):
    return float((model(x).argmax(1) == y).mean())


def _run(use_ewc):
    rng = np.random.default_rng(0)
    xa, ya = _task(rng, 400, 0)
    xb, yb = _task(rng, 400, 2)
    model = nn.Sequential(nn.Linear(4, 16, rng=1), nn.Tanh(), nn.Linear(16, 2, rng=2)).double()
    _train(model, xa, ya, 150)
    acc_a_before = _acc(model, xa, ya)
    ewc = None
    if use_ewc:
        ewc = EWC(model, lam=1e4)

        def backward(i):
            _, g = cross_entropy(model(xa[i:i + 1]), ya[i:i + 1])
            model.backward(g)

        ewc.consolidate(ewc.estimate_fisher(backward, range(0, 400, 2)))
    _train(model, xb, yb, 200, ewc)
    return acc_a_before, _acc(model, xa, ya), _acc(model, xb, yb)


def test_ewc_reduces_forgetting():
    before, plain_a, plain_b = _run(False)
    before2, ewc_a, ewc_b = _run(True)
    assert before == before2 and before > 0.95
    assert plain_b > 0.95 and ewc_b > 0.9       # both learn task B
    assert plain_a < 0.5                        # plain fine-tuning forgets task A
    assert ewc_a > 0.9                          # EWC keeps it
