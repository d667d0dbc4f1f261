"""Subgraph readouts: per-graph pooling of node features given a batch vector.

``batch[N]`` assigns each node to a graph ``0 .. B-1`` (need not be sorted; ``None``
means one graph); ``size`` fixes ``B`` (graphs without nodes pool to 0). Every readout
returns ``(pooled[B, F], weights)`` where ``weights`` explains the result per node:

* :class:`SumPool` / :func:`global_add_pool`: ``sum_n x_n``; weights 1 per node.
* :class:`MeanPool` / :func:`global_mean_pool`: ``sum_n x_n / |graph|``; weights
  ``1 / |graph|`` per node (they sum to 1 per graph).
* :class:`MaxPool` / :func:`global_max_pool`: feature-wise maximum; weights = the share
  of the ``F`` features for which the node is the (first) maximiser (sum to 1 per graph).
* :class:`AttentionalAggregation` (alias :data:`GlobalAttentionPool`), PyG's gated
  attention readout (Li et al. 2016): ``a = softmax_graph(gate_nn(x))``,
  ``pooled = sum_n a_n * nn(x_n)`` (``nn`` optional); names ``gate_nn.*`` and ``nn.*``;
  weights ``a`` ``[N, C]`` (``C`` = gate width, 1 for a scalar gate).
* :class:`QueryAttentionPool`: ``a = softmax_graph(q_b . x_n / temperature)``,
  ``pooled_b = sum_n a_n x_n`` for a query per graph (or one shared query); weights ``a``.

All run on the Numba segment kernels over a CSR of the nodes by graph (O(N F)).
The modules cache their forward and implement ``backward(grad_pooled)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.segment import (
    csr_from_index, gather_rows, scatter_max, scatter_sum, segment_softmax, segment_softmax_backward,
)
from ..nn.module import Module
from ..validation import as_float_array, as_index_array

__all__ = [
    "global_add_pool", "global_mean_pool", "global_max_pool", "SumPool", "MeanPool", "MaxPool",
    "AttentionalAggregation", "GlobalAttentionPool", "QueryAttentionPool",
]


def _batch_groups(batch: Any, n: int, size: int | None) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Validate ``batch`` -> ``(batch, B, indptr[B+1], perm[N])`` (perm lists node ids by graph)."""
    if batch is None:
        b = np.zeros(n, dtype=np.int64)
        nb = 1 if size is None else int(size)
    else:
        b = as_index_array(batch, "batch")
        if b.shape[0] != n:
            raise DimensionMismatchError(n, b.shape[0], "batch length (one graph id per node)")
        if n and b.min() < 0:
            raise InvalidInputError(f"batch contains a negative graph id ({int(b.min())})")
        top = int(b.max()) + 1 if n else 0
        nb = top if size is None else int(size)
        if nb < top:
            raise InvalidInputError(f"batch references graph {top - 1} but size is {nb}")
    if nb < 1:
        raise InvalidInputError(f"size must be >= 1, got {nb}")
    indptr, perm = csr_from_index(b, nb)
    return b, nb, indptr, perm


def _features(x: Any) -> np.ndarray:
    x = as_float_array(x, "x", ndim=(1, 2))
    return x[:, None] if x.ndim == 1 else x


