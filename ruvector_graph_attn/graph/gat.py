"""GATConv (Velickovic et al. 2018) and GATv2Conv (Brody et al. 2022), PyTorch Geometric
semantics, parameter names, shapes and initialisation, on the fused Numba kernels of
``kernels/segment.py``.

GATConv, per head ``h``, for an edge ``j -> i`` (``edge_index[0] -> edge_index[1]``)::

    x'_j      = W x_j                                    lin.weight [H*C, F]
    e_ij      = leaky_relu(a_src . x'_j + a_dst . x'_i (+ a_edge . W_e e_ji))
    alpha_ij  = softmax over the in-edges of i of e_ij  (then dropout in training mode)
    out_i     = sum_j alpha_ij x'_j                      heads concatenated or averaged
    out_i    += res(x_i) (residual=True) + bias

GATv2Conv::

    e_ij      = a . leaky_relu(W_l x_j + W_r x_i (+ W_e e_ji))     lin_l, lin_r (with bias), att
    out_i     = sum_j alpha_ij (W_l x_j)

Both layers, as PyG: existing self loops are removed and one loop per node is appended
(``add_self_loops=True``), the loop edge features being ``fill_value`` (``"mean"`` of the
node's incoming edge features by default); duplicate edges are separate messages; a
node without in-edges (possible with ``add_self_loops=False``) outputs only the bias.

Parameter names (``state_dict``): GATConv ``att_src``, ``att_dst`` ``[1, H, C]``,
``att_edge`` (edge_dim), ``bias``, ``lin.weight`` ``[H*C, F]`` (or ``lin_src.weight`` /
``lin_dst.weight`` when ``in_channels`` is a pair), ``lin_edge.weight`` ``[H*C, D]``,
``res.weight`` (residual). GATv2Conv ``att``, ``bias``, ``lin_l.weight``/``.bias``,
``lin_r.weight``/``.bias`` (the same arrays when ``share_weights``), ``lin_edge.weight``,
``res.weight``. Initialisation: glorot for weights and attention vectors, zeros for the
output bias, U(-1/sqrt(F), 1/sqrt(F)) for the GATv2 ``lin_l``/``lin_r`` biases.

``backward(grad_out)`` (after a forward pass) accumulates every parameter gradient and
returns ``grad_x`` -- or ``(grad_x_src, grad_x_dst)`` for a bipartite ``(x_src, x_dst)``
input -- and, when edge features entered the attention, ``(grad_x, grad_edge_attr)``.
The gradient reaches ``edge_attr`` also through reduction fill values (``"mean"`` ...).
``backward(grad_out, need_input_grad=False)`` accumulates the same parameter gradients
but skips the input gradients (the ``grad @ W`` products for ``x`` and ``edge_attr``);
it returns ``None`` in place of each of them (``(None, None)`` when a pair is returned).

Decisions where PyG is silent or torch-specific: dropout masks come from ``rng`` (an int
seed or a numpy Generator; default: ``ruvector_graph_attn.nn.seed``'s generator); a
GATConv given ``edge_attr`` without ``edge_dim`` ignores it (as PyG does); GATv2Conv
raises instead (PyG asserts). The GATConv edge term is computed as ``edge_attr @ M``
with ``M[d, h] = sum_c att_edge[h, c] W_e[h*C + c, d]`` (the same number as PyG's
``(lin_edge(e) * att_edge).sum(-1)`` without the ``[E, H*C]`` intermediate).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.dropout import dropout_scale, dropout_threshold
from ..kernels.segment import (
    csr_with_self_loops,
    gat_fused_backward_sources, gat_fused_backward_targets, gat_fused_forward,
    gatv2_backward_sources, gatv2_fused_backward_targets, gatv2_fused_forward, weighted_aggregate,
)
from ..nn.layers import _resolve_rng
from ..nn.module import Module, Parameter
from ..validation import as_float_array, check_edge_index, check_positive_int
from ..validation import check_finite_result, check_float
from .utils import build_csr, check_fill_value, kernel_threads, self_loop_attr, self_loop_attr_backward

__all__ = ["GATConv", "GATv2Conv"]


def _glorot(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
    bound = math.sqrt(6.0 / (shape[-2] + shape[-1]))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class _Lin(Module):
    """A weight-only container named like PyG's ``Linear`` (``weight [out, in]``, optional
    ``bias``); the GAT layers do the products themselves (shared ``lin_l``/``lin_r``
    must not keep one forward cache)."""

    def __init__(self, in_features: int, out_features: int, bias: bool, rng: np.random.Generator,
                 dtype: Any) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(_glorot((out_features, in_features), rng, dtype))
        if bias:
            bound = 1.0 / math.sqrt(in_features)
            self.bias = Parameter(rng.uniform(-bound, bound, size=out_features).astype(dtype))
        else:
            self.register_parameter("bias", None)

    def apply(self, x: np.ndarray, dt: np.dtype) -> np.ndarray:
        y = x @ self.weight.data.astype(dt, copy=False).T
        if self.bias is not None:
            y += self.bias.data.astype(dt, copy=False)
        return y

    def grad(self, x: np.ndarray, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Accumulate d/dW, d/db for ``y = x W^T + b`` given ``g = dL/dy``; return ``dL/dx``
        (``None`` when ``need_input_grad`` is False)."""
        self.weight.accumulate(g.T @ x)
        if self.bias is not None:
            self.bias.accumulate(g.sum(axis=0))
        if not need_input_grad:
            return None
        return g @ self.weight.data.astype(g.dtype, copy=False)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


