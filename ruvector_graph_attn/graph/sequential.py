"""GraphSequential: a chain of graph layers and ordinary modules with one backward pass.

Graph layers (any module whose ``forward`` takes an ``edge_index`` argument, or whose class
sets ``is_graph_layer = True``) are called as ``layer(x, edge_index[, edge_attr])``; every
other module as ``module(x)``. Children are named ``"0"``, ``"1"`` ... so parameter names
are those of ``torch.nn.Sequential`` / ``ModuleList`` (``0.lin.weight``, ``2.att_src`` ...).
"""
from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

from ..errors import InvalidInputError, NotFittedError
from ..nn.layers import has_parameters, named_children, run_backward
from ..nn.module import Module
from ..validation import check_finite, check_int, trusted_arrays

__all__ = ["GraphSequential", "is_graph_layer", "uses_edge_attr"]


def is_graph_layer(module: Any) -> bool:
    """True when ``module`` consumes ``(x, edge_index, ...)``."""
    return _is_graph_type(type(module))


@lru_cache(maxsize=None)
def _is_graph_type(cls: type) -> bool:
    flag = getattr(cls, "is_graph_layer", None)
    if flag is not None:
        return bool(flag)
    fwd = getattr(cls, "forward", None)
    if fwd is None:
        return False
    try:
        return "edge_index" in inspect.signature(fwd).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False


def uses_edge_attr(module: Any) -> bool:
    """True when a graph layer consumes edge features (GINE always; layers with ``edge_dim`` set)."""
    if isinstance(module, GraphSequential):
        return any(uses_edge_attr(m) for m in module)
    if type(module).__name__ == "GINEConv":
        return True
    return getattr(module, "edge_dim", None) is not None


class GraphSequential(Module):
    """``GraphSequential([layer, module, ...])`` (or ``GraphSequential(layer, module, ...)``, or an
    ``OrderedDict`` of names to modules).

    ``model(x, edge_index, edge_attr=None)`` runs the chain; ``model.backward(grad_out)``
    runs every child's ``backward`` in reverse and returns the gradient for ``x``, or
    ``(grad_x, grad_edge_attr)`` when edge features were passed to a layer that uses them
    (the edge-feature gradients of all such layers are summed).

    ``model.backward(grad_out, need_input_grad=False)`` (what the trainers use) accumulates
    the same parameter gradients without computing any gradient for the model's inputs:
    the first child holding parameters is asked not to compute its input gradient, the
    parameter-free children before it (dropout on the input ...) are not run, and ``None``
    is returned (``(None, None)`` when edge features were used). For a first layer with
    wide input features this skips the largest products of the backward pass, as autograd
    does for inputs that do not require a gradient.
    """

    is_graph_layer = True

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        items = named_children(modules, "GraphSequential")
        if not items:
            raise InvalidInputError("GraphSequential needs at least one module")
        for name, mod in items:
            setattr(self, name, mod)
        object.__setattr__(self, "_edge_used", None)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int) -> Module:
        mods = list(self._modules.values())
        check_int(idx, "GraphSequential index")
        if not -len(mods) <= int(idx) < len(mods):
            raise IndexError(f"GraphSequential index {idx} out of range for {len(mods)} modules")
        return mods[int(idx)]

    def forward(self, x: Any, edge_index: Any = None, edge_attr: Any = None) -> np.ndarray:
        # user input is scanned for NaN/Inf once here; the children trust the tensors they pass on
        check_finite(x, "x")
        if edge_attr is not None:
            check_finite(edge_attr, "edge_attr")
        with trusted_arrays():
            return self._forward(x, edge_index, edge_attr)

    def _forward(self, x: Any, edge_index: Any, edge_attr: Any) -> np.ndarray:
        used = []
        has_graph = False
        for mod in self._modules.values():
            if is_graph_layer(mod):
                has_graph = True
                if edge_index is None:
                    raise InvalidInputError(
                        f"GraphSequential contains the graph layer {type(mod).__name__}; pass edge_index")
                if edge_attr is not None and uses_edge_attr(mod):
                    x = mod(x, edge_index, edge_attr)
                    used.append(True)
                else:
                    x = mod(x, edge_index)
                    used.append(False)
            else:
                x = mod(x)
                used.append(False)
            if isinstance(x, tuple):
                raise InvalidInputError(
                    f"{type(mod).__name__} returned a tuple inside GraphSequential; call it with its default outputs")
        if edge_attr is not None and not any(used) and has_graph:
            raise InvalidInputError("edge_attr was given but no layer of this GraphSequential uses edge features")
        object.__setattr__(self, "_edge_used", used)
        return x

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> Any:
        check_finite(grad_output, "grad_output")
        with trusted_arrays():
            return self._backward(grad_output, need_input_grad)

    def _backward(self, grad_output: Any, need_input_grad: bool) -> Any:
        used = self._edge_used
        if used is None:
            raise NotFittedError("GraphSequential.backward called before forward")
        mods = list(self._modules.values())
        stop = 0  # children [0, stop) are not run when no input gradient is wanted
        if not need_input_grad:
            stop = next((i for i, m in enumerate(mods) if has_parameters(m)), len(mods))
        g = grad_output
        g_edge = None
        for i in range(len(mods) - 1, stop - 1, -1):
            mod, u = mods[i], used[i]
            if i == stop and not need_input_grad:
                run_backward(mod, g, need_input_grad=False)  # parameter gradients only
                break
            out = mod.backward(g)
            if u:
                if not isinstance(out, tuple):
                    raise InvalidInputError(f"{type(mod).__name__}.backward did not return an edge-feature gradient")
                g, ge = out[0], out[1]
                if ge is not None:
                    g_edge = ge.copy() if g_edge is None else g_edge + ge
            else:
                g = out[0] if isinstance(out, tuple) else out
        if not need_input_grad:
            return (None, None) if any(used) else None
        return (g, g_edge) if any(used) else g