def global_add_pool(x: Any, batch: Any = None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the node features of each graph -> ``(pooled[B, F], weights[N] = 1)``."""
    return SumPool()(x, batch, size)


def global_mean_pool(x: Any, batch: Any = None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the node features of each graph -> ``(pooled[B, F], weights[N] = 1/|graph|)``."""
    return MeanPool()(x, batch, size)


def global_max_pool(x: Any, batch: Any = None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feature-wise max per graph -> ``(pooled[B, F], weights[N])`` (share of features won)."""
    return MaxPool()(x, batch, size)


class _Pool(Module):
    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_cache", None)

    def _grad(self, grad_pooled: Any, shape: tuple[int, ...]) -> np.ndarray:
        if self._cache is None:
            raise NotFittedError(f"{type(self).__name__}.backward called before forward")
        g = as_float_array(grad_pooled, "grad_pooled", ndim=2)
        if g.shape != shape:
            raise DimensionMismatchError(shape, g.shape, f"{type(self).__name__}.backward grad shape")
        return g


class SumPool(_Pool):
    """``pooled[b] = sum_{n in b} x_n``; ``backward`` -> ``grad_x[n] = grad[batch[n]]``."""

    def forward(self, x: Any, batch: Any = None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        x = _features(x)
        b, nb, indptr, perm = _batch_groups(batch, x.shape[0], size)
        out = scatter_sum(x, indptr, perm)
        object.__setattr__(self, "_cache", (b, out.shape))
        return out, np.ones(x.shape[0], dtype=x.dtype)

    def backward(self, grad_pooled: Any) -> np.ndarray:
        b, shape = self._cache if self._cache is not None else (None, None)
        g = self._grad(grad_pooled, shape)
        return gather_rows(g, b)


class MeanPool(_Pool):
    """``pooled[b] = mean_{n in b} x_n`` (0 for a graph without nodes)."""

    def forward(self, x: Any, batch: Any = None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        x = _features(x)
        b, nb, indptr, perm = _batch_groups(batch, x.shape[0], size)
        cnt = np.diff(indptr)
        inv = (1.0 / np.maximum(cnt, 1)).astype(x.dtype)
        out = scatter_sum(x, indptr, perm) * inv[:, None]
        w = inv[b]
        object.__setattr__(self, "_cache", (b, out.shape, w))
        return out, w

    def backward(self, grad_pooled: Any) -> np.ndarray:
        b, shape, w = self._cache if self._cache is not None else (None, None, None)
        g = self._grad(grad_pooled, shape)
        return gather_rows(g, b) * w[:, None]


class MaxPool(_Pool):
    """Feature-wise ``max_{n in b} x_n`` (0 for a graph without nodes); the gradient goes to
    the first maximiser in node order (torch_scatter's convention)."""

    def forward(self, x: Any, batch: Any = None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        x = _features(x)
        n, f = x.shape
        b, nb, indptr, perm = _batch_groups(batch, n, size)
        out, arg = scatter_max(x, indptr, perm)
        valid = arg >= 0
        w = (np.bincount(arg[valid], minlength=n) / f).astype(x.dtype)
        object.__setattr__(self, "_cache", (n, arg, out.shape))
        return out, w

    def backward(self, grad_pooled: Any) -> np.ndarray:
        n, arg, shape = self._cache if self._cache is not None else (None, None, None)
        g = self._grad(grad_pooled, shape)
        f = shape[1]
        valid = arg >= 0
        cols = np.broadcast_to(np.arange(f), arg.shape)
        flat = arg[valid] * f + cols[valid]
        return np.bincount(flat, weights=g[valid], minlength=n * f).reshape(n, f).astype(g.dtype)


class AttentionalAggregation(Module):
    """Gated attention readout with PyG's ``AttentionalAggregation(gate_nn, nn=None)``
    semantics and names: ``gate = gate_nn(x)`` (``[N]``, ``[N, 1]`` or ``[N, C]`` with ``C``
    equal to the feature width), softmax over the nodes of each graph per gate column,
    ``pooled[b] = sum_{n in b} gate_n * h_n`` with ``h = nn(x)`` (or ``x``).

    ``forward(x, batch=None, size=None)`` -> ``(pooled[B, F_h], weights[N, C])``;
    ``backward(grad_pooled)`` -> ``grad_x`` (and accumulates ``gate_nn`` / ``nn`` grads).
    """

    def __init__(self, gate_nn: Any, nn: Any = None) -> None:
        super().__init__()
        if not callable(gate_nn):
            raise InvalidInputError(f"gate_nn must be a Module, got {type(gate_nn).__name__}")
        if nn is not None and not callable(nn):
            raise InvalidInputError(f"nn must be a Module or None, got {type(nn).__name__}")
        self.gate_nn = gate_nn
        if nn is not None:
            self.nn = nn
        else:
            object.__setattr__(self, "nn", None)
        object.__setattr__(self, "_cache", None)

    def forward(self, x: Any, batch: Any = None, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        x = _features(x)
        n = x.shape[0]
        b, nb, indptr, perm = _batch_groups(batch, n, size)
        gate = np.asarray(self.gate_nn(x))
        gate_1d = gate.ndim == 1
        if gate_1d:
            gate = gate[:, None]
        h = np.asarray(self.nn(x)) if self.nn is not None else x
        if h.ndim == 1:
            h = h[:, None]
        if gate.ndim != 2 or gate.shape[0] != n:
            raise DimensionMismatchError((n, "C"), gate.shape, "gate_nn output shape")
        if h.shape[0] != n:
            raise DimensionMismatchError(n, h.shape[0], "nn output rows")
        if gate.shape[1] not in (1, h.shape[1]):
            raise DimensionMismatchError(h.shape[1], gate.shape[1], "gate_nn output width (1 or the feature width)")
        alpha = segment_softmax(np.ascontiguousarray(gate), indptr, perm)
        pooled = scatter_sum(np.ascontiguousarray(alpha * h), indptr, perm)
        object.__setattr__(self, "_cache", (b, indptr, perm, alpha, h, gate_1d, pooled.shape))
        return pooled, (alpha[:, 0] if gate_1d else alpha)

    def backward(self, grad_pooled: Any) -> np.ndarray:
        if self._cache is None:
            raise NotFittedError("AttentionalAggregation.backward called before forward")
        b, indptr, perm, alpha, h, gate_1d, shape = self._cache
        g = as_float_array(grad_pooled, "grad_pooled", ndim=2)
        if g.shape != shape:
            raise DimensionMismatchError(shape, g.shape, "AttentionalAggregation.backward grad shape")
        gn = gather_rows(g, b)                                   # [N, F_h]
        g_h = alpha * gn
        g_alpha = gn * h
        if alpha.shape[1] == 1:
            g_alpha = g_alpha.sum(axis=1, keepdims=True)
        g_gate = segment_softmax_backward(alpha, np.ascontiguousarray(g_alpha, dtype=alpha.dtype), indptr, perm)
        if gate_1d:
            g_gate = g_gate[:, 0]
        grad_x = np.asarray(self.gate_nn.backward(g_gate))
        if self.nn is not None:
            grad_x = grad_x + np.asarray(self.nn.backward(g_h))
        else:
            grad_x = grad_x + g_h
        return grad_x


#: alias with the older PyG name
GlobalAttentionPool = AttentionalAggregation


class QueryAttentionPool(Module):
    """Query-conditioned attention readout: for graph ``b`` with query ``q_b``,
    ``a_n = softmax_{n in b}(q_b . x_n / temperature)`` and ``pooled_b = sum_n a_n x_n``.

    ``forward(x, query, batch=None, size=None)``: ``query`` is ``[D]`` (shared by all
    graphs) or ``[B, D]`` (one per graph) -> ``(pooled[B, D], weights[N])``.
    ``backward(grad_pooled)`` -> ``(grad_x, grad_query)`` (same shape as the query given).
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        t = float(temperature)
        if not (t > 0 and np.isfinite(t)):
            raise InvalidInputError(f"temperature must be a positive finite number, got {temperature}")
        self.temperature = t
        object.__setattr__(self, "_cache", None)

    def forward(self, x: Any, query: Any, batch: Any = None, size: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        x = as_float_array(x, "x", ndim=2)
        n, d = x.shape
        q = as_float_array(query, "query", ndim=(1, 2))
        if q.shape[-1] != d:
            raise DimensionMismatchError(d, q.shape[-1], "query dimension (must equal node feature width)")
        if batch is None and size is None and q.ndim == 2:
            size = q.shape[0] if q.shape[0] >= 1 else None
        b, nb, indptr, perm = _batch_groups(batch, n, size)
        shared = q.ndim == 1
        qb = np.broadcast_to(q, (nb, d)) if shared else q
        if qb.shape[0] != nb:
            raise DimensionMismatchError(nb, qb.shape[0], "number of queries (one per graph)")
        dt = np.result_type(x.dtype, q.dtype)
        qn = gather_rows(np.ascontiguousarray(qb, dtype=dt), b)            # [N, D]
        scores = np.einsum("nd,nd->n", x, qn)[:, None] / dt.type(self.temperature)
        alpha = segment_softmax(np.ascontiguousarray(scores, dtype=dt), indptr, perm)
        pooled = scatter_sum(np.ascontiguousarray(alpha * x, dtype=dt), indptr, perm)
        object.__setattr__(self, "_cache", (x, qn, b, indptr, perm, alpha, shared, pooled.shape))
        return pooled, alpha[:, 0]

    def backward(self, grad_pooled: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            raise NotFittedError("QueryAttentionPool.backward called before forward")
        x, qn, b, indptr, perm, alpha, shared, shape = self._cache
        g = as_float_array(grad_pooled, "grad_pooled", ndim=2)
        if g.shape != shape:
            raise DimensionMismatchError(shape, g.shape, "QueryAttentionPool.backward grad shape")
        gn = gather_rows(np.ascontiguousarray(g, dtype=x.dtype), b)
        g_alpha = np.einsum("nd,nd->n", gn, x)[:, None]
        g_s = segment_softmax_backward(alpha, np.ascontiguousarray(g_alpha), indptr, perm) / self.temperature
        grad_x = alpha * gn + g_s * qn
        grad_qn = np.ascontiguousarray(g_s * x)
        grad_q = scatter_sum(grad_qn, indptr, perm)                         # per graph
        if shared:
            grad_q = grad_q.sum(axis=0)
        return grad_x, grad_q
