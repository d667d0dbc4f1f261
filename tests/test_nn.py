"""nn modules: values from the published equations, float64 finite-difference gradients,
torch state_dict names, dropout train/eval behaviour."""
from __future__ import annotations

import math

import numpy as np
import pytest

from _rga_gradcheck import check_module_grads, rel_err
from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import (
    DimensionMismatchError, InvalidInputError, NotFittedError, StateDictError,
)


def _grad_check(mod, x, rng):
    mod.double()
    x = np.asarray(x, dtype=np.float64)
    return check_module_grads(mod, [x], lambda a: mod(a), mod.backward, rng)


# ---------------------------------------------------------------- Linear
def test_linear_values_and_shapes(rng):
    lin = nn.Linear(5, 3, rng=0)
    assert lin.weight.shape == (3, 5) and lin.bias.shape == (3,)
    assert lin.weight.dtype == np.float32
    x = rng.standard_normal((4, 5)).astype(np.float32)
    W, b = lin.weight.data.astype(np.float64), lin.bias.data.astype(np.float64)
    ref = np.einsum("ni,oi->no", x.astype(np.float64), W) + b
    np.testing.assert_allclose(lin(x), ref, rtol=1e-5, atol=1e-6)
    # leading axes are kept
    x3 = rng.standard_normal((2, 4, 5))
    assert lin(x3).shape == (2, 4, 3)
    nobias = nn.Linear(5, 3, bias=False, rng=0)
    assert nobias.bias is None and list(nobias.state_dict()) == ["weight"]
    np.testing.assert_allclose(nobias(x), x @ nobias.weight.data.T, rtol=1e-6)


def test_linear_init_matches_torch_bounds():
    lin = nn.Linear(400, 300, rng=1)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.data, lin.bias.data
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # uniform on [-bound, bound]: variance bound^2 / 3
    assert abs(w.var() - bound**2 / 3) < 0.05 * bound**2 / 3
    assert abs(w.mean()) < 0.01 * bound
    # seeded init is reproducible, different seeds differ
    np.testing.assert_array_equal(nn.Linear(4, 2, rng=7).weight.data, nn.Linear(4, 2, rng=7).weight.data)
    assert not np.array_equal(nn.Linear(4, 2, rng=7).weight.data, nn.Linear(4, 2, rng=8).weight.data)
    nn.seed(3)
    a = nn.Linear(4, 2).weight.data
    nn.seed(3)
    np.testing.assert_array_equal(a, nn.Linear(4, 2).weight.data)


def test_linear_gradients(rng):
    lin = nn.Linear(4, 3, rng=0)
    _grad_check(lin, rng.standard_normal((5, 4)), rng)
    lin3 = nn.Linear(4, 2, bias=False, rng=1)
    _grad_check(lin3, rng.standard_normal((2, 3, 4)), rng)


def test_linear_grad_accumulates(rng):
    lin = nn.Linear(3, 2, rng=0).double()
    x = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 2))
    lin(x)
    lin.backward(g)
    first = lin.weight.grad.copy()
    lin(x)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, 2 * first)
    np.testing.assert_allclose(first, g.T @ x)
    lin.zero_grad()
    assert lin.weight.grad is None


def test_linear_rejects_bad_input(rng):
    lin = nn.Linear(3, 2)
    with pytest.raises(DimensionMismatchError):
        lin(np.ones((4, 5)))
    with pytest.raises(InvalidInputError):
        lin(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(InvalidInputError):
        lin(np.array([["a", "b", "c"]]))
    with pytest.raises(NotFittedError):
        nn.Linear(3, 2).backward(np.ones((1, 2)))
    lin(np.ones((4, 3)))
    with pytest.raises(DimensionMismatchError):
        lin.backward(np.ones((3, 2)))
    with pytest.raises(InvalidInputError):
        nn.Linear(0, 2)


# ---------------------------------------------------------------- activations
@pytest.mark.parametrize("mod, ref", [
    (nn.ReLU(), lambda x: np.where(x > 0, x, 0.0)),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(), lambda x: np.where(x > 0, x, np.exp(x) - 1.0)),
    (nn.ELU(alpha=0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1.0))),
    (nn.Tanh(), lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))),
])
def test_activation_values_and_grads(mod, ref, rng):
    x = rng.standard_normal((6, 5)) * 2
    np.testing.assert_allclose(mod(x), ref(x), rtol=1e-12, atol=1e-12)
    xf = x.astype(np.float32)
    assert mod(xf).dtype == np.float32
    # avoid the kink at 0 for the finite differences
    x = np.where(np.abs(x) < 1e-3, 0.5, x)
    _grad_check(mod, x, rng)


def test_relu_gradient_at_zero_is_zero():
    r = nn.ReLU()
    r(np.array([0.0, -1.0, 2.0]))
    np.testing.assert_array_equal(r.backward(np.ones(3)), [0.0, 0.0, 1.0])