def _channels(in_channels: Any) -> tuple[int, int, bool]:
    if isinstance(in_channels, (tuple, list)):
        if len(in_channels) != 2:
            raise InvalidInputError(f"in_channels must be an int or a (source, target) pair, got {in_channels!r}")
        return (check_positive_int(in_channels[0], "in_channels[0]"),
                check_positive_int(in_channels[1], "in_channels[1]"), True)
    c = check_positive_int(in_channels, "in_channels")
    return c, c, False


class _AttentionConvBase(Module):
    """Shared input handling (features, edges, self loops, edge features, dropout,
    head merging, residual and bias) of GATConv and GATv2Conv."""

    _name = "GAT"

    def _setup_common(self, in_channels: Any, out_channels: int, heads: int, concat: bool,
                      negative_slope: float, dropout: float, add_self_loops: bool, edge_dim: Any,
                      fill_value: Any, rng: Any) -> None:
        self.in_src, self.in_dst, self.pair_channels = _channels(in_channels)
        self.in_channels = in_channels
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.heads = check_positive_int(heads, "heads")
        self.concat = bool(concat)
        self.negative_slope = check_float(negative_slope, "negative_slope")
        self.dropout = check_float(dropout, "dropout", 0.0, 1.0)
        self.add_self_loops = bool(add_self_loops)
        self.edge_dim = None if edge_dim is None else check_positive_int(edge_dim, "edge_dim")
        self.fill_value = check_fill_value(fill_value)
        object.__setattr__(self, "_rng", _resolve_rng(rng) if rng is not None else None)
        object.__setattr__(self, "_cache", None)

    @property
    def _gen(self) -> np.random.Generator:
        return self._rng if self._rng is not None else _resolve_rng(None)

    def _param_dtype(self) -> np.dtype:
        return self.att_src.data.dtype if hasattr(self, "att_src") else self.att.data.dtype

    # -- inputs -------------------------------------------------------------------------
    def _features(self, x: Any) -> tuple[np.ndarray, np.ndarray, bool, np.dtype]:
        bip = isinstance(x, tuple)  # a pair is a tuple (as in PyG); a list is an array of rows
        if bip:
            if len(x) != 2:
                raise InvalidInputError("x must be an array [N, F] or a pair (x_src, x_dst)")
            xs = as_float_array(x[0], "x_src", ndim=2)
            xd = as_float_array(x[1], "x_dst", ndim=2)
        else:
            xs = xd = as_float_array(x, "x", ndim=2)
        if xs.shape[1] != self.in_src:
            raise DimensionMismatchError(self.in_src, xs.shape[1], f"{self._name} source feature size")
        if xd.shape[1] != self.in_dst:
            raise DimensionMismatchError(self.in_dst, xd.shape[1], f"{self._name} target feature size")
        dt = np.result_type(xs.dtype, xd.dtype, self._param_dtype())
        return xs.astype(dt, copy=False), xd.astype(dt, copy=False), bip, np.dtype(dt)

    def _edges(self, edge_index: Any, edge_attr: Any, n_src: int, n_dst: int, use_attr: bool,
               dt: np.dtype) -> dict:
        ei = check_edge_index(edge_index, max(n_src, n_dst))
        if n_src != n_dst and ei.size:
            if ei[0].max() >= n_src:
                raise InvalidInputError(f"edge_index[0] references source node {int(ei[0].max())} "
                                        f"but x_src has {n_src} rows")
            if ei[1].max() >= n_dst:
                raise InvalidInputError(f"edge_index[1] references target node {int(ei[1].max())} "
                                        f"but x_dst has {n_dst} rows")
        e_in = ei.shape[1]
        ea = ea_shape = None
        if use_attr and edge_attr is not None:
            ea = as_float_array(edge_attr, "edge_attr", ndim=(1, 2), allow_empty=True)
            ea_shape = ea.shape
            if ea.ndim == 1:
                ea = ea.reshape(-1, 1)
            if ea.shape[0] != e_in:
                raise DimensionMismatchError(e_in, ea.shape[0], "edge_attr rows (must equal the number of edges)")
            if ea.shape[1] != self.edge_dim:
                raise DimensionMismatchError(self.edge_dim, ea.shape[1], "edge_attr features (edge_dim)")
            ea = ea.astype(dt, copy=False)
        n_loops = min(n_src, n_dst) if self.add_self_loops else 0
        indptr, perm, col, keep = csr_with_self_loops(ei[0], ei[1], n_dst, n_loops, self.add_self_loops)
        removed = keep.shape[0] != e_in
        e = {"ei_in": ei, "keep": keep if removed else None, "n_loops": n_loops, "e_in": e_in,
             "ea_shape": ea_shape, "n_dst": n_dst, "csr": (indptr, perm, col)}
        ea_k = ea
        if ea is not None and removed:
            ea_k = np.ascontiguousarray(ea[keep])
        ea_used = ea_k
        if ea is not None and n_loops:
            loop_attr = self_loop_attr(self._kept_edge_index(e), ea_k, n_loops, self.fill_value, n_dst)
            ea_used = np.concatenate([ea_k, loop_attr.astype(dt, copy=False)], axis=0)
        e["ea"], e["ea_k"] = ea_used, ea_k
        return e

    @staticmethod
    def _kept_edge_index(e: dict) -> np.ndarray:
        """The caller's edges minus removed self loops (built on demand)."""
        if "ei_k" not in e:
            e["ei_k"] = e["ei_in"] if e["keep"] is None else np.ascontiguousarray(e["ei_in"][:, e["keep"]])
        return e["ei_k"]

    @classmethod
    def _used_edge_index(cls, e: dict) -> np.ndarray:
        """The edge list the layer attended over (kept edges, then the loops), built on demand."""
        if "ei" not in e:
            n_loops = e["n_loops"]
            ei_k = cls._kept_edge_index(e)
            if n_loops == 0:
                e["ei"] = ei_k
            else:
                loops = np.arange(n_loops, dtype=np.int64)
                e["ei"] = np.ascontiguousarray(np.concatenate([ei_k, np.stack([loops, loops])], axis=1))
        return e["ei"]

    def _dropout_scale(self, num_edges: int, dt: np.dtype) -> np.ndarray | None:
        if not self.training or self.dropout == 0.0:
            return None
        if self.dropout == 1.0:
            return np.zeros((num_edges, self.heads), dtype=dt)
        seed = int(self._gen.integers(0, 2**63))  # counter-based mask: one fused pass, no random array
        flat = dropout_scale(num_edges * self.heads, seed, dropout_threshold(self.dropout),
                             1.0 / (1.0 - self.dropout), dt)
        return flat.reshape(num_edges, self.heads)

    def _finish(self, out3: np.ndarray, x_dst: np.ndarray, dt: np.dtype) -> np.ndarray:
        n = out3.shape[0]
        out = out3.reshape(n, self.heads * self.out_channels) if self.concat else out3.mean(axis=1)
        out = np.ascontiguousarray(out)  # a fresh array from the kernel: safe to update in place
        if self.res is not None:
            out += x_dst @ self.res.weight.data.astype(dt, copy=False).T
        if self.bias is not None:
            out += self.bias.data.astype(dt, copy=False)
        return out

    # -- backward helpers ---------------------------------------------------------------
    def _grad_out(self, grad_output: Any, cache: dict) -> np.ndarray:
        g = as_float_array(grad_output, "grad_output", ndim=2, allow_empty=True)
        if g.shape != cache["out_shape"]:
            raise DimensionMismatchError(cache["out_shape"], g.shape, f"{self._name}.backward grad_output shape")
        g = g.astype(cache["dt"], copy=False)
        if self.bias is not None:
            self.bias.accumulate(g.sum(axis=0))
        return g

    def _grad_heads(self, g: np.ndarray) -> np.ndarray:
        n = g.shape[0]
        h, c = self.heads, self.out_channels
        if self.concat:
            return np.ascontiguousarray(g.reshape(n, h, c))
        return np.ascontiguousarray(np.broadcast_to(g[:, None, :] / g.dtype.type(h), (n, h, c)))

    def _grad_residual(self, g: np.ndarray, x_dst: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if self.res is None:
            return None
        return self.res.grad(x_dst, g, need_input_grad)

    def _grad_edge_attr(self, grad_ea_used: np.ndarray, e: dict) -> np.ndarray:
        """Map the gradient w.r.t. the used (loop-augmented) edge features back to the caller's edge_attr."""
        n_kept = e["e_in"] if e["keep"] is None else e["keep"].shape[0]
        g_k = grad_ea_used[:n_kept].copy()
        if e["n_loops"]:
            extra = self_loop_attr_backward(grad_ea_used[n_kept:], self._kept_edge_index(e), e["ea_k"], self.fill_value,
                                            e["n_dst"])
            if extra is not None:
                g_k += extra
        if e["keep"] is not None:
            full = np.zeros((e["e_in"], g_k.shape[1]), dtype=g_k.dtype)
            full[e["keep"]] = g_k
            g_k = full
        return g_k.reshape(e["ea_shape"])

    def _result(self, out: np.ndarray, e: dict, alpha_used: np.ndarray, return_attention_weights: bool) -> Any:
        if return_attention_weights:
            return out, (self._used_edge_index(e), alpha_used)
        return out

    def forward(self, x: Any, edge_index: Any, edge_attr: Any = None,
                return_attention_weights: bool = False) -> Any:
        """``(x, edge_index, edge_attr=None, return_attention_weights=False)`` -> ``out`` or
        ``(out, (edge_index_used, alpha))``; see the class docstring."""
        shape = np.shape(edge_index) if isinstance(edge_index, np.ndarray) or edge_index is None else ()
        with kernel_threads(shape[-1] if len(shape) == 2 else 0):
            return check_finite_result(self._forward(x, edge_index, edge_attr, return_attention_weights),
                                       type(self).__name__)

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> Any:
        """Accumulate parameter gradients; return ``grad_x`` (pairs for bipartite input) and,
        when edge features were used, ``(grad_x, grad_edge_attr)``. With
        ``need_input_grad=False`` the input gradients are not computed and ``None`` stands in
        for each returned array (``(None, None)`` where a pair would be returned)."""
        cache = self._need_cache()
        with kernel_threads(cache["edges"]["csr"][1].shape[0]):
            out = self._backward(grad_output, need_input_grad)
        if need_input_grad:
            return out
        return (None, None) if cache["bip"] or cache["edges"]["ea"] is not None else None

    def _need_cache(self) -> dict:
        if self._cache is None:
            raise NotFittedError(f"{self._name}.backward called before forward")
        return self._cache

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, heads={self.heads}, concat={self.concat}, "
                f"negative_slope={self.negative_slope}, dropout={self.dropout}, "
                f"add_self_loops={self.add_self_loops}, edge_dim={self.edge_dim}")


