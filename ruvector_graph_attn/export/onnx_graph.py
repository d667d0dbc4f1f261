"""Export graph layers and models to ONNX, with ``x`` and ``edge_index`` as dynamic-size inputs.

The exported graph computes exactly what the layer's ``forward`` computes in evaluation mode
(dropout off), with standard ONNX operators only (opset 18): gathers by ``edge_index``,
``ScatterElements``/``ScatterND`` with ``max``/``add`` reductions for the per-target softmax
and the message sums, ``NonZero`` to drop self loops and ``Range`` to add them back. No
custom operator is needed, so any ONNX runtime that implements opset 18 runs the file.

Inputs of the exported model:

``x``           ``[num_nodes, in_features]`` float32
``edge_index``  ``[2, num_edges]`` int64, messages ``edge_index[0] -> edge_index[1]``
``edge_attr``   ``[num_edges, edge_dim]`` float32, only when a layer uses edge features

Output: ``out`` ``[num_nodes, out_features]`` float32.

Supported: ``GATConv``, ``GATv2Conv`` (not bipartite; ``edge_dim``, ``fill_value``,
``residual``, ``concat``, ``share_weights``), ``SAGEConv`` (``mean``, ``sum``, ``max``,
``normalize``, ``root_weight``, ``project``), ``GINConv``, ``GINEConv`` (``edge_dim`` or
not), their ``nn`` built from ``rga.nn`` modules (``Linear``, ``ReLU``, ``LeakyReLU``,
``ELU``, ``Tanh``, ``Identity``, ``Dropout``, ``LayerNorm``, ``Sequential``), and
``GraphSequential`` chains of all of these. Anything else raises
:class:`~ruvector_graph_attn.errors.ExportError` naming the module.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..errors import ExportError

__all__ = ["export_onnx", "OPSET", "uses_edge_features"]

#: the ONNX opset the exporter writes (ScatterElements with "max" needs 18)
OPSET = 18
_F32 = np.float32


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ExportError("ONNX export needs the 'onnx' package: pip install 'ruvector-graph-attn[onnx]'") from exc
    return onnx, helper, numpy_helper


class _Builder:
    """Accumulates nodes and constant initialisers of one ONNX graph."""

    def __init__(self) -> None:
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.nodes: list = []
        self.inits: list = []
        self._n = 0
        self._consts: dict = {}

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == np.float64:
            arr = arr.astype(_F32)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in self._consts:
            return self._consts[key]
        nm = self.name(hint)
        self.inits.append(self.numpy_helper.from_array(arr.copy(order="C"), nm))
        self._consts[key] = nm
        return nm

    def i64(self, *values: int) -> str:
        return self.const(np.array(values, dtype=np.int64), "i64")

    def scalar_i64(self, v: int) -> str:
        return self.const(np.array(v, dtype=np.int64), "s64")

    def op(self, op_type: str, inputs: list, hint: Optional[str] = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out

    # -- small compositions -------------------------------------------------------------------
    def matmul_t(self, x: str, weight: np.ndarray, bias: Optional[np.ndarray] = None) -> str:
        """``x @ weight.T (+ bias)`` for a ``[out, in]`` weight."""
        y = self.op("MatMul", [x, self.const(np.asarray(weight, _F32).T.copy(), "w")])
        if bias is not None:
            y = self.op("Add", [y, self.const(np.asarray(bias, _F32), "b")])
        return y

    def rows(self, data: str, idx: str) -> str:
        return self.op("Gather", [data, idx], axis=0)

    def count_rows(self, x: str) -> str:
        """``[1]`` int64: the number of rows of ``x``."""
        return self.op("Shape", [x], start=0, end=1)

    def zeros(self, shape_parts: list, value: float = 0.0) -> str:
        shape = self.op("Concat", shape_parts, axis=0)
        t = self.helper.make_tensor("v", self.onnx.TensorProto.FLOAT, [1], [float(value)])
        return self.op("ConstantOfShape", [shape], value=t)

    def scatter_rows(self, target_rows: str, idx: str, updates: str, tail: list, reduction: str,
                     init: float = 0.0) -> str:
        """``out[idx[e]] (reduce)= updates[e]`` into ``[target_rows, *tail]`` filled with ``init``."""
        base = self.zeros([target_rows] + [self.i64(t) if isinstance(t, int) else t for t in tail], init)
        if reduction == "add":
            return self.op("ScatterND", [base, self.op("Unsqueeze", [idx, self.i64(1)]), updates],
                           reduction="add")
        full_idx = self.op("Expand", [self.op("Reshape", [idx, self.i64(-1, *([1] * len(tail)))]),
                                      self.op("Shape", [updates])])
        return self.op("ScatterElements", [base, full_idx, updates], axis=0, reduction=reduction)


# ----------------------------------------------------------------------------- edges
class _Edges:
    """``src``/``dst`` (and edge features) of one graph, with self-loop handling cached."""

    def __init__(self, b: _Builder, x: str, edge_index: str, edge_attr: Optional[str]) -> None:
        self.b = b
        self.n = b.count_rows(x)                    # [1]
        self.src = b.op("Gather", [edge_index, b.scalar_i64(0)], axis=0)
        self.dst = b.op("Gather", [edge_index, b.scalar_i64(1)], axis=0)
        self.edge_attr = edge_attr
        self._loops: dict = {}

    def without_loops(self) -> tuple[str, str, str]:
        """Edges with ``src != dst`` and the positions kept (to pick their edge features)."""
        if "kept" not in self._loops:
            b = self.b
            keep = b.op("Not", [b.op("Equal", [self.src, self.dst])])
            pos = b.op("Reshape", [b.op("NonZero", [keep]), b.i64(-1)])
            self._loops["kept"] = (b.rows(self.src, pos), b.rows(self.dst, pos), pos)
        return self._loops["kept"]

    def loop_ids(self) -> str:
        b = self.b
        n = b.op("Squeeze", [self.n, b.i64(0)])
        return b.op("Range", [b.scalar_i64(0), n, b.scalar_i64(1)])

    def with_self_loops(self, layer: Any) -> tuple[str, str, Optional[str]]:
        """PyG's ``remove_self_loops`` + ``add_self_loops`` (loop features by ``fill_value``)."""
        b = self.b
        src_k, dst_k, pos = self.without_loops()
        loops = self.loop_ids()
        src = b.op("Concat", [src_k, loops], axis=0)
        dst = b.op("Concat", [dst_k, loops], axis=0)
        ea = None
        if self.edge_attr is not None and getattr(layer, "edge_dim", None) is not None:
            ea_k = b.rows(self.edge_attr, pos)
            ea = b.op("Concat", [ea_k, self._loop_attr(ea_k, dst_k, layer)], axis=0)
        return src, dst, ea

    def _loop_attr(self, ea_k: str, dst_k: str, layer: Any) -> str:
        b = self.b
        d = int(layer.edge_dim)
        fv = layer.fill_value
        if fv is None:
            return b.zeros([self.n, b.i64(d)], 1.0)
        if isinstance(fv, str):
            red = {"add": "add", "sum": "add", "mean": "add", "max": "max", "min": "min"}[fv]
            init = {"add": 0.0, "max": -np.inf, "min": np.inf}[red]
            agg = b.scatter_rows(self.n, dst_k, ea_k, [d], red, init)
            ones = b.op("Expand", [b.const(np.ones(1, _F32)), b.op("Shape", [dst_k])])
            cnt = b.op("Unsqueeze", [b.scatter_rows(self.n, dst_k, ones, [], "add"), b.i64(1)])
            if fv == "mean":
                return b.op("Div", [agg, b.op("Max", [cnt, b.const(np.ones(1, _F32))])])
            if red in ("max", "min"):   # targets without edges get 0, as PyG's scatter does
                empty = b.op("Equal", [cnt, b.const(np.zeros(1, _F32))])
                return b.op("Where", [empty, b.const(np.zeros(1, _F32)), agg])
            return agg
        val = np.broadcast_to(np.asarray(fv, _F32), (d,)).copy()
        return b.op("Add", [b.zeros([self.n, b.i64(d)]), b.const(val)])


