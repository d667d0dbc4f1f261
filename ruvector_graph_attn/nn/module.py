"""Parameter and Module: the numpy counterparts of ``torch.nn.Parameter`` / ``torch.nn.Module``.

A :class:`Module` registers :class:`Parameter` s, buffers and sub-modules assigned as
attributes, in assignment order, so ``state_dict()`` names match torch / PyTorch
Geometric (``lin.weight``, ``nn.0.bias`` ...). Forward passes cache what their
``backward(grad_output)`` needs; ``backward`` returns the gradient for the inputs and
*adds* parameter gradients into ``Parameter.grad`` (as torch accumulates ``.grad``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, Mapping

import numpy as np

from ..errors import InvalidInputError, StateDictError


class Parameter:
    """A trainable array: ``data`` (the value) and ``grad`` (same shape, or ``None``)."""

    __slots__ = ("data", "grad", "requires_grad", "manifold")

    def __init__(self, data: Any, requires_grad: bool = True, manifold: Any = None):
        arr = np.asarray(data)
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float32)
        self.data = np.ascontiguousarray(arr)
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        #: manifold the parameter lives on (``None`` = Euclidean); Riemannian optimizers use it
        self.manifold = manifold

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def accumulate(self, g: np.ndarray) -> None:
        """Add ``g`` into ``grad`` (allocating it on first use)."""
        if not self.requires_grad:
            return
        g = np.asarray(g, dtype=self.data.dtype).reshape(self.data.shape)
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer. Subclasses implement ``forward`` (and ``backward``)."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError("Module.__init__() must be called before assigning attributes")
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (``None`` registers an absent optional parameter, e.g. no bias)."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, value: Any) -> None:
        """A non-trainable array that is part of ``state_dict`` (like torch buffers)."""
        arr = np.ascontiguousarray(np.asarray(value))
        self._buffers[name] = arr
        object.__setattr__(self, name, arr)

    def _set_buffer(self, name: str, value: np.ndarray) -> None:
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    # -- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, mod in self._modules.items():
            yield from mod.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for mprefix, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mprefix}.{name}" if mprefix else name), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.parameters()))

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def update_parameters(self, optimizer: Any) -> None:
        """One ``optimizer`` step applied to this module's parameters only: parameters of other
        modules in the same optimizer, and their optimizer state, are left as they are.
        Raises :class:`InvalidInputError` when the optimizer holds none of them."""
        mine = {id(p) for p in self.parameters()}
        groups = optimizer.param_groups
        own = [{**g, "params": [p for p in g["params"] if id(p) in mine]} for g in groups]
        if not any(g["params"] for g in own):
            raise InvalidInputError(f"the optimizer holds none of this {type(self).__name__}'s parameters")
        optimizer.param_groups = own
        try:
            optimizer.step()
        finally:
            optimizer.param_groups = groups

    def train(self, mode: bool = True) -> "Module":
        for _, mod in self.named_modules():
            object.__setattr__(mod, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def astype(self, dtype: Any) -> "Module":
        """Cast every parameter and floating buffer to ``dtype`` (e.g. float64 for gradient checks)."""
        dt = np.dtype(dtype)
        for _, mod in self.named_modules():
            for p in mod._parameters.values():
                p.data = np.ascontiguousarray(p.data.astype(dt))
                p.grad = None if p.grad is None else p.grad.astype(dt)
            for name, b in list(mod._buffers.items()):
                if b.dtype.kind == "f":
                    mod._set_buffer(name, b.astype(dt))
        return self

    def double(self) -> "Module":
        return self.astype(np.float64)

    def float(self) -> "Module":
        return self.astype(np.float32)

    # -- state dict ---------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by dotted name (torch / PyG names), as copies."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mprefix, mod in self.named_modules():
            for name, p in mod._parameters.items():
                out[f"{mprefix}.{name}" if mprefix else name] = p.data.copy()
            for name, b in mod._buffers.items():
                out[f"{mprefix}.{name}" if mprefix else name] = b.copy()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> "Module":
        """Load arrays by name. Anything ``np.asarray`` converts is accepted (torch tensors too,
        via ``.detach().cpu().numpy()`` if present). Missing, unexpected or wrongly shaped
        entries raise :class:`StateDictError` and leave the module unchanged."""
        if not isinstance(state_dict, Mapping):
            raise InvalidInputError(f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}")
        targets: dict[str, tuple[Module, str, bool]] = {}
        for mprefix, mod in self.named_modules():
            for name in mod._parameters:
                targets[f"{mprefix}.{name}" if mprefix else name] = (mod, name, True)
            for name in mod._buffers:
                targets[f"{mprefix}.{name}" if mprefix else name] = (mod, name, False)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise StateDictError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        staged: list[tuple[Module, str, bool, np.ndarray]] = []
        for key, (mod, name, is_param) in targets.items():
            if key not in state_dict:
                continue
            value = _to_numpy(state_dict[key])
            current = mod._parameters[name].data if is_param else mod._buffers[name]
            if value.shape != current.shape:
                if value.size == current.size and value.size == 1:
                    value = value.reshape(current.shape)
                else:
                    raise StateDictError(
                        f"{type(self).__name__}.load_state_dict: '{key}' has shape {value.shape}, "
                        f"expected {current.shape}"
                    )
            if value.dtype.kind not in "fiub":
                raise StateDictError(f"'{key}' is not numeric (dtype {value.dtype})")
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise StateDictError(f"'{key}' contains NaN or Inf")
            staged.append((mod, name, is_param, value))
        for mod, name, is_param, value in staged:
            if is_param:
                p = mod._parameters[name]
                p.data = np.ascontiguousarray(value.astype(p.data.dtype))
            else:
                cur = mod._buffers[name]
                mod._set_buffer(name, np.ascontiguousarray(value.astype(cur.dtype)))
        self._after_load()
        return self

    def _after_load(self) -> None:
        """Hook for layers that derive state from parameters (called on every sub-module)."""
        for mod in self._modules.values():
            mod._after_load()

    # -- calling ------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, mod in self._modules.items():
            sub = repr(mod).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