class GATConv(_AttentionConvBase):
    """``GATConv(in_channels, out_channels, heads=1, concat=True, negative_slope=0.2, dropout=0.0,
    add_self_loops=True, edge_dim=None, fill_value="mean", bias=True, residual=False, rng=None)``.

    ``layer(x, edge_index, edge_attr=None, return_attention_weights=False)`` -> ``[N, H*C]``
    (concat) or ``[N, C]``; with ``return_attention_weights=True`` ->
    ``(out, (edge_index_used, alpha[E', H]))``. ``x`` may be a tuple ``(x_src, x_dst)``
    (bipartite); a list is read as an array of rows.
    """

    _name = "GATConv"

    def __init__(self, in_channels: Any, out_channels: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 edge_dim: int | None = None, fill_value: Any = "mean", bias: bool = True,
                 residual: bool = False, rng: Any = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self._setup_common(in_channels, out_channels, heads, concat, negative_slope, dropout,
                           add_self_loops, edge_dim, fill_value, rng)
        self.residual = bool(residual)
        gen = self._gen
        h, c = self.heads, self.out_channels
        dt = np.dtype(dtype)
        self.lin = self.lin_src = self.lin_dst = None
        if not self.pair_channels:
            self.lin = _Lin(self.in_src, h * c, False, gen, dt)
        else:
            self.lin_src = _Lin(self.in_src, h * c, False, gen, dt)
            self.lin_dst = _Lin(self.in_dst, h * c, False, gen, dt)
        self.att_src = Parameter(_glorot((1, h, c), gen, dt))
        self.att_dst = Parameter(_glorot((1, h, c), gen, dt))
        if self.edge_dim is not None:
            self.lin_edge = _Lin(self.edge_dim, h * c, False, gen, dt)
            self.att_edge = Parameter(_glorot((1, h, c), gen, dt))
        else:
            self.lin_edge = None
            self.register_parameter("att_edge", None)
        total = c * (h if self.concat else 1)
        self.res = _Lin(self.in_dst, total, False, gen, dt) if self.residual else None
        if bias:
            self.bias = Parameter(np.zeros(total, dtype=dt))
        else:
            self.register_parameter("bias", None)

    def _project(self, xs: np.ndarray, xd: np.ndarray, bip: bool, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        h, c = self.heads, self.out_channels
        if self.lin is not None:
            ps = self.lin.apply(xs, dt).reshape(-1, h, c)
            pd = ps if not bip else self.lin.apply(xd, dt).reshape(-1, h, c)
        else:
            ps = self.lin_src.apply(xs, dt).reshape(-1, h, c)
            pd = self.lin_dst.apply(xd, dt).reshape(-1, h, c)
        return ps, pd

    def _forward(self, x: Any, edge_index: Any, edge_attr: Any = None,
                 return_attention_weights: bool = False) -> Any:
        xs, xd, bip, dt = self._features(x)
        h, c = self.heads, self.out_channels
        ps, pd = self._project(xs, xd, bip, dt)
        a_src, a_dst = self._node_scores(ps, pd, bip, dt)
        e = self._edges(edge_index, edge_attr, xs.shape[0], xd.shape[0], self.lin_edge is not None, dt)
        ea = e["ea"]
        m_edge = None
        if ea is not None:
            w_e = self.lin_edge.weight.data.astype(dt, copy=False).reshape(h, c, -1)
            att_e = self.att_edge.data.astype(dt, copy=False).reshape(h, c)
            m_edge = np.ascontiguousarray(np.einsum("hcd,hc->dh", w_e, att_e))
            a_edge = np.ascontiguousarray(ea @ m_edge)
        else:
            a_edge = np.zeros((0, h), dtype=dt)
        indptr, perm, col = e["csr"]
        slope = dt.type(self.negative_slope)
        scale = self._dropout_scale(perm.shape[0], dt)
        need_alpha = bool(return_attention_weights) or self.training or scale is not None
        out3, alpha = gat_fused_forward(a_src, a_dst, a_edge, ps, indptr, perm, col, slope, need_alpha)
        alpha_used = alpha if need_alpha else None
        if scale is not None:
            alpha_used = alpha * scale
            out3 = weighted_aggregate(alpha_used, ps, indptr, perm, col)
        out = self._finish(out3, xd, dt)
        object.__setattr__(self, "_cache", {
            "dt": dt, "xs": xs, "xd": xd, "bip": bip, "ps": ps, "pd": pd, "a_src": a_src, "a_dst": a_dst,
            "a_edge": a_edge, "alpha": alpha if need_alpha else None, "alpha_used": alpha_used, "scale": scale,
            "edges": e, "m_edge": m_edge, "out_shape": out.shape})
        return self._result(out, e, alpha_used, return_attention_weights)

    def _node_scores(self, ps: np.ndarray, pd: np.ndarray, bip: bool, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``a_src = <x'_j, att_src>`` and ``a_dst = <x'_i, att_dst>`` per head, as one BLAS
        product with a block-diagonal ``[H*C, 2H]`` matrix when source and target coincide."""
        h, c = self.heads, self.out_channels
        att = np.zeros((h * c, 2 * h), dtype=dt)
        rows = np.arange(h * c)
        att[rows, rows // c] = self.att_src.data.reshape(-1)
        att[rows, h + rows // c] = self.att_dst.data.reshape(-1)
        if not bip and ps is pd:
            both = ps.reshape(ps.shape[0], h * c) @ att
            return np.ascontiguousarray(both[:, :h]), np.ascontiguousarray(both[:, h:])
        a_src = ps.reshape(ps.shape[0], h * c) @ att[:, :h]
        a_dst = pd.reshape(pd.shape[0], h * c) @ att[:, h:]
        return np.ascontiguousarray(a_src), np.ascontiguousarray(a_dst)

    def _backward(self, grad_output: Any, need_input_grad: bool = True) -> Any:
        cache = self._need_cache()
        g = self._grad_out(grad_output, cache)
        dt = cache["dt"]
        xs, xd, ps, pd = cache["xs"], cache["xd"], cache["ps"], cache["pd"]
        h, c = self.heads, self.out_channels
        need = need_input_grad
        gx_res = self._grad_residual(g, xd, need)
        g3 = self._grad_heads(g)
        e = cache["edges"]
        indptr, perm, col = e["csr"]
        slope = dt.type(self.negative_slope)
        scale = cache["scale"]
        drop = scale if scale is not None else np.zeros((0, h), dtype=dt)
        alpha = cache["alpha"]
        if alpha is None:  # eval-mode forward did not keep the coefficients: recompute them
            alpha = gat_fused_forward(cache["a_src"], cache["a_dst"], cache["a_edge"], ps, indptr, perm, col,
                                      slope, True)[1]
            cache["alpha"] = cache["alpha_used"] = alpha
        grad_pre, grad_a_dst = gat_fused_backward_targets(g3, alpha, drop, ps, cache["a_src"], cache["a_dst"],
                                                          cache["a_edge"], indptr, perm, col, slope)
        scsr = build_csr(self._used_edge_index(e), xs.shape[0], by="source")
        gps, grad_a_src = gat_fused_backward_sources(g3, cache["alpha_used"], grad_pre, scsr.indptr, scsr.perm,
                                                     scsr.col, xs.shape[0])
        att_src = self.att_src.data.astype(dt, copy=False).reshape(h, c)
        att_dst = self.att_dst.data.astype(dt, copy=False).reshape(h, c)
        self.att_src.accumulate(np.einsum("nh,nhc->hc", grad_a_src, ps)[None])
        self.att_dst.accumulate(np.einsum("nh,nhc->hc", grad_a_dst, pd)[None])
        gps = gps + grad_a_src[:, :, None] * att_src
        gpd = grad_a_dst[:, :, None] * att_dst
        n_s, n_d = xs.shape[0], xd.shape[0]
        gps2 = gps.reshape(n_s, h * c)
        gpd2 = gpd.reshape(n_d, h * c)
        if self.lin is not None:
            if not cache["bip"]:
                gx_s = self.lin.grad(xs, gps2 + gpd2, need)
                gx_d = None
            else:
                gx_s = self.lin.grad(xs, gps2, need)
                gx_d = self.lin.grad(xd, gpd2, need)
        else:
            gx_s = self.lin_src.grad(xs, gps2, need)
            gx_d = self.lin_dst.grad(xd, gpd2, need)
        grad_x = self._merge_grad_x(gx_s, gx_d, gx_res, cache["bip"]) if need else None
        if e["ea"] is None:
            return grad_x
        # a_edge = ea @ M,  M[d, h] = sum_c att_edge[h, c] W_e[h*C + c, d]
        ea = e["ea"]
        m_edge = cache["m_edge"]
        g_m = ea.T @ grad_pre                                   # [D, H]
        w_e = self.lin_edge.weight.data.astype(dt, copy=False).reshape(h, c, -1)
        att_e = self.att_edge.data.astype(dt, copy=False).reshape(h, c)
        self.lin_edge.weight.accumulate((att_e[:, :, None] * g_m.T[:, None, :]).reshape(h * c, -1))
        self.att_edge.accumulate(np.einsum("hcd,dh->hc", w_e, g_m)[None])
        if not need:
            return None, None
        grad_ea_used = grad_pre @ m_edge.T
        return grad_x, self._grad_edge_attr(grad_ea_used, e)

    @staticmethod
    def _merge_grad_x(gx_s: np.ndarray, gx_d: np.ndarray | None, gx_res: np.ndarray | None, bip: bool) -> Any:
        if not bip:
            out = gx_s if gx_d is None else gx_s + gx_d
            return out if gx_res is None else out + gx_res
        if gx_res is not None:
            gx_d = gx_res if gx_d is None else gx_d + gx_res
        return gx_s, gx_d


class GATv2Conv(_AttentionConvBase):
    """``GATv2Conv(in_channels, out_channels, heads=1, concat=True, negative_slope=0.2, dropout=0.0,
    add_self_loops=True, edge_dim=None, fill_value="mean", bias=True, share_weights=False,
    residual=False, rng=None)``; called like :class:`GATConv`."""

    _name = "GATv2Conv"

    def __init__(self, in_channels: Any, out_channels: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 edge_dim: int | None = None, fill_value: Any = "mean", bias: bool = True,
                 share_weights: bool = False, residual: bool = False, rng: Any = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self._setup_common(in_channels, out_channels, heads, concat, negative_slope, dropout,
                           add_self_loops, edge_dim, fill_value, rng)
        self.share_weights = bool(share_weights)
        self.residual = bool(residual)
        if self.share_weights and self.in_src != self.in_dst:
            raise InvalidInputError("share_weights=True needs equal source and target feature sizes")
        gen = self._gen
        h, c = self.heads, self.out_channels
        dt = np.dtype(dtype)
        self.lin_l = _Lin(self.in_src, h * c, bool(bias), gen, dt)
        self.lin_r = self.lin_l if self.share_weights else _Lin(self.in_dst, h * c, bool(bias), gen, dt)
        self.att = Parameter(_glorot((1, h, c), gen, dt))
        self.lin_edge = _Lin(self.edge_dim, h * c, False, gen, dt) if self.edge_dim is not None else None
        total = c * (h if self.concat else 1)
        self.res = _Lin(self.in_dst, total, False, gen, dt) if self.residual else None
        if bias:
            self.bias = Parameter(np.zeros(total, dtype=dt))
        else:
            self.register_parameter("bias", None)

    def _forward(self, x: Any, edge_index: Any, edge_attr: Any = None,
                 return_attention_weights: bool = False) -> Any:
        if edge_attr is not None and self.lin_edge is None:
            raise InvalidInputError("GATv2Conv got edge_attr but was built without edge_dim")
        xs, xd, bip, dt = self._features(x)
        h, c = self.heads, self.out_channels
        xl = self.lin_l.apply(xs, dt).reshape(-1, h, c)
        if self.share_weights and not bip:
            xr = xl
        else:
            xr = self.lin_r.apply(xd, dt).reshape(-1, h, c)
        e = self._edges(edge_index, edge_attr, xs.shape[0], xd.shape[0], True, dt)
        if e["ea"] is not None:
            ee = np.ascontiguousarray(self.lin_edge.apply(e["ea"], dt).reshape(-1, h, c))
        else:
            ee = np.zeros((0, h, c), dtype=dt)
        att = np.ascontiguousarray(self.att.data.astype(dt, copy=False).reshape(h, c))
        indptr, perm, col = e["csr"]
        slope = dt.type(self.negative_slope)
        scale = self._dropout_scale(perm.shape[0], dt)
        need_alpha = bool(return_attention_weights) or self.training or scale is not None
        out3, alpha = gatv2_fused_forward(xl, xr, ee, att, indptr, perm, col, slope, need_alpha)
        alpha_used = alpha if need_alpha else None
        if not need_alpha:
            alpha = None
        if scale is not None:
            alpha_used = alpha * scale
            out3 = weighted_aggregate(alpha_used, xl, indptr, perm, col)
        out = self._finish(out3, xd, dt)
        object.__setattr__(self, "_cache", {
            "dt": dt, "xs": xs, "xd": xd, "bip": bip, "xl": xl, "xr": xr, "ee": ee, "att": att,
            "alpha": alpha, "alpha_used": alpha_used, "scale": scale, "edges": e,
            "out_shape": out.shape})
        return self._result(out, e, alpha_used, return_attention_weights)

    def _backward(self, grad_output: Any, need_input_grad: bool = True) -> Any:
        cache = self._need_cache()
        g = self._grad_out(grad_output, cache)
        dt = cache["dt"]
        xs, xd, xl, xr, ee, att = cache["xs"], cache["xd"], cache["xl"], cache["xr"], cache["ee"], cache["att"]
        h, c = self.heads, self.out_channels
        need = need_input_grad
        gx_res = self._grad_residual(g, xd, need)
        g3 = self._grad_heads(g)
        e = cache["edges"]
        indptr, perm, col = e["csr"]
        slope = dt.type(self.negative_slope)
        scale = cache["scale"]
        drop = scale if scale is not None else np.zeros((0, h), dtype=dt)
        want_ee = e["ea"] is not None
        if cache["alpha"] is None:  # eval-mode forward did not keep the coefficients: recompute them
            alpha = gatv2_fused_forward(xl, xr, ee, att, indptr, perm, col, slope, True)[1]
            cache["alpha"] = cache["alpha_used"] = alpha
        gs, gxr, gatt, gee = gatv2_fused_backward_targets(g3, cache["alpha"], drop, xl, xr, ee, att,
                                                           indptr, perm, col, slope, want_ee)
        scsr = build_csr(self._used_edge_index(e), xs.shape[0], by="source")
        gxl = gatv2_backward_sources(g3, cache["alpha_used"], gs, xl, xr, ee, att, scsr.indptr, scsr.perm,
                                     scsr.col, slope)
        self.att.accumulate(gatt.sum(axis=0)[None])
        n_s, n_d = xs.shape[0], xd.shape[0]
        gx_s = self.lin_l.grad(xs, gxl.reshape(n_s, h * c), need)
        gx_d = self.lin_r.grad(xd, gxr.reshape(n_d, h * c), need)
        if need:
            grad_x = GATConv._merge_grad_x(gx_s, None if not cache["bip"] else gx_d, gx_res, cache["bip"])
            if not cache["bip"]:
                grad_x = grad_x + gx_d
        else:
            grad_x = None
        if not want_ee:
            return grad_x
        gee2 = gee.reshape(gee.shape[0], h * c)
        grad_ea_used = self.lin_edge.grad(e["ea"], gee2, need)
        if not need:
            return None, None
        return grad_x, self._grad_edge_attr(grad_ea_used, e)
