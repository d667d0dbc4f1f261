"""Model compression for ``nn`` modules and graph layers.

``quantize_int8(model)``   post-training symmetric int8 quantisation of every weight matrix with
                           one scale per output channel (``scale_o = max_i |W_oi| / 127``,
                           ``q = round(W / scale)``); the quantised modules keep the int8 matrix
                           and compute ``y = (x @ q^T) * scale + b`` from it, so the weights take
                           a quarter of the float32 memory. Inference only.
``prune(model, amount)``   magnitude pruning: zero the ``amount`` fraction of each weight matrix
                           with the smallest absolute values (``scope="global"``: one threshold
                           over all matrices). Returns a :class:`PruningMask` that re-applies
                           the zeros after optimiser steps (fine-tuning keeps them pruned).
``low_rank(model, rank)``  replace each weight matrix ``W [out, in]`` with ``rank`` < min(out, in)
                           by its truncated SVD ``U_r S_r V_r^T`` stored as two factors; the
                           result is trainable (forward and backward through both factors).
``model_nbytes(model)``    bytes of the parameters and buffers (what a checkpoint stores).

The matrices quantised and factorised are those of ``rga.nn.Linear`` (which ``SAGEConv``,
``GINConv``/``GINEConv`` and their ``nn`` use) and the feature projections of the attention
layers (``GATConv.lin``, ``GATv2Conv.lin_l``/``lin_r``); their edge projections
(``lin_edge``) and residual matrices (``res``), the attention vectors (``att_src`` ...), biases
and ``eps`` stay float32. :func:`prune` covers every weight matrix, edge and residual ones too. The distillation loss lives in :mod:`ruvector_graph_attn.training.losses`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .errors import InvalidInputError, NotFittedError
from .nn.layers import Linear
from .nn.module import Module, Parameter

__all__ = ["quantize_int8", "prune", "low_rank", "model_nbytes", "PruningMask", "QuantizedLinear",
           "LowRankLinear", "quantize_weight"]


#: weight containers of the graph layers that are used only through ``apply``/``grad``
#: (edge projections and residuals are read as matrices by the layers and stay float)
_GRAPH_LINS = ("lin", "lin_src", "lin_dst", "lin_l", "lin_r")


def _weight_owners(model: Module) -> list[tuple[Module, str, Module]]:
    """``(parent, attribute, module)`` for every ``Linear`` and projection container of a graph
    layer (see ``_GRAPH_LINS``); a container shared by two attributes (GATv2's ``lin_l`` and
    ``lin_r``) is listed under both, so a replacement keeps it shared."""
    from .graph.gat import _Lin

    out = []
    for _, parent in list(model.named_modules()):
        for attr, child in list(parent._modules.items()):
            if isinstance(child, Linear) or (isinstance(child, _Lin) and attr in _GRAPH_LINS):
                out.append((parent, attr, child))
    return out


def _replace(model: Module, make: Callable[[Module], Module | None]) -> int:
    """Swap weight containers for ``make(container)`` (``None`` keeps it) in place; returns how
    many distinct containers were replaced."""
    done: dict[int, Module | None] = {}
    for parent, attr, child in _weight_owners(model):
        if id(child) not in done:
            done[id(child)] = make(child)
        new = done[id(child)]
        if new is not None:
            parent._modules[attr] = new          # in place: the child keeps its position (order)
            object.__setattr__(parent, attr, new)
    return sum(v is not None for v in done.values())


def _copy_if_needed(model: Module, inplace: bool) -> Module:
    if not isinstance(model, Module):
        raise InvalidInputError(f"model must be a rga Module, got {type(model).__name__}")
    if inplace:
        return model
    import copy

    return copy.deepcopy(model)


# ----------------------------------------------------------------------------- int8
def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8: ``(q [out, in] int8, scale [out] float32)`` with
    ``|w - q * scale| <= scale / 2`` elementwise (rows of zeros get scale 1)."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise InvalidInputError(f"quantize_weight expects a [out, in] matrix, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise InvalidInputError("cannot quantise a weight matrix that contains NaN or Inf")
    amax = np.abs(w).max(axis=1) if w.size else np.zeros(w.shape[0])
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


class QuantizedLinear(Module):
    """Inference-only ``y = (x @ q^T) * scale + b`` with an int8 ``q [out, in]`` (buffers
    ``weight`` int8 and ``weight_scale`` float32, parameter-free ``bias`` buffer)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None) -> None:
        super().__init__()
        q, s = quantize_weight(weight)
        self.out_features, self.in_features = q.shape
        self.register_buffer("weight", q)
        self.register_buffer("weight_scale", s)
        if bias is not None:
            self.register_buffer("bias", np.asarray(bias, dtype=np.float32))
        else:
            object.__setattr__(self, "bias", None)

    def dequantized(self) -> np.ndarray:
        return self.weight.astype(np.float32) * self.weight_scale[:, None]

    def apply(self, x: np.ndarray, dt: Any = np.float32) -> np.ndarray:
        """The product on the int8 matrix: the integer weights are widened once per call; the
        per-channel scale is applied to the ``[N, out]`` result."""
        y = x @ self.weight.T.astype(dt)
        y *= self.weight_scale.astype(dt, copy=False)
        if self.bias is not None:
            y += self.bias.astype(dt, copy=False)
        return y

    def forward(self, x: Any) -> np.ndarray:
        from .validation import as_float_array

        xa = as_float_array(x, "x")
        if xa.shape[-1] != self.in_features:
            from .errors import DimensionMismatchError

            raise DimensionMismatchError(self.in_features, xa.shape[-1], "QuantizedLinear input features")
        return self.apply(xa, np.result_type(xa.dtype, np.float32))

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> Any:
        raise NotFittedError("quantised modules are inference-only: train the float model, then quantise it")

    def grad(self, x: Any, g: Any, need_input_grad: bool = True) -> Any:
        raise NotFittedError("quantised modules are inference-only: train the float model, then quantise it")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_int8(model: Module, inplace: bool = False) -> Module:
    """A copy of ``model`` (or ``model`` itself with ``inplace=True``) whose weight matrices are
    int8 with per-output-channel scales; put in evaluation mode. See the module docstring."""
    out = _copy_if_needed(model, inplace)

    def make(child: Module) -> Module:
        return QuantizedLinear(child.weight.data, None if child.bias is None else child.bias.data)

    if isinstance(out, Linear):
        return make(out).eval()

    if _replace(out, make) == 0:
        raise InvalidInputError(f"{type(model).__name__} has no weight matrix to quantise")
    return out.eval()


