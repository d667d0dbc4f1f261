"""numpy counterparts of ``torch.nn`` building blocks, with forward *and* backward.

Each module follows the equations, defaults and ``state_dict`` names of its
``torch.nn`` namesake (``weight`` ``[out, in]``, ``bias``; ``Sequential`` children
named ``0``, ``1`` ...), so weights move between the two unchanged.

``forward`` caches what ``backward(grad_output)`` needs; ``backward`` returns the
gradient with respect to the input of the *last* forward call and adds parameter
gradients into ``Parameter.grad`` (torch-style accumulation; call ``zero_grad``
between steps). ``backward(grad_output, need_input_grad=False)`` accumulates the same
parameter gradients but skips the input gradient and returns ``None`` (as autograd does
for an input that does not require a gradient); :func:`run_backward` calls any module
that way when it supports the flag.
"""
from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from functools import lru_cache
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.dropout import dropout_apply, dropout_threshold
from ..validation import as_float_array, check_int, check_positive_int, is_integer, trusted_arrays
from .module import Module, Parameter

__all__ = [
    "Linear", "Sequential", "ReLU", "LeakyReLU", "ELU", "Tanh", "Identity", "Dropout",
    "LayerNorm", "seed", "kaiming_uniform", "run_backward", "has_parameters", "supports_need_input_grad",
]

# module-level generator used when a layer is given no ``rng`` (reseed with ``seed``)
_GLOBAL_RNG = np.random.default_rng()


def seed(value: int) -> None:
    """Reseed the generator used for initialisation and dropout masks when no ``rng`` is given."""
    global _GLOBAL_RNG
    _GLOBAL_RNG = np.random.default_rng(check_int(value, "seed", lo=0))


def _resolve_rng(rng: Any) -> np.random.Generator:
    if rng is None:
        return _GLOBAL_RNG
    if isinstance(rng, np.random.Generator):
        return rng
    if is_integer(rng):
        return np.random.default_rng(check_int(rng, "rng seed", lo=0))
    raise InvalidInputError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def kaiming_uniform(shape: tuple[int, ...], fan_in: int, rng: np.random.Generator,
                    dtype: Any = np.float32) -> np.ndarray:
    """``torch.nn.init.kaiming_uniform_(w, a=sqrt(5))``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _check_input(x: Any, name: str = "input") -> np.ndarray:
    return as_float_array(x, name, allow_empty=True)


def _need(cache: Any, module: Module) -> Any:
    if cache is None:
        raise NotFittedError(f"{type(module).__name__}.backward called before forward")
    return cache


def _grad_like(grad_output: Any, shape: tuple[int, ...], module: Module) -> np.ndarray:
    g = as_float_array(grad_output, "grad_output", allow_empty=True)
    if g.shape != shape:
        raise DimensionMismatchError(shape, g.shape, f"{type(module).__name__}.backward grad_output shape")
    return g


@lru_cache(maxsize=None)
def _accepts_flag(cls: type) -> bool:
    fn = getattr(cls, "backward", None)
    if fn is None:
        return False
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    return "need_input_grad" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def supports_need_input_grad(module: Any) -> bool:
    """True when ``module.backward`` accepts the ``need_input_grad`` keyword."""
    return _accepts_flag(type(module))


def has_parameters(module: Any) -> bool:
    """True when ``module`` (or a sub-module) holds at least one :class:`Parameter`."""
    params = getattr(module, "parameters", None)
    if params is None:
        return False
    return next(iter(params()), None) is not None


def run_backward(module: Any, grad_output: Any, need_input_grad: bool = True) -> Any:
    """``module.backward(grad_output)``, skipping the input gradient when ``need_input_grad`` is
    False and the module supports the flag (its return value is then ``None``, or a tuple of
    ``None``). Modules without the flag run their ordinary backward; the caller ignores the result."""
    if need_input_grad or not supports_need_input_grad(module):
        return module.backward(grad_output)
    return module.backward(grad_output, need_input_grad=False)


class Identity(Module):
    """``y = x`` (a placeholder layer, like ``torch.nn.Identity``)."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_shape", None)

    def forward(self, x: Any) -> np.ndarray:
        x = _check_input(x)
        object.__setattr__(self, "_shape", x.shape)
        return x

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        g = _grad_like(grad_output, _need(self._shape, self), self)
        return g if need_input_grad else None