# ----------------------------------------------------------------------------- layers
def _segment_softmax(b: _Builder, logits: str, dst: str, n: str, heads: int) -> str:
    """Softmax of ``logits [E, H]`` over the edges of each target (PyG's ``softmax``)."""
    mx = b.scatter_rows(n, dst, logits, [heads], "max", -np.inf)
    ex = b.op("Exp", [b.op("Sub", [logits, b.rows(mx, dst)])])
    den = b.scatter_rows(n, dst, ex, [heads], "add")
    den = b.op("Add", [den, b.const(np.array(1e-16, _F32))])
    return b.op("Div", [ex, b.rows(den, dst)])


def _attention_finish(b: _Builder, layer: Any, x: str, msg: str, dst: str, n: str) -> str:
    h, c = layer.heads, layer.out_channels
    out3 = b.scatter_rows(n, dst, msg, [h, c], "add")
    if layer.concat:
        out = b.op("Reshape", [out3, b.i64(-1, h * c)])
    else:
        out = b.op("ReduceMean", [out3, b.i64(1)], keepdims=0)
    if getattr(layer, "res", None) is not None:
        out = b.op("Add", [out, b.matmul_t(x, layer.res.weight.data)])
    if layer.bias is not None:
        out = b.op("Add", [out, b.const(np.asarray(layer.bias.data, _F32))])
    return out