# ----------------------------------------------------------------------------- pruning
class PruningMask:
    """The zero pattern chosen by :func:`prune`: ``masks[name]`` is a boolean keep-mask per
    weight matrix; :meth:`apply` zeroes the pruned entries again (call it after each
    optimiser step when fine-tuning a pruned model)."""

    def __init__(self, model: Module, masks: dict[str, np.ndarray]) -> None:
        self._params = dict(model.named_parameters())
        self.masks = masks

    def apply(self) -> None:
        for name, keep in self.masks.items():
            p = self._params[name]
            p.data[~keep] = 0

    def sparsity(self) -> float:
        """Fraction of the masked entries that are pruned."""
        total = sum(m.size for m in self.masks.values())
        return float(sum((~m).sum() for m in self.masks.values()) / total) if total else 0.0


def _weight_params(model: Module) -> list[tuple[str, Parameter]]:
    from .graph.gat import _Lin

    owners = {id(m) for _, m in model.named_modules() if isinstance(m, (Linear, _Lin))}
    out = []
    for prefix, mod in model.named_modules():
        if id(mod) in owners and isinstance(getattr(mod, "weight", None), Parameter):
            out.append((f"{prefix}.weight" if prefix else "weight", mod.weight))
    return out


def prune(model: Module, amount: float, scope: str = "layer") -> PruningMask:
    """Zero the ``amount`` fraction (``0 <= amount < 1``) of smallest-magnitude weights in place.

    ``scope="layer"`` prunes ``floor(amount * size)`` entries of each weight matrix;
    ``scope="global"`` ranks all weight entries together. Ties at the threshold are broken by
    position, so exactly that many entries are zeroed."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float, np.floating)) \
            or not 0.0 <= float(amount) < 1.0:
        raise InvalidInputError(f"amount must be a number in [0, 1), got {amount!r}")
    if scope not in ("layer", "global"):
        raise InvalidInputError(f"scope must be 'layer' or 'global', got {scope!r}")
    params = _weight_params(model)
    if not params:
        raise InvalidInputError(f"{type(model).__name__} has no weight matrix to prune")
    masks: dict[str, np.ndarray] = {}
    if scope == "layer":
        for name, p in params:
            masks[name] = _keep_mask(np.abs(p.data).reshape(-1), int(np.floor(amount * p.data.size))) \
                .reshape(p.data.shape)
    else:
        flat = np.concatenate([np.abs(p.data).reshape(-1) for _, p in params])
        keep = _keep_mask(flat, int(np.floor(amount * flat.size)))
        start = 0
        for name, p in params:
            masks[name] = keep[start:start + p.data.size].reshape(p.data.shape)
            start += p.data.size
    mask = PruningMask(model, masks)
    mask.apply()
    return mask


def _keep_mask(mag: np.ndarray, n_prune: int) -> np.ndarray:
    keep = np.ones(mag.shape[0], dtype=bool)
    if n_prune > 0:
        keep[np.argsort(mag, kind="stable")[:n_prune]] = False
    return keep


# ----------------------------------------------------------------------------- low rank
class LowRankLinear(Module):
    """``y = (x @ V^T) @ U^T + b`` with ``U [out, r]`` and ``V [r, in]`` (both trainable)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, rank: int) -> None:
        super().__init__()
        w = np.asarray(weight, dtype=np.float64)
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        dt = np.asarray(weight).dtype
        self.out_features, self.in_features = w.shape
        self.rank = int(rank)
        self.U = Parameter((u[:, :rank] * s[:rank]).astype(dt))
        self.V = Parameter(vt[:rank].astype(dt))
        if bias is not None:
            self.bias = Parameter(np.asarray(bias).copy())
        else:
            self.register_parameter("bias", None)
        object.__setattr__(self, "_x", None)

    def apply(self, x: np.ndarray, dt: Any = None) -> np.ndarray:
        dt = x.dtype if dt is None else dt
        y = (x @ self.V.data.astype(dt, copy=False).T) @ self.U.data.astype(dt, copy=False).T
        if self.bias is not None:
            y += self.bias.data.astype(dt, copy=False)
        return y

    def forward(self, x: Any) -> np.ndarray:
        from .validation import as_float_array

        xa = as_float_array(x, "x")
        object.__setattr__(self, "_x", xa)
        return self.apply(xa)

    def grad(self, x: np.ndarray, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """Accumulate the factor gradients for ``y = x V^T U^T + b`` from ``g = dL/dy``."""
        x2 = x.reshape(-1, self.in_features)
        g2 = g.reshape(-1, self.out_features)
        h = x2 @ self.V.data.T                                  # [N, r]
        gh = g2 @ self.U.data                                   # [N, r]
        self.U.accumulate(g2.T @ h)
        self.V.accumulate(gh.T @ x2)
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0))
        return (gh @ self.V.data).reshape(x.shape) if need_input_grad else None

    def backward(self, grad_output: Any, need_input_grad: bool = True) -> np.ndarray | None:
        if self._x is None:
            raise NotFittedError("LowRankLinear.backward called before forward")
        return self.grad(self._x, np.asarray(grad_output), need_input_grad)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def low_rank(model: Module, rank: int, inplace: bool = False) -> Module:
    """A copy of ``model`` (or ``model`` with ``inplace=True``) whose weight matrices with
    ``min(out, in) > rank`` are replaced by their best rank-``rank`` factorisation (truncated
    SVD, optimal in Frobenius norm); smaller matrices are kept."""
    from .validation import check_positive_int

    r = check_positive_int(rank, "rank")
    out = _copy_if_needed(model, inplace)

    def make(child: Module) -> Module | None:
        if min(child.weight.data.shape) > r:
            return LowRankLinear(child.weight.data, None if child.bias is None else child.bias.data, r)
        return None

    if isinstance(out, Linear) and make(out) is not None:
        return make(out)

    if _replace(out, make) == 0:
        raise InvalidInputError(f"no weight matrix of {type(model).__name__} has both sizes above rank={r}")
    return out


def model_nbytes(model: Module) -> int:
    """Bytes of the parameters and buffers of ``model`` (shared arrays counted once)."""
    seen: set[int] = set()
    total = 0
    for _, mod in model.named_modules():
        for arr in list(p.data for p in mod._parameters.values() if p is not None) + list(mod._buffers.values()):
            if id(arr) not in seen:
                seen.add(id(arr))
                total += int(np.asarray(arr).nbytes)
    return total