class Linear(Module):
    """``y = x W^T + b`` with ``weight [out_features, in_features]`` and ``bias [out_features]``.

    Initialised like ``torch.nn.Linear`` (kaiming-uniform with ``a = sqrt(5)``, i.e.
    U(-1/sqrt(in), 1/sqrt(in)) for both weight and bias). ``rng`` seeds the init.
    Inputs may have any number of leading axes (``[..., in_features]``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: Any = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        gen = _resolve_rng(rng)
        self.weight = Parameter(kaiming_uniform((self.out_features, self.in_features), self.in_features, gen, dtype))
        if bias:
            self.bias = Parameter(kaiming_uniform((self.out_features,), self.in_features, gen, dtype))
        else:
            self.register_parameter("bias", None)
        object.__setattr__(self, "_x", None)

    def forward(self, x: Any) -> np.ndarray:
        x = _check_input(x)
        if x.ndim == 0:
            raise InvalidInputError("Linear input must have at least 1 axis [..., in_features]")
        if x.shape[-1] != self.in_features:
            raise DimensionMismatchError(self.in_features, x.shape[-1], "Linear input features")
        object.__setattr__(self, "_x", x)
        y = x @ self.weight.data.T
        if self.bias is not None:
            b = self.bias.data
            if b.dtype == y.dtype and y.ndim >= 1 and y.base is None:
                y += b  # the product is a fresh array: add the bias in place (no second [.., out] array)
            else:
                y = y + b
        return y

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        x = _need(self._x, self)
        g = _grad_like(grad_output, x.shape[:-1] + (self.out_features,), self)
        g2 = g.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        self.weight.accumulate(g2.T @ x2)
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0))
        return g @ self.weight.data if need_input_grad else None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def named_children(modules: tuple, owner: str) -> list[tuple[str, Module]]:
    """The ``(name, module)`` pairs of a container built from modules given one by one, as a
    list/tuple, or as a mapping of names (torch's ``Sequential`` conventions), checked."""
    if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
        items = list(modules[0].items())
    elif len(modules) == 1 and isinstance(modules[0], (list, tuple)):
        items = [(str(i), m) for i, m in enumerate(modules[0])]
    else:
        items = [(str(i), m) for i, m in enumerate(modules)]
    for name, mod in items:
        if not isinstance(mod, Module):
            raise InvalidInputError(f"{owner} child {name!r} is a {type(mod).__name__}; expected a Module")
        if not isinstance(name, str) or not name or "." in name:
            raise InvalidInputError(f"{owner} child name {name!r} must be a non-empty string without '.'")
    return items


class Sequential(Module):
    """Modules applied in order; children are named ``"0"``, ``"1"`` ... (torch names).

    ``Sequential(m0, m1, ...)`` or ``Sequential(OrderedDict(name=module))``. Supports
    ``len``, iteration, integer indexing (negative too) and slicing (keeps names).
    ``backward`` runs the children's ``backward`` in reverse order; with
    ``need_input_grad=False`` the first child holding parameters is asked not to compute its
    input gradient, the parameter-free children before it are not run, and ``None`` is returned.
    """

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        for name, mod in named_children(modules, "Sequential"):
            setattr(self, name, mod)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice) -> Any:
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(items[idx]))
        n = len(items)
        i = check_int(idx, "Sequential index (an int or a slice)")
        if not -n <= i < n:
            raise IndexError(f"Sequential index {i} out of range for {n} modules")
        return items[i % n][1]

    def forward(self, x: Any) -> Any:
        mods = list(self._modules.values())
        if not mods:
            return x
        x = mods[0](x)  # the first child checks the user's input; the rest get checked tensors
        with trusted_arrays():
            for mod in mods[1:]:
                x = mod(x)
        return x

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> Any:
        mods = list(self._modules.values())
        stop = 0  # children [0, stop) need not be run when no input gradient is wanted
        if not need_input_grad:
            first = next((i for i, m in enumerate(mods) if has_parameters(m)), None)
            if first is None:
                return None
            stop = first
        g = grad_output
        for i in range(len(mods) - 1, stop - 1, -1):
            g = run_backward(mods[i], g, need_input_grad or i > stop)
        return g if need_input_grad else None