def _lin(b: _Builder, x: str, lin: Any) -> str:
    return b.matmul_t(x, lin.weight.data, None if lin.bias is None else lin.bias.data)


def _edges_for(b: _Builder, layer: Any, e: _Edges) -> tuple[str, str, Optional[str]]:
    if layer.add_self_loops:
        return e.with_self_loops(layer)
    ea = e.edge_attr if getattr(layer, "edge_dim", None) is not None else None
    return e.src, e.dst, ea


def _check_not_bipartite(layer: Any) -> None:
    if getattr(layer, "pair_channels", False):
        raise ExportError(f"{type(layer).__name__} with (source, target) input sizes is not exportable; "
                          f"export a layer built with one in_channels")


def _gat(b: _Builder, layer: Any, x: str, e: _Edges) -> str:
    _check_not_bipartite(layer)
    h, c = layer.heads, layer.out_channels
    ps = b.op("Reshape", [_lin(b, x, layer.lin), b.i64(-1, h, c)])
    a_src = b.op("ReduceSum", [b.op("Mul", [ps, b.const(layer.att_src.data)]), b.i64(2)], keepdims=0)
    a_dst = b.op("ReduceSum", [b.op("Mul", [ps, b.const(layer.att_dst.data)]), b.i64(2)], keepdims=0)
    src, dst, ea = _edges_for(b, layer, e)
    logits = b.op("Add", [b.rows(a_src, src), b.rows(a_dst, dst)])
    if ea is not None:
        pe = b.op("Reshape", [_lin(b, ea, layer.lin_edge), b.i64(-1, h, c)])
        a_e = b.op("ReduceSum", [b.op("Mul", [pe, b.const(layer.att_edge.data)]), b.i64(2)], keepdims=0)
        logits = b.op("Add", [logits, a_e])
    logits = b.op("LeakyRelu", [logits], alpha=float(layer.negative_slope))
    alpha = _segment_softmax(b, logits, dst, e.n, h)
    msg = b.op("Mul", [b.rows(ps, src), b.op("Unsqueeze", [alpha, b.i64(2)])])
    return _attention_finish(b, layer, x, msg, dst, e.n)


def _gatv2(b: _Builder, layer: Any, x: str, e: _Edges) -> str:
    _check_not_bipartite(layer)
    h, c = layer.heads, layer.out_channels
    xl = b.op("Reshape", [_lin(b, x, layer.lin_l), b.i64(-1, h, c)])
    xr = xl if layer.share_weights else b.op("Reshape", [_lin(b, x, layer.lin_r), b.i64(-1, h, c)])
    src, dst, ea = _edges_for(b, layer, e)
    z = b.op("Add", [b.rows(xl, src), b.rows(xr, dst)])
    if ea is not None:
        z = b.op("Add", [z, b.op("Reshape", [_lin(b, ea, layer.lin_edge), b.i64(-1, h, c)])])
    z = b.op("LeakyRelu", [z], alpha=float(layer.negative_slope))
    logits = b.op("ReduceSum", [b.op("Mul", [z, b.const(layer.att.data)]), b.i64(2)], keepdims=0)
    alpha = _segment_softmax(b, logits, dst, e.n, h)
    msg = b.op("Mul", [b.rows(xl, src), b.op("Unsqueeze", [alpha, b.i64(2)])])
    return _attention_finish(b, layer, x, msg, dst, e.n)


