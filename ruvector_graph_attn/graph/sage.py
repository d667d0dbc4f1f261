"""SAGEConv (Hamilton et al. 2017) with PyTorch Geometric semantics and parameter names.

    x_j~  = relu(lin(x_j))                         only when project=True
    a_i   = AGG_{j -> i} x_j~                      mean | max | sum, over in-edges
    x_i'  = lin_l(a_i) + lin_r(x_i)                lin_l carries the bias, lin_r has none;
                                                   the root term only when root_weight
    x_i'  = x_i' / max(||x_i'||_2, 1e-12)          only when normalize=True

Names: ``lin.weight``, ``lin.bias`` (project), ``lin_l.weight``, ``lin_l.bias`` (bias),
``lin_r.weight`` (root_weight). Messages flow ``edge_index[0] -> edge_index[1]``;
duplicate edges are separate messages; a node without in-edges aggregates 0 (for all
three reductions, as PyG). The root term uses the *unprojected* features, as PyG.

Aggregation runs on the Numba scatter kernels over a CSR by target indexed directly
by source node (no ``[E, F]`` message array); the backward pass uses a CSR by source.
Gradient of ``max`` goes to the first maximal message in CSR order (torch_scatter's
convention; duplicate copies of the same edge are the same node, so this is exact).
``backward(grad_out, need_input_grad=False)`` accumulates the parameter gradients only
(no ``grad @ W`` products for ``x``, no scatter back to the sources) and returns ``None``.
Forward and backward run under ``graph.utils.kernel_threads`` (serial Numba kernels on
small graphs, OpenBLAS on one thread during the call).

Mean and sum commute with the linear maps, so when ``out_channels <= in_channels`` (and
``project=False``) the layer projects first: the BLAS products ``x W_l^T`` and ``x W_r^T``
(two contiguous ``[N, out]`` arrays), and one fused kernel (``kernels.aggregate.sage_combine``)
aggregates the narrow left one, adds the root one and the bias. The backward pass scatters the
``out``-wide gradient back to the sources (``scaled_transpose_sum``) and gets both weight
gradients from one product ``[g_l, g]^T x``. Same function, fewer and narrower passes;
float results differ from the aggregate-first order by rounding only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.aggregate import sage_combine, scaled_transpose_sum
from ..kernels.segment import scatter_max, scatter_mean, scatter_sum
from ..nn.layers import Linear
from ..nn.module import Module
from ..validation import as_float_array, check_positive_int
from ..validation import check_finite_result
from .utils import build_csr, kernel_threads, num_edges_hint, validate_edge_index

__all__ = ["SAGEConv"]

_AGGRS = ("mean", "max", "sum", "add")
_NORM_EPS = 1e-12


class SAGEConv(Module):
    """``SAGEConv(in_channels, out_channels, aggr="mean", normalize=False, root_weight=True,
    project=False, bias=True)``; ``layer(x, edge_index)`` -> ``[N, out_channels]``;
    ``layer.backward(grad_out, need_input_grad=True)`` -> ``grad_x`` (or ``None`` when not
    needed; parameter gradients accumulated either way)."""

    def __init__(self, in_channels: int, out_channels: int, aggr: str = "mean", normalize: bool = False,
                 root_weight: bool = True, project: bool = False, bias: bool = True, rng: Any = None) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        if aggr not in _AGGRS:
            raise InvalidInputError(f"SAGEConv aggr must be one of 'mean', 'max', 'sum', got {aggr!r}")
        self.aggr = "sum" if aggr == "add" else aggr
        self.normalize = bool(normalize)
        self.root_weight = bool(root_weight)
        self.project = bool(project)
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng) if rng is not None else None
        if self.project:
            self.lin = Linear(self.in_channels, self.in_channels, bias=True, rng=gen)
        self.lin_l = Linear(self.in_channels, self.out_channels, bias=bias, rng=gen)
        if self.root_weight:
            self.lin_r = Linear(self.in_channels, self.out_channels, bias=False, rng=gen)
        object.__setattr__(self, "_cache", None)

    def forward(self, x: Any, edge_index: Any, edge_attr: Any = None) -> np.ndarray:
        with kernel_threads(num_edges_hint(edge_index)):
            return check_finite_result(self._forward(x, edge_index, edge_attr), "SAGEConv")

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        if self._cache is None:
            raise NotFittedError("SAGEConv.backward called before forward")
        with kernel_threads(self._cache[2].shape[1]):
            return self._backward(grad_output, need_input_grad)

    def _forward(self, x: Any, edge_index: Any, edge_attr: Any) -> np.ndarray:
        if edge_attr is not None:
            raise InvalidInputError("SAGEConv does not use edge features (edge_attr)")
        x = as_float_array(x, "x", ndim=2)
        if x.shape[1] != self.in_channels:
            raise DimensionMismatchError(self.in_channels, x.shape[1], "SAGEConv input features")
        n = x.shape[0]
        ei = validate_edge_index(edge_index, n)
        csr = build_csr(ei, n, by="target")
        if self._project_first():
            return self._forward_projected(x, n, ei, csr)
        if self.project:
            pre = self.lin(x)
            xs = np.ascontiguousarray(np.maximum(pre, 0))
        else:
            pre, xs = None, x
        arg = None
        # perm = col: the kernels index the message rows by source node directly
        if self.aggr == "mean":
            a = scatter_mean(xs, csr.indptr, csr.col)
        elif self.aggr == "sum":
            a = scatter_sum(xs, csr.indptr, csr.col)
        else:
            a, arg = scatter_max(xs, csr.indptr, csr.col)  # arg holds the source node (or -1)
        out = self.lin_l(a)
        if self.root_weight:
            out = out + self.lin_r(x)
        y = out
        if self.normalize:
            norm = np.maximum(np.sqrt((out * out).sum(axis=-1, keepdims=True)), _NORM_EPS)
            y = out / norm
        else:
            norm = None
        object.__setattr__(self, "_cache", (n, xs.shape[1], ei, csr, pre, arg, y, norm))
        return y

    def _project_first(self) -> bool:
        # the fused path reads the float weight matrices directly: plain Linear layers only
        # (a quantised or factorised lin_l/lin_r from rga.compress runs the general path)
        plain = type(self.lin_l) is Linear and (not self.root_weight or type(self.lin_r) is Linear)
        return plain and self.aggr != "max" and not self.project and self.out_channels <= self.in_channels

    def _stacked_weight(self) -> np.ndarray:
        w = self.lin_l.weight.data
        return np.concatenate([w, self.lin_r.weight.data], axis=0) if self.root_weight else w

    def _forward_projected(self, x: np.ndarray, n: int, ei: np.ndarray, csr: Any) -> np.ndarray:
        o = self.out_channels
        w = self._stacked_weight()
        # two contiguous [N, o] products rather than one [N, 2o]: the kernel's random row
        # gathers then read only the left half's own cache lines and pages
        hl = x @ self.lin_l.weight.data.T
        hr = x @ self.lin_r.weight.data.T if self.root_weight else np.empty((0, o), dtype=hl.dtype)
        bias = (self.lin_l.bias.data if self.lin_l.bias is not None else np.zeros(o)).astype(hl.dtype)
        out = sage_combine(hl, hr, csr.indptr, csr.col, bias, self.aggr == "mean")
        y = out
        norm = None
        if self.normalize:
            norm = np.maximum(np.sqrt((out * out).sum(axis=-1, keepdims=True)), _NORM_EPS)
            y = out / norm
        object.__setattr__(self, "_cache", (n, x, ei, csr, "projected", w, y, norm))
        return y

    def _backward_projected(self, g: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        n, x, ei, csr, _, w, _, _ = self._cache
        o = self.out_channels
        g = np.ascontiguousarray(g)
        if self.lin_l.bias is not None:
            self.lin_l.bias.accumulate(g.sum(axis=0))
        gcat = np.empty((n, w.shape[0]), dtype=g.dtype)
        if self.aggr == "mean":
            scale = (1.0 / np.maximum(np.diff(csr.indptr), 1)).astype(g.dtype)
        else:
            scale = np.ones(n, dtype=g.dtype)
        src_csr = build_csr(ei, n, by="source")
        scaled_transpose_sum(g, src_csr.indptr, src_csr.col, scale, gcat, o)  # left half: A^T (g / deg)
        if self.root_weight:
            gcat[:, o:] = g
        dw = gcat.T @ x                                        # both weight gradients in one product
        self.lin_l.weight.accumulate(dw[:o])
        if self.root_weight:
            self.lin_r.weight.accumulate(dw[o:])
        return gcat @ w if need_input_grad else None

    def _backward(self, grad_output: Any, need_input_grad: bool) -> np.ndarray | None:
        n, _, ei, csr, pre, arg, y, norm = self._cache
        f = self.in_channels
        g = as_float_array(grad_output, "grad_output", ndim=2)
        if g.shape != y.shape:
            raise DimensionMismatchError(y.shape, g.shape, "SAGEConv.backward grad_output shape")
        if self.normalize:
            big = norm > _NORM_EPS
            proj = np.where(big, g - y * (y * g).sum(axis=-1, keepdims=True), g)
            g = proj / norm
        if isinstance(pre, str):  # projected first
            return self._backward_projected(g, need_input_grad)
        # the aggregate's gradient is needed for x, and for lin's parameters when projecting
        need_agg = need_input_grad or self.project
        g_a = self.lin_l.backward(g, need_input_grad=need_agg)
        if self.root_weight:
            grad_x = self.lin_r.backward(g, need_input_grad=need_input_grad)
        else:
            grad_x = np.zeros((n, self.in_channels), dtype=g.dtype) if need_input_grad else None
        if not need_agg:
            return None
        g_a = np.ascontiguousarray(g_a)
        if self.aggr == "max":
            valid = arg >= 0
            cols = np.broadcast_to(np.arange(f), arg.shape)
            flat = arg[valid] * f + cols[valid]
            g_xs = np.bincount(flat, weights=g_a[valid], minlength=n * f).reshape(n, f).astype(g_a.dtype)
        else:
            if self.aggr == "mean":
                cnt = np.diff(csr.indptr).astype(g_a.dtype)
                g_a = np.ascontiguousarray(g_a / np.maximum(cnt, 1)[:, None])
            src_csr = build_csr(ei, n, by="source")
            g_xs = scatter_sum(g_a, src_csr.indptr, src_csr.col)
        if self.project:
            g_pre = np.where(pre > 0, g_xs, 0).astype(g_xs.dtype, copy=False)
            g_lin = self.lin.backward(g_pre, need_input_grad=need_input_grad)
            return grad_x + g_lin if need_input_grad else None
        return grad_x + g_xs

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, aggr={self.aggr!r}, normalize={self.normalize}, "
                f"root_weight={self.root_weight}, project={self.project}")