class _Elementwise(Module):
    """Base of pointwise activations: caches the input, backward multiplies by f'(x)."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_x", None)

    def forward(self, x: Any) -> np.ndarray:
        x = _check_input(x)
        object.__setattr__(self, "_x", x)
        return self._f(x)

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        x = _need(self._x, self)
        g = _grad_like(grad_output, x.shape, self)
        return g * self._df(x) if need_input_grad else None

    def _f(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _df(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ReLU(_Elementwise):
    """``max(x, 0)``; the gradient at 0 is 0 (as torch)."""

    def _f(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0).astype(x.dtype, copy=False)

    def _df(self, x: np.ndarray) -> np.ndarray:
        return (x > 0).astype(x.dtype)


class LeakyReLU(_Elementwise):
    """``x if x > 0 else negative_slope * x`` (torch default slope 0.01)."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        s = float(negative_slope)
        if not math.isfinite(s):
            raise InvalidInputError(f"negative_slope must be finite, got {negative_slope}")
        self.negative_slope = s

    def _f(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, x * x.dtype.type(self.negative_slope))

    def _df(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0, self.negative_slope).astype(x.dtype)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(_Elementwise):
    """``x if x > 0 else alpha * (exp(x) - 1)`` (torch default alpha 1.0)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        a = float(alpha)
        if not math.isfinite(a):
            raise InvalidInputError(f"alpha must be finite, got {alpha}")
        self.alpha = a

    def _f(self, x: np.ndarray) -> np.ndarray:
        neg = x.dtype.type(self.alpha) * np.expm1(np.minimum(x, 0))
        return np.where(x > 0, x, neg)

    def _df(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Tanh(_Elementwise):
    """``tanh(x)``; derivative ``1 - tanh(x)^2``."""

    def _f(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def _df(self, x: np.ndarray) -> np.ndarray:
        t = np.tanh(x)
        return 1 - t * t


class Dropout(Module):
    """Inverted dropout as ``torch.nn.Dropout``: in training mode each element is zeroed with
    probability ``p`` and survivors are scaled by ``1 / (1 - p)``; in eval mode it is the
    identity. ``rng`` (seed or Generator) makes the masks reproducible; otherwise the
    module-level generator (see :func:`seed`) is used.

    Each training call draws one 64-bit seed from the generator; the mask is a function of
    that seed and the element index (``kernels.dropout``: a counter-based hash in one fused
    Numba pass, no random array and no mask are materialised), and ``backward`` regenerates
    the same mask from the seed."""

    def __init__(self, p: float = 0.5, rng: Any = None) -> None:
        super().__init__()
        pf = float(p)
        if not 0.0 <= pf <= 1.0:
            raise InvalidInputError(f"dropout probability must be in [0, 1], got {p}")
        self.p = pf
        object.__setattr__(self, "_rng", None if rng is None else _resolve_rng(rng))
        object.__setattr__(self, "_mask", None)
        object.__setattr__(self, "_shape", None)

    def forward(self, x: Any) -> np.ndarray:
        x = _check_input(x)
        object.__setattr__(self, "_shape", x.shape)
        if not self.training or self.p == 0.0:
            object.__setattr__(self, "_mask", None)
            return x
        if self.p == 1.0:
            object.__setattr__(self, "_mask", "zero")
            return np.zeros_like(x)
        gen = self._rng if self._rng is not None else _GLOBAL_RNG
        mask = (int(gen.integers(0, 2**63)), dropout_threshold(self.p), 1.0 / (1.0 - self.p))
        object.__setattr__(self, "_mask", mask)
        return dropout_apply(x.reshape(-1), *mask).reshape(x.shape)

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        shape = _need(self._shape, self)
        g = _grad_like(grad_output, shape, self)
        if not need_input_grad:
            return None
        if self._mask is None:
            return g
        if isinstance(self._mask, str):
            return np.zeros_like(g)
        return dropout_apply(g.reshape(-1), *self._mask).reshape(g.shape)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm(Module):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the trailing
    ``normalized_shape`` axes (biased variance), as ``torch.nn.LayerNorm``; ``weight``
    starts at ones and ``bias`` at zeros (absent when ``elementwise_affine=False``)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape:
            raise InvalidInputError("normalized_shape must name at least one axis")
        self.normalized_shape = tuple(check_positive_int(s, "normalized_shape") for s in shape)
        e = float(eps)
        if not (e > 0 and math.isfinite(e)):
            raise InvalidInputError(f"eps must be a positive finite number, got {eps}")
        self.eps = e
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        object.__setattr__(self, "_cache", None)

    def forward(self, x: Any) -> np.ndarray:
        x = _check_input(x)
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[-k:]) != self.normalized_shape:
            raise DimensionMismatchError(self.normalized_shape, tuple(x.shape[-k:]) if x.ndim >= k else x.shape,
                                         "LayerNorm trailing shape")
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        xc = x - mean
        var = (xc * xc).mean(axis=axes, keepdims=True)
        rstd = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        xhat = xc * rstd
        object.__setattr__(self, "_cache", (xhat, rstd, axes))
        if self.weight is not None:
            return xhat * self.weight.data + self.bias.data
        return xhat

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        xhat, rstd, axes = _need(self._cache, self)
        g = _grad_like(grad_output, xhat.shape, self)
        lead = tuple(range(xhat.ndim - len(axes)))
        if self.weight is not None:
            self.weight.accumulate((g * xhat).sum(axis=lead))
            self.bias.accumulate(g.sum(axis=lead))
        if not need_input_grad:
            return None
        if self.weight is not None:
            gx = g * self.weight.data
        else:
            gx = g
        # d/dx of (x - mean) * rstd: rstd * (g - mean(g) - xhat * mean(g * xhat))
        return rstd * (gx - gx.mean(axis=axes, keepdims=True)
                       - xhat * (gx * xhat).mean(axis=axes, keepdims=True))

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