def _sage(b: _Builder, layer: Any, x: str, e: _Edges) -> str:
    f = layer.in_channels
    xs = b.op("Relu", [_lin(b, x, layer.lin)]) if layer.project else x
    msg = b.rows(xs, e.src)
    if layer.aggr in ("mean", "sum"):
        agg = b.scatter_rows(e.n, e.dst, msg, [f], "add")
        if layer.aggr == "mean":
            ones = b.op("Expand", [b.const(np.ones(1, _F32)), b.op("Shape", [e.dst])])
            cnt = b.op("Unsqueeze", [b.scatter_rows(e.n, e.dst, ones, [], "add"), b.i64(1)])
            agg = b.op("Div", [agg, b.op("Max", [cnt, b.const(np.ones(1, _F32))])])
    else:
        agg = b.scatter_rows(e.n, e.dst, msg, [f], "max", -np.inf)
        # targets without incoming edges: 0 (the reduction's -inf start value never survives)
        agg = b.op("Where", [b.op("IsInf", [agg], detect_positive=0), b.const(np.zeros(1, _F32)), agg])
    out = _lin(b, agg, layer.lin_l)
    if layer.root_weight:
        out = b.op("Add", [out, _lin(b, x, layer.lin_r)])
    if layer.normalize:
        norm = b.op("ReduceL2", [out, b.i64(-1)], keepdims=1)
        out = b.op("Div", [out, b.op("Max", [norm, b.const(np.array(1e-12, _F32))])])
    return out


def _gin(b: _Builder, layer: Any, x: str, e: _Edges, edge_features: bool) -> str:
    msg = b.rows(x, e.src)
    if edge_features:
        if e.edge_attr is None:
            raise ExportError("GINEConv needs edge_attr: export with edge features")
        ea = e.edge_attr if layer.lin is None else _lin(b, e.edge_attr, layer.lin)
        msg = b.op("Relu", [b.op("Add", [msg, ea])])
    f = _width_of(layer)
    agg = b.scatter_rows(e.n, e.dst, msg, [f], "add")
    eps = float(np.asarray(layer._eps_value()).reshape(-1)[0])
    h = b.op("Add", [agg, b.op("Mul", [x, b.const(np.array(1.0 + eps, _F32))])])
    return _module(b, layer.nn, h, e)


def _width_of(layer: Any) -> int:
    from ..graph.gin import _infer_in_channels

    f = _infer_in_channels(layer.nn)
    if f is None:
        raise ExportError(f"cannot infer the input width of {type(layer).__name__}.nn for export")
    return int(f)


def _module(b: _Builder, mod: Any, x: str, e: Optional[_Edges]) -> str:
    from .. import nn as rnn
    from ..graph import GATConv, GATv2Conv, GINConv, GINEConv, GraphSequential, SAGEConv

    if isinstance(mod, (rnn.Sequential, GraphSequential)):
        for child in mod:
            x = _module(b, child, x, e)
        return x
    if isinstance(mod, rnn.Linear):
        return _lin(b, x, mod)
    if isinstance(mod, (rnn.Identity, rnn.Dropout)):
        return x
    if isinstance(mod, rnn.ReLU):
        return b.op("Relu", [x])
    if isinstance(mod, rnn.LeakyReLU):
        return b.op("LeakyRelu", [x], alpha=float(mod.negative_slope))
    if isinstance(mod, rnn.ELU):
        return b.op("Elu", [x], alpha=float(mod.alpha))
    if isinstance(mod, rnn.Tanh):
        return b.op("Tanh", [x])
    if isinstance(mod, rnn.LayerNorm):
        k = len(mod.normalized_shape)
        if mod.elementwise_affine:
            scale, bias = mod.weight.data, mod.bias.data
        else:
            scale, bias = np.ones(mod.normalized_shape, _F32), np.zeros(mod.normalized_shape, _F32)
        return b.op("LayerNormalization", [x, b.const(np.asarray(scale, _F32)), b.const(np.asarray(bias, _F32))],
                    axis=-k, epsilon=float(mod.eps))
    graph_layers = (GATConv, GATv2Conv, SAGEConv, GINConv, GINEConv)
    if isinstance(mod, graph_layers):
        if e is None:
            raise ExportError(f"{type(mod).__name__} inside a plain nn.Sequential cannot see edge_index")
        if isinstance(mod, GATConv):
            return _gat(b, mod, x, e)
        if isinstance(mod, GATv2Conv):
            return _gatv2(b, mod, x, e)
        if isinstance(mod, SAGEConv):
            return _sage(b, mod, x, e)
        return _gin(b, mod, x, e, isinstance(mod, GINEConv))
    raise ExportError(f"{type(mod).__name__} is not exportable to ONNX (supported: GATConv, GATv2Conv, SAGEConv, "
                      f"GINConv, GINEConv, GraphSequential and rga.nn Linear/ReLU/LeakyReLU/ELU/Tanh/Identity/"
                      f"Dropout/LayerNorm/Sequential)")


