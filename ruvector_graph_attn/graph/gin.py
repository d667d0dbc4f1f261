"""GINConv and GINEConv (Xu et al. 2019; Hu et al. 2020) with PyTorch Geometric semantics.

    GIN:   x_i' = nn((1 + eps) * x_i + sum_{j -> i} x_j)
    GINE:  x_i' = nn((1 + eps) * x_i + sum_{j -> i} relu(x_j + lin(e_ji)))

Messages flow ``edge_index[0] -> edge_index[1]``; every edge (duplicates and self loops
included) is one message; nodes without in-edges aggregate 0. ``eps`` is a parameter
when ``train_eps`` else a buffer, shape ``[1]``, so it is in ``state_dict`` either way
(as in PyG); ``nn`` is registered as ``nn`` (``nn.0.weight`` ...) and GINE's edge
projection as ``lin`` (``lin.weight``, ``lin.bias``) when ``edge_dim`` is given.

The sum runs on the Numba scatter kernels over a CSR of the edges by target, built
once per call (O(E + N); a large graph's CSR is reused from ``graph.utils.build_csr``'s
content-keyed cache); GIN's sum and root term are one fused pass
(``kernels.aggregate.gin_combine``); the backward pass reuses it plus a CSR by source, so it is
O(E * F) as well. ``backward(grad_out, need_input_grad=False)`` accumulates the parameter
gradients only and skips the gradient for ``x`` (and ``edge_attr``): ``nn``'s first layer
is not asked for its input gradient unless ``eps`` or GINE's ``lin`` needs it, and nothing
is scattered back to the sources. Forward and backward run under
``graph.utils.kernel_threads`` (serial Numba kernels on small graphs, OpenBLAS on one
thread during the call).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.aggregate import gin_combine
from ..kernels.segment import gather_rows, scatter_sum
from ..nn.layers import Linear, Sequential, run_backward
from ..nn.module import Module, Parameter
from ..validation import as_float_array, check_finite_result, check_float, trusted_arrays
from .utils import CSR, build_csr, kernel_threads, num_edges_hint, validate_edge_index

__all__ = ["GINConv", "GINEConv"]


def _node_features(x: Any, in_channels: int | None, layer: str) -> np.ndarray:
    x = as_float_array(x, "x", ndim=2)
    if in_channels is not None and x.shape[1] != in_channels:
        raise DimensionMismatchError(in_channels, x.shape[1], f"{layer} input features")
    return x


def _infer_in_channels(nn: Any) -> int | None:
    first = nn[0] if isinstance(nn, Sequential) and len(nn) else nn
    for attr in ("in_features", "in_channels"):
        v = getattr(first, attr, None)
        if isinstance(v, (int, np.integer)):
            return int(v)
    return None


class _GINBase(Module):
    def __init__(self, nn: Any, eps: float = 0.0, train_eps: bool = False) -> None:
        super().__init__()
        if not callable(nn):
            raise InvalidInputError(f"nn must be a Module (or callable), got {type(nn).__name__}")
        e = check_float(eps, "eps")
        self.nn = nn
        self.initial_eps = e
        self.train_eps = bool(train_eps)
        if self.train_eps:
            self.eps = Parameter(np.array([e], dtype=np.float32))
        else:
            self.register_buffer("eps", np.array([e], dtype=np.float32))
        object.__setattr__(self, "_cache", None)

    def _eps_value(self) -> np.ndarray:
        return self.eps.data if isinstance(self.eps, Parameter) else self.eps

    def _graph(self, x: np.ndarray, edge_index: Any) -> tuple[np.ndarray, CSR]:
        ei = validate_edge_index(edge_index, x.shape[0])
        return ei, build_csr(ei, x.shape[0], by="target")

    def _combine(self, x: np.ndarray, aggr: np.ndarray) -> np.ndarray:
        return aggr + (1.0 + self._eps_value()[0]) * x

    def _nn_backward(self, grad_out: Any, need_input_grad: bool = True) -> np.ndarray | None:
        if not hasattr(self.nn, "backward"):
            raise NotFittedError(f"{type(self).__name__}.nn has no backward(); use nn Modules to train")
        g = run_backward(self.nn, grad_out, need_input_grad)
        return np.asarray(g) if need_input_grad else None

    def forward(self, x: Any, edge_index: Any, edge_attr: Any = None) -> np.ndarray:
        with kernel_threads(num_edges_hint(edge_index)):
            return self._forward(x, edge_index, edge_attr)

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> Any:
        if self._cache is None:
            raise NotFittedError(f"{type(self).__name__}.backward called before forward")
        with kernel_threads(self._cache[1].shape[1]):
            return self._backward(grad_output, need_input_grad)

    def _eps_grad(self, g_h: np.ndarray, x: np.ndarray) -> None:
        if isinstance(self.eps, Parameter):
            self.eps.accumulate(np.array([np.sum(g_h * x)]))

    def extra_repr(self) -> str:
        return f"eps={self.initial_eps}, train_eps={self.train_eps}"


class GINConv(_GINBase):
    """``GINConv(nn, eps=0.0, train_eps=False)``: ``nn((1 + eps) x_i + sum_{j->i} x_j)``.

    ``nn`` maps ``[N, F]`` to ``[N, F_out]`` (typically ``rga.nn.Sequential``); to train,
    it must implement ``backward``. ``layer(x, edge_index)`` returns ``[N, F_out]``;
    ``layer.backward(grad_out, need_input_grad=True)`` returns ``grad_x`` (``None`` when not
    needed) and accumulates the gradients of ``nn`` (and ``eps`` when ``train_eps``).
    """

    def _forward(self, x: Any, edge_index: Any, edge_attr: Any) -> np.ndarray:
        if edge_attr is not None:
            raise InvalidInputError("GINConv does not use edge features (edge_attr); use GINEConv")
        x = _node_features(x, _infer_in_channels(self.nn), "GINConv")
        ei, csr = self._graph(x, edge_index)
        # (1 + eps) x_i + sum_{j->i} x_j in one pass, without materialising [E, F]
        h = gin_combine(x, csr.indptr, csr.col, float(1.0 + self._eps_value()[0]))
        object.__setattr__(self, "_cache", (x, ei))
        check_finite_result(h, type(self).__name__, "aggregated input of nn")
        with trusted_arrays():  # h is checked: nn's layers need not rescan it
            return check_finite_result(np.asarray(self.nn(h)), type(self).__name__)

    def _backward(self, grad_output: Any, need_input_grad: bool) -> np.ndarray | None:
        x, ei = self._cache
        need_h = need_input_grad or isinstance(self.eps, Parameter)
        g_h = self._nn_backward(grad_output, need_h)
        if not need_h:
            return None
        g_h = np.ascontiguousarray(g_h)
        self._eps_grad(g_h, x)
        if not need_input_grad:
            return None
        src_csr = build_csr(ei, x.shape[0], by="source")
        grad_x = (1.0 + self._eps_value()[0]) * g_h + scatter_sum(g_h, src_csr.indptr, src_csr.col)
        return grad_x


class GINEConv(_GINBase):
    """``GINEConv(nn, eps=0.0, train_eps=False, edge_dim=None)``:
    ``nn((1 + eps) x_i + sum_{j->i} relu(x_j + lin(e_ji)))`` (``lin`` only when ``edge_dim``
    is given; otherwise ``edge_attr`` must have the node feature width).

    ``edge_attr`` is required (``[E, edge_dim]``; a 1-D ``[E]`` array counts as one
    feature per edge). ``backward(grad_out, need_input_grad=True)`` returns
    ``(grad_x, grad_edge_attr)``, or ``(None, None)`` when input gradients are not needed.
    """

    def __init__(self, nn: Any, eps: float = 0.0, train_eps: bool = False, edge_dim: int | None = None,
                 rng: Any = None) -> None:
        super().__init__(nn, eps, train_eps)
        self.edge_dim = edge_dim
        if edge_dim is not None:
            in_channels = _infer_in_channels(nn)
            if in_channels is None:
                raise InvalidInputError(
                    "GINEConv could not infer the input width of nn (its first layer needs "
                    "in_features or in_channels) to build the edge projection")
            self.lin = Linear(int(edge_dim), in_channels, rng=rng)
        else:
            self.register_parameter("lin", None)

    def _forward(self, x: Any, edge_index: Any, edge_attr: Any) -> np.ndarray:
        x = _node_features(x, _infer_in_channels(self.nn), "GINEConv")
        ei, csr = self._graph(x, edge_index)
        if edge_attr is None:
            raise InvalidInputError("GINEConv needs edge_attr [E, edge_dim] (one row per edge)")
        ea = as_float_array(edge_attr, "edge_attr", ndim=(1, 2), allow_empty=True)
        was_1d = ea.ndim == 1
        if was_1d:
            ea = ea[:, None]
        if ea.shape[0] != ei.shape[1]:
            raise DimensionMismatchError(ei.shape[1], ea.shape[0], "edge_attr rows (must equal the number of edges)")
        if self.lin is not None:
            if ea.shape[1] != self.lin.in_features:
                raise DimensionMismatchError(self.lin.in_features, ea.shape[1], "GINEConv edge_attr features (edge_dim)")
            e = self.lin(ea)
        else:
            if ea.shape[1] != x.shape[1]:
                raise DimensionMismatchError(
                    x.shape[1], ea.shape[1],
                    "GINEConv edge_attr features (must equal node features, or set edge_dim)")
            e = ea
        pre = gather_rows(x, ei[0]) + e               # [E, F] per-edge messages before relu
        msg = np.ascontiguousarray(np.maximum(pre, 0))
        aggr = scatter_sum(msg, csr.indptr, csr.perm)
        h = self._combine(x, aggr)
        object.__setattr__(self, "_cache", (x, ei, csr, pre, was_1d))
        check_finite_result(h, type(self).__name__, "aggregated input of nn")
        return check_finite_result(np.asarray(self.nn(h)), type(self).__name__)

    def _backward(self, grad_output: Any, need_input_grad: bool) -> tuple[Any, Any]:
        x, ei, csr, pre, was_1d = self._cache
        need_h = need_input_grad or isinstance(self.eps, Parameter) or self.lin is not None
        g_h = self._nn_backward(grad_output, need_h)
        if not need_h:
            return None, None
        g_h = np.ascontiguousarray(g_h)
        self._eps_grad(g_h, x)
        if not need_input_grad and self.lin is None:
            return None, None
        g_msg = gather_rows(g_h, csr.index)           # grad of each message = grad of its target
        g_pre = np.ascontiguousarray(np.where(pre > 0, g_msg, 0).astype(g_msg.dtype, copy=False))
        if not need_input_grad:
            self.lin.backward(g_pre, need_input_grad=False)
            return None, None
        src_csr = build_csr(ei, x.shape[0], by="source")
        grad_x = (1.0 + self._eps_value()[0]) * g_h + scatter_sum(g_pre, src_csr.indptr, src_csr.perm)
        grad_ea = self.lin.backward(g_pre) if self.lin is not None else g_pre
        if was_1d:
            grad_ea = grad_ea[:, 0]
        return grad_x, grad_ea

    def extra_repr(self) -> str:
        return super().extra_repr() + f", edge_dim={self.edge_dim}"