# ---------------------------------------------------------------- LayerNorm
def test_layernorm_values(rng):
    ln = nn.LayerNorm(6)
    assert list(ln.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(ln.weight.data, np.ones(6))
    np.testing.assert_array_equal(ln.bias.data, np.zeros(6))
    ln.double()
    ln.weight.data[:] = rng.standard_normal(6)
    ln.bias.data[:] = rng.standard_normal(6)
    x = rng.standard_normal((3, 6)) * 3 + 1
    mu = x.sum(axis=1, keepdims=True) / 6
    var = ((x - mu) ** 2).sum(axis=1, keepdims=True) / 6          # biased, as torch
    ref = (x - mu) / np.sqrt(var + 1e-5) * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(x), ref, rtol=1e-12, atol=1e-12)
    # two trailing axes
    ln2 = nn.LayerNorm((2, 3), eps=1e-3, elementwise_affine=False)
    assert ln2.state_dict() == {}
    x2 = rng.standard_normal((4, 2, 3))
    m = x2.reshape(4, -1).mean(axis=1)[:, None, None]
    v = x2.reshape(4, -1).var(axis=1)[:, None, None]
    np.testing.assert_allclose(ln2(x2), (x2 - m) / np.sqrt(v + 1e-3), rtol=1e-12, atol=1e-12)
    with pytest.raises(DimensionMismatchError):
        ln(np.ones((3, 5)))


def test_layernorm_gradients(rng):
    ln = nn.LayerNorm(5).double()
    ln.weight.data[:] = rng.standard_normal(5)
    ln.bias.data[:] = rng.standard_normal(5)
    _grad_check(ln, rng.standard_normal((4, 5)), rng)
    _grad_check(nn.LayerNorm((2, 3), elementwise_affine=False), rng.standard_normal((3, 2, 3)), rng)


# ---------------------------------------------------------------- Dropout
def test_dropout_train_and_eval(rng):
    x = rng.standard_normal((200, 50)) + 3.0
    d = nn.Dropout(0.3, rng=0)
    y = d(x)
    zero = y == 0
    assert 0.25 < zero.mean() < 0.35
    np.testing.assert_allclose(y[~zero], x[~zero] / 0.7, rtol=1e-12)
    # backward uses the same mask and scale
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(d.backward(g), np.where(zero, 0.0, g / 0.7), rtol=1e-12)
    # masks differ between calls, are reproducible from the seed
    assert not np.array_equal(d(x) == 0, zero)
    np.testing.assert_array_equal(nn.Dropout(0.3, rng=0)(x), y)
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d.backward(g), g)
    one = nn.Dropout(1.0)
    np.testing.assert_array_equal(one(x), np.zeros_like(x))
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    with pytest.raises(InvalidInputError):
        nn.Dropout(1.5)
    nn.seed(11)
    a = nn.Dropout(0.5)(x)
    nn.seed(11)
    np.testing.assert_array_equal(a, nn.Dropout(0.5)(x))


def test_dropout_mode_follows_parent(rng):
    seq = nn.Sequential(nn.Linear(4, 4, rng=0), nn.Dropout(0.5, rng=1))
    x = rng.standard_normal((3, 4))
    seq.eval()
    np.testing.assert_allclose(seq(x), seq[0](x))
    seq.train()
    assert seq[1].training and (seq(x) == 0).any()


# ---------------------------------------------------------------- Sequential
def test_sequential_names_indexing_iteration(rng):
    seq = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(seq) == 3
    assert isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2]
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    sub = seq[1:]
    assert list(sub.state_dict()) == ["2.weight", "2.bias"]
    with pytest.raises(IndexError):
        seq[3]
    x = rng.standard_normal((5, 4)).astype(np.float32)
    W0, b0 = seq[0].weight.data, seq[0].bias.data
    W2, b2 = seq[2].weight.data, seq[2].bias.data
    ref = np.maximum(x @ W0.T + b0, 0) @ W2.T + b2
    np.testing.assert_allclose(seq(x), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidInputError):
        nn.Sequential(nn.ReLU(), "not a module")


def test_sequential_gradients(rng):
    seq = nn.Sequential(nn.Linear(4, 6, rng=0), nn.Tanh(), nn.LayerNorm(6), nn.ELU(),
                        nn.Linear(6, 2, rng=1))
    _grad_check(seq, rng.standard_normal((5, 4)), rng)


def test_sequential_state_dict_round_trip(rng):
    a = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1), nn.LayerNorm(3))
    b = nn.Sequential(nn.Linear(4, 8, rng=5), nn.ReLU(), nn.Linear(8, 3, rng=6), nn.LayerNorm(3))
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]
    b.load_state_dict({k: v.tolist() for k, v in sd.items()})   # anything np.asarray converts
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))
    bad = dict(sd)
    bad.pop("2.bias")
    with pytest.raises(StateDictError):
        b.load_state_dict(bad)
    with pytest.raises(StateDictError):
        b.load_state_dict({**sd, "9.weight": np.ones(2)})
    with pytest.raises(StateDictError):
        b.load_state_dict({**sd, "0.weight": np.ones((8, 5))})


def test_rel_err_helper_detects_wrong_gradient():
    # the checker must be able to fail
    assert rel_err(np.array([1.0, 2.0]), np.array([1.0, 2.1])) > 1e-3


@pytest.mark.torch
def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.LeakyReLU(0.1), torch.nn.LayerNorm(6),
                             torch.nn.ELU(0.5), torch.nn.Tanh(), torch.nn.ReLU(), torch.nn.Linear(6, 2)).double()
    ours = nn.Sequential(nn.Linear(5, 6), nn.LeakyReLU(0.1), nn.LayerNorm(6), nn.ELU(0.5), nn.Tanh(),
                         nn.ReLU(), nn.Linear(6, 2)).double()
    ours.load_state_dict(tm.state_dict())
    assert list(ours.state_dict()) == list(tm.state_dict())
    x = rng.standard_normal((4, 5))
    G = rng.standard_normal((4, 2))
    tx = torch.tensor(x, requires_grad=True)
    out = tm(tx)
    (out * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(ours(x), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(G), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    tp = dict(tm.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    # and back into torch
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
