"""DirGNNConv: a direction-aware wrapper around a message-passing layer (Rossi et al., 2023,
"Edge Directionality Improves Learning on Heterophilic Graphs"), with PyTorch Geometric's
semantics and parameter names (``torch_geometric.nn.DirGNNConv``):

    x_in  = conv_in(x, edge_index)           aggregates over in-edges  (j -> i: i's in-neighbours)
    x_out = conv_out(x, edge_index.flip(0))  aggregates over out-edges (i -> j: i's out-neighbours)
    out   = alpha * x_out + (1 - alpha) * x_in [+ lin(x)]    the root term when root_weight

``conv_in`` and ``conv_out`` are deep copies of the wrapped layer (e.g. a
:class:`~ruvector_graph_attn.graph.SAGEConv`) with their own root term switched off
(``root_weight = False``; the copies keep their unused ``lin_r`` parameters, as PyG's do, so a
PyG state dict loads unchanged; they are frozen, ``requires_grad = False``). Names: ``conv_in.*``, ``conv_out.*``, ``lin.weight``,
``lin.bias``.

Re-ranking: with ``edge_index`` oriented ``p -> d`` ("p depends on d"), ``x_in`` of a
candidate ``d`` reads its *dependents*, ``x_out`` its dependencies, and ``lin`` its own
features. :meth:`residual_init` sets ``lin`` to the identity and the two aggregations to zero,
so an untrained layer scores exactly like the vector search and training learns what the
graph adds. The layer declares ``reads_out_edges = True``: the re-ranker's layer scorer then
passes the traversed edges in their stored orientation (never symmetrised) and
:class:`~ruvector_graph_attn.training.RerankerTrainer` samples both directions of each
scored node's neighbourhood.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..nn.layers import Linear, run_backward
from ..nn.module import Module
from ..validation import as_float_array, check_finite_result
from .utils import validate_edge_index

__all__ = ["DirGNNConv", "reads_out_edges"]


def reads_out_edges(layer: Any) -> bool:
    """True when ``layer`` (or a module inside it) tells in- from out-neighbours itself
    (declares ``reads_out_edges = True``, as :class:`DirGNNConv` does): it must get the edges
    in their stored orientation, and its computation graph spans both directions."""
    if getattr(layer, "reads_out_edges", False):
        return True
    mods = getattr(layer, "named_modules", None)
    return callable(mods) and any(getattr(m, "reads_out_edges", False) for _, m in mods())


class DirGNNConv(Module):
    """``DirGNNConv(conv, alpha=0.5, root_weight=True)``; ``layer(x, edge_index)`` ->
    ``[N, conv.out_channels]``; ``layer.backward(grad_out, need_input_grad=True)``."""

    is_graph_layer = True
    #: the layer distinguishes in- from out-neighbours (see the module docstring)
    reads_out_edges = True

    def __init__(self, conv: Module, alpha: float = 0.5, root_weight: bool = True, rng: Any = None) -> None:
        super().__init__()
        if not isinstance(conv, Module) or not hasattr(conv, "in_channels") or not hasattr(conv, "out_channels"):
            raise InvalidInputError("DirGNNConv wraps a graph layer with in_channels and out_channels "
                                    f"(e.g. SAGEConv), got {type(conv).__name__}")
        if getattr(conv, "reads_out_edges", False):
            raise InvalidInputError("DirGNNConv cannot wrap another direction-aware layer")
        try:
            a = float(alpha)
        except (TypeError, ValueError):
            raise InvalidInputError(f"alpha must be a number in [0, 1], got {alpha!r}") from None
        if not 0.0 <= a <= 1.0:
            raise InvalidInputError(f"alpha must be in [0, 1], got {alpha!r}")
        self.alpha = a
        self.root_weight = bool(root_weight)
        self.in_channels = int(conv.in_channels)
        self.out_channels = int(conv.out_channels)
        self.conv_in = copy.deepcopy(conv)
        self.conv_out = copy.deepcopy(conv)
        object.__setattr__(self, "_wrapped_flags", {k: getattr(conv, k) for k in ("add_self_loops", "root_weight")
                                                    if hasattr(conv, k)})
        for c in (self.conv_in, self.conv_out):
            if hasattr(c, "add_self_loops"):
                c.add_self_loops = False
            if hasattr(c, "root_weight"):
                c.root_weight = False
                lin_r = getattr(c, "lin_r", None)
                if lin_r is not None:  # kept for the state dict only: never used, never trained
                    for p in lin_r.parameters():
                        p.requires_grad = False
        if self.root_weight:
            self.lin = Linear(self.in_channels, self.out_channels, bias=True, rng=rng)
        object.__setattr__(self, "_n", None)

    def residual_init(self, in_scale: float = 0.0, out_scale: float = 0.0) -> "DirGNNConv":
        """``lin`` = identity (zero bias); each aggregation's ``lin_l`` = ``scale * I`` (zero
        bias; other parameters of the copies zero): with the default zeros the output starts at
        the node's own features, ``x_i + in_scale (1 - alpha) mean_in + out_scale alpha mean_out``
        in general (mean aggregation). Needs ``root_weight`` and equal in/out widths; returns
        ``self``."""
        if not self.root_weight or self.in_channels != self.out_channels:
            raise InvalidInputError("residual_init needs root_weight=True and in_channels == out_channels")
        dt = self.lin.weight.data.dtype
        self.lin.weight.data = np.eye(self.in_channels, dtype=dt)
        self.lin.bias.data = np.zeros(self.out_channels, dtype=dt)
        for c, scale in ((self.conv_in, in_scale), (self.conv_out, out_scale)):
            for p in c.parameters():
                p.data = np.zeros_like(p.data)
            lin_l = getattr(c, "lin_l", None)
            if lin_l is not None and lin_l.weight.data.shape[0] == lin_l.weight.data.shape[1]:
                lin_l.weight.data = (float(scale) * np.eye(self.in_channels)).astype(dt)
            elif scale:
                raise InvalidInputError("residual_init scales need a wrapped layer with a square lin_l (e.g. SAGEConv)")
        return self

    def wrapped_template(self) -> Module:
        """A copy of the wrapped layer as it was passed in (its own root term and self loops as
        they were), e.g. to rebuild this layer from a checkpoint."""
        c = copy.deepcopy(self.conv_in)
        for k, v in self._wrapped_flags.items():
            setattr(c, k, v)
        return c

    def forward(self, x: Any, edge_index: Any, edge_attr: Any = None) -> np.ndarray:
        if edge_attr is not None:
            raise InvalidInputError("DirGNNConv does not use edge features (edge_attr)")
        x = as_float_array(x, "x", ndim=2)
        ei = validate_edge_index(edge_index, x.shape[0])
        a = self.alpha
        # both directions always run (as in PyG, so alpha 0 or 1 still gives the unused
        # side zero gradients rather than none)
        x_in = self.conv_in(x, ei)
        x_out = self.conv_out(x, np.ascontiguousarray(ei[::-1]))
        out = a * x_out + (1.0 - a) * x_in
        if self.root_weight:
            out = out + self.lin(x)
        object.__setattr__(self, "_n", out.shape)
        return check_finite_result(out, "DirGNNConv")

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        if self._n is None:
            raise NotFittedError("DirGNNConv.backward called before forward")
        g = np.asarray(grad_output)
        if g.shape != self._n:
            raise DimensionMismatchError(self._n, g.shape, "DirGNNConv.backward grad_output shape")
        a = self.alpha
        gx = None
        parts = [run_backward(self.conv_in, (1.0 - a) * g, need_input_grad),
                 run_backward(self.conv_out, a * g, need_input_grad)]
        if self.root_weight:
            parts.append(self.lin.backward(g, need_input_grad=need_input_grad))
        if not need_input_grad:
            return None
        for p in parts:
            gx = p if gx is None else gx + p
        return gx

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, root_weight={self.root_weight}"