def uses_edge_features(model: Any) -> bool:
    """True when the exported model takes an ``edge_attr`` input."""
    from ..graph.sequential import uses_edge_attr

    return bool(uses_edge_attr(model))


def _in_features(model: Any) -> int:
    from ..graph import GATConv, GATv2Conv, GINConv, GINEConv, GraphSequential, SAGEConv

    first = model
    while isinstance(first, GraphSequential):
        first = first[0]
    if isinstance(first, (GATConv, GATv2Conv)):
        _check_not_bipartite(first)
        return int(first.in_src)
    if isinstance(first, SAGEConv):
        return int(first.in_channels)
    if isinstance(first, (GINConv, GINEConv)):
        return _width_of(first)
    raise ExportError(f"the first module of an exported model must be a graph layer, got {type(first).__name__}")


def _edge_dim(model: Any) -> int:
    from ..graph import GINEConv, GraphSequential

    mods = list(model) if isinstance(model, GraphSequential) else [model]
    dims = set()
    for m in mods:
        if isinstance(m, GraphSequential):
            dims.add(_edge_dim(m))
        elif isinstance(m, GINEConv):
            dims.add(int(m.lin.in_features) if m.lin is not None else _width_of(m))
        elif getattr(m, "edge_dim", None) is not None and hasattr(m, "heads"):
            dims.add(int(m.edge_dim))
    dims.discard(-1)
    if len(dims) > 1:
        raise ExportError(f"the layers of this model expect edge features of different widths {sorted(dims)}; "
                          f"one edge_attr input cannot serve them")
    return dims.pop() if dims else -1


def export_onnx(model: Any, path: Union[str, os.PathLike], *, opset: int = OPSET,
                check: bool = True) -> Path:
    """Write ``model`` (a graph layer or ``GraphSequential``) to ``path`` as an ONNX file.

    The model is exported as it computes in evaluation mode. ``check`` runs ONNX's model
    checker with shape inference on the result. Returns the path written (atomically).
    Raises :class:`ExportError` for modules that have no ONNX form.
    """
    if opset < OPSET:
        raise ExportError(f"opset must be at least {OPSET} (ScatterElements with reduction='max'), got {opset}")
    b = _Builder()
    onnx, helper = b.onnx, b.helper
    f_in = _in_features(model)
    edge_dim = _edge_dim(model) if uses_edge_features(model) else -1
    inputs = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["num_nodes", f_in]),
              helper.make_tensor_value_info("edge_index", onnx.TensorProto.INT64, [2, "num_edges"])]
    ea_name = None
    if edge_dim > 0:
        ea_name = "edge_attr"
        inputs.append(helper.make_tensor_value_info("edge_attr", onnx.TensorProto.FLOAT, ["num_edges", edge_dim]))
    e = _Edges(b, "x", "edge_index", ea_name)
    out = _module(b, model, "x", e)
    b.nodes.append(helper.make_node("Identity", [out], ["out"]))
    outputs = [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["num_nodes", None])]
    graph = helper.make_graph(b.nodes, type(model).__name__, inputs, outputs, b.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="ruvector-graph-attn")
    proto.ir_version = min(proto.ir_version, 10)
    if check:
        try:
            onnx.checker.check_model(proto, full_check=True)
        except Exception as exc:  # onnx raises its own ValidationError types
            raise ExportError(f"the exported ONNX graph failed the ONNX checker: {exc}") from exc
    from ..fileio import write_atomic

    p = Path(path)
    write_atomic(p, proto.SerializeToString())
    return p
