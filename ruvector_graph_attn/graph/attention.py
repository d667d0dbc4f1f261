"""The ``GraphAttention`` interface: scaled dot-product attention whose
pattern is a graph instead of "every key".

:class:`GraphAttention` ``(dim, edge_dim=None, scale=None)``:

* ``forward_with_edges(query, keys, values, edge_index, edge_attr=None)``: query row
  ``i`` attends over the keys ``j`` of its in-edges ``j -> i`` (``edge_index[0]`` indexes
  ``keys``, ``edge_index[1]`` indexes the query rows):
  ``s_e = q_i . k_j / sqrt(dim) (+ b_e)``, ``alpha = softmax over the in-edges of i``,
  ``out_i = sum_e alpha_e v_j``. The edge bias ``b_e`` is ``edge_attr`` itself when it is
  1-D ``[E]``, or ``lin_edge(edge_attr)`` (a learned ``Linear(edge_dim, 1, bias=False)``,
  state_dict name ``lin_edge.weight``) when it is ``[E, edge_dim]``. Duplicate edges are
  separate terms; a query row without in-edges gets 0. A 1-D query is the query of row
  ``target`` (default 0) and returns ``[C]``.
* ``forward_neighborhood(node_idx, node_features, edge_index)``: node ``i`` (or each of
  an array of nodes) attends over its in-neighbours, ``q = x_i``, ``K = V = x``.
* ``forward_k_hop(node_idx, node_features, edge_index, k)``: node ``i`` attends over the
  distinct nodes within ``k`` in-hops, itself included (the node set of PyG's
  ``k_hop_subgraph`` with ``flow="source_to_target"``), found by CSR frontier expansion.
* ``forward`` / ``forward_batch``: the base trait, attention over all keys (dense, BLAS).
* ``attention_weights()``: ``(edge_index_used[2, E'], alpha[E'])`` of the last graph call
  (for the neighbourhood calls, row 1 is the position in ``node_idx``).

Scores, per-target softmax and aggregation run in one Numba pass over a CSR of the edges
by target (O(E (D + C)); nothing is N x N).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.edge_attention import edge_attention_forward, khop_members
from ..kernels.segment import (
    csr_from_index, segment_softmax_backward, weighted_aggregate, weighted_aggregate_backward_alpha,
    weighted_aggregate_backward_x,
)
from ..nn.layers import Linear
from ..nn.module import Module
from ..validation import as_float_array, as_index_array, attention_inputs, check_positive_int
from ..validation import safe_ndim
from .utils import build_csr, validate_edge_index

__all__ = ["GraphAttention", "EdgeAttention"]


class GraphAttention(Module):
    """Dot-product attention over graph edges (the ``GraphAttention`` interface)."""

    def __init__(self, dim: int, edge_dim: int | None = None, scale: float | None = None, rng: Any = None) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        if scale is None:
            scale = 1.0 / math.sqrt(self.dim)
        s = float(scale)
        if not (s > 0 and math.isfinite(s)):
            raise InvalidInputError(f"scale must be a positive finite number, got {scale}")
        self.scale = s
        self.edge_dim = None if edge_dim is None else check_positive_int(edge_dim, "edge_dim")
        if self.edge_dim is not None:
            self.lin_edge = Linear(self.edge_dim, 1, bias=False, rng=rng)
        object.__setattr__(self, "_last", None)
        object.__setattr__(self, "_last_dense", None)
        object.__setattr__(self, "_cache", None)

    # -- base trait: dense attention over all keys ----------------------------------------
    def forward(self, query: Any, keys: Any, values: Any) -> np.ndarray:
        q, k, v = attention_inputs(query, keys, values, max_keys=None)
        out = self.forward_batch(q[None, :], k, v)[0]
        object.__setattr__(self, "_cache", self._cache + ("single",))
        return out

    def forward_batch(self, queries: Any, keys: Any, values: Any) -> np.ndarray:
        q, k, v = attention_inputs(queries, keys, values, max_keys=None, query_ndim=2)
        check_dim_ = k.shape[1]
        if check_dim_ != self.dim:
            raise DimensionMismatchError(self.dim, check_dim_, "key dimension")
        s = (q @ k.T) * q.dtype.type(self.scale)
        s -= s.max(axis=1, keepdims=True)
        w = np.exp(s)
        w /= w.sum(axis=1, keepdims=True)
        object.__setattr__(self, "_last_dense", w)
        object.__setattr__(self, "_last", None)
        object.__setattr__(self, "_cache", ("dense", q, k, v, w))
        return w @ v

    def attention_weights(self) -> Any:
        """Last weights: ``(edge_index_used, alpha[E'])`` after a graph call, ``[B, N]``
        after ``forward``/``forward_batch``, ``None`` before any call."""
        if self._last is not None:
            return self._last
        return self._last_dense

    # -- graph calls ---------------------------------------------------------------------
    def _edge_bias(self, edge_attr: Any, num_edges: int, dtype: np.dtype) -> np.ndarray:
        if edge_attr is None:
            return np.zeros(0, dtype=dtype)
        ea = as_float_array(edge_attr, "edge_attr", ndim=(1, 2), allow_empty=True)
        if ea.shape[0] != num_edges:
            raise DimensionMismatchError(num_edges, ea.shape[0], "edge_attr rows (must equal the number of edges)")
        if ea.ndim == 1:
            return np.ascontiguousarray(ea, dtype=dtype)
        if self.edge_dim is None:
            raise InvalidInputError(
                "edge_attr has shape [E, D]; construct GraphAttention(dim, edge_dim=D) to learn the "
                "edge bias, or pass a 1-D [E] bias")
        if ea.shape[1] != self.edge_dim:
            raise DimensionMismatchError(self.edge_dim, ea.shape[1], "edge_attr features (edge_dim)")
        return np.ascontiguousarray(self.lin_edge(ea)[:, 0], dtype=dtype)

    @staticmethod
    def _edge_attr_kind(edge_attr: Any) -> str | None:
        if edge_attr is None:
            return None
        return "bias" if np.ndim(edge_attr) == 1 else "features"

    def _attend(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, src: np.ndarray, dst: np.ndarray,
                bias: np.ndarray) -> np.ndarray:
        if k.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, k.shape[1], "key dimension")
        dst = np.ascontiguousarray(dst, dtype=np.int64)
        src = np.ascontiguousarray(src, dtype=np.int64)
        indptr, perm = csr_from_index(dst, q.shape[0])
        col = np.ascontiguousarray(src[perm])
        out, alpha = edge_attention_forward(q, k, v, bias, indptr, perm, col, self.scale)
        object.__setattr__(self, "_last", (np.stack([src, dst]), alpha))
        object.__setattr__(self, "_edge_cache", (q, k, v, src, dst, indptr, perm, col, alpha))
        return out

    def forward_with_edges(self, query: Any, keys: Any, values: Any, edge_index: Any, edge_attr: Any = None,
                           target: int = 0) -> np.ndarray:
        """Query row ``i`` attends over the keys ``j`` of the edges ``j -> i``.

        ``query`` ``[M, D]`` (one row per target; ``edge_index[1] < M``) -> ``[M, C]``; or ``[D]``,
        the query of row ``target`` among ``N`` = number of keys rows -> ``[C]``."""
        single = safe_ndim(query) == 1
        q, k, v = attention_inputs(query, keys, values, max_keys=None, query_ndim=1 if single else 2)
        n = k.shape[0]
        if single:
            t = check_positive_int(target, "target", allow_zero=True)
            if t >= n:
                raise InvalidInputError(f"target {t} is out of range for {n} nodes")
            ei = validate_edge_index(edge_index, n)
            keep = ei[1] == t
            bias = self._edge_bias(edge_attr, ei.shape[1], q.dtype)
            src = ei[0][keep]
            out = self._attend(q[None, :], k, v, src, np.zeros(src.shape[0], dtype=np.int64),
                               bias[keep] if bias.size else bias)
            object.__setattr__(self, "_last", (np.stack([src, np.full(src.shape[0], t)]), self._last[1]))
            object.__setattr__(self, "_cache", ("edges", True, keep, self._edge_attr_kind(edge_attr), ei.shape[1]))
            return out[0]
        m = q.shape[0]
        ei = as_index_array(edge_index, "edge_index", ndim=2) if np.ndim(edge_index) == 2 else None
        if ei is None or ei.shape[0] != 2:
            raise InvalidInputError(f"edge_index must have shape [2, E], got {np.shape(edge_index)}")
        if ei.size:
            if ei.min() < 0:
                raise InvalidInputError("edge_index contains a negative node index")
            if ei[0].max() >= n:
                raise InvalidInputError(f"edge_index sources reference key {int(ei[0].max())} but there are {n} keys")
            if ei[1].max() >= m:
                raise InvalidInputError(
                    f"edge_index targets reference query row {int(ei[1].max())} but there are {m} queries")
        bias = self._edge_bias(edge_attr, ei.shape[1], q.dtype)
        out = self._attend(q, k, v, ei[0], ei[1], bias)
        object.__setattr__(self, "_cache", ("edges", False, None, self._edge_attr_kind(edge_attr), ei.shape[1]))
        return out

    def _nodes(self, node_idx: Any, n: int) -> tuple[np.ndarray, bool]:
        single = np.ndim(node_idx) == 0
        idx = as_index_array(np.atleast_1d(np.asarray(node_idx)), "node_idx", ndim=1, allow_empty=False)
        if idx.min() < 0 or idx.max() >= n:
            bad = idx[(idx < 0) | (idx >= n)][0]
            raise InvalidInputError(f"node_idx {int(bad)} is out of range for {n} nodes")
        return idx, single

    def forward_neighborhood(self, node_idx: Any, node_features: Any, edge_index: Any) -> np.ndarray:
        """Node ``i`` attends over its in-neighbours (one term per in-edge): ``[D]`` for an
        int ``node_idx``, ``[B, D]`` for an array. No in-edges -> 0."""
        x = as_float_array(node_features, "node_features", ndim=2)
        n = x.shape[0]
        nodes, single = self._nodes(node_idx, n)
        ei = validate_edge_index(edge_index, n)
        csr = build_csr(ei, n, by="target")
        starts = csr.indptr[nodes]
        counts = csr.indptr[nodes + 1] - starts
        owner = np.repeat(np.arange(nodes.shape[0], dtype=np.int64), counts)
        offs = np.arange(owner.shape[0], dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        src = csr.col[np.repeat(starts, counts) + offs]
        out = self._attend(np.ascontiguousarray(x[nodes]), x, x, src, owner, np.zeros(0, dtype=x.dtype))
        object.__setattr__(self, "_cache", ("nodes", nodes, single, n))
        return out[0] if single else out

    def forward_k_hop(self, node_idx: Any, node_features: Any, edge_index: Any, k: int) -> np.ndarray:
        """Node ``i`` attends over the distinct nodes within ``k`` in-hops (itself included):
        ``[D]`` for an int ``node_idx``, ``[B, D]`` for an array."""
        x = as_float_array(node_features, "node_features", ndim=2)
        n = x.shape[0]
        hops = check_positive_int(k, "k", allow_zero=True)
        nodes, single = self._nodes(node_idx, n)
        ei = validate_edge_index(edge_index, n)
        csr = build_csr(ei, n, by="target")
        owner, member = khop_members(csr.indptr, csr.col, nodes, hops, n)
        out = self._attend(np.ascontiguousarray(x[nodes]), x, x, member, owner, np.zeros(0, dtype=x.dtype))
        object.__setattr__(self, "_cache", ("nodes", nodes, single, n))
        return out[0] if single else out

    # -- backward ------------------------------------------------------------------------
    def _edge_backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Gradients of the last edge attention for ``grad_out[M, C]``:
        ``(grad_q[M, D], grad_k[N, D], grad_v[N, C], grad_scores[E'])``."""
        q, k, v, src, dst, indptr, perm, col, alpha = self._edge_cache
        g = np.ascontiguousarray(g, dtype=q.dtype)
        a2 = np.ascontiguousarray(alpha[:, None])
        g_alpha = weighted_aggregate_backward_alpha(g[:, None, :], v[:, None, :], indptr, perm, col)
        g_s = segment_softmax_backward(a2, g_alpha, indptr, perm)               # [E', 1]
        g_dot = np.ascontiguousarray(g_s * q.dtype.type(self.scale))
        grad_q = weighted_aggregate(g_dot, k[:, None, :], indptr, perm, col)[:, 0, :]
        s_indptr, s_perm = csr_from_index(src, k.shape[0])
        s_col = np.ascontiguousarray(dst[s_perm])
        grad_k = weighted_aggregate_backward_x(q[:, None, :], g_dot, s_indptr, s_perm, s_col, k.shape[0])[:, 0, :]
        grad_v = weighted_aggregate_backward_x(g[:, None, :], a2, s_indptr, s_perm, s_col, k.shape[0])[:, 0, :]
        return grad_q, grad_k, grad_v, g_s[:, 0]

    def backward(self, grad_output: Any) -> Any:
        """Gradient of the last call for ``grad_output`` (shaped like its output).

        * ``forward_with_edges`` -> ``(grad_query, grad_keys, grad_values, grad_edge_attr)``
          (``grad_edge_attr`` is ``None`` when no ``edge_attr`` was given; ``lin_edge.weight``
          accumulates its gradient);
        * ``forward_neighborhood`` / ``forward_k_hop`` -> ``grad_node_features [N, D]``;
        * ``forward`` / ``forward_batch`` -> ``(grad_query, grad_keys, grad_values)``.
        """
        if self._cache is None:
            raise NotFittedError("GraphAttention.backward called before a forward call")
        kind = self._cache[0]
        g = as_float_array(grad_output, "grad_output", ndim=(1, 2))
        if kind == "dense":
            _, q, k, v, w = self._cache[:5]
            single = len(self._cache) > 5
            want = (v.shape[1],) if single else (q.shape[0], v.shape[1])
            if g.shape != want:
                raise DimensionMismatchError(want, g.shape, "GraphAttention.backward grad_output shape")
            g2 = g[None, :] if single else g
            grad_v = w.T @ g2
            g_w = g2 @ v.T
            g_s = w * (g_w - (w * g_w).sum(axis=1, keepdims=True)) * self.scale
            grad_q, grad_k = g_s @ k, g_s.T @ q
            return (grad_q[0] if single else grad_q), grad_k, grad_v
        q, k, v = self._edge_cache[:3]
        if kind == "edges":
            _, single, keep, ea_kind, num_edges = self._cache
            want = (v.shape[1],) if single else (q.shape[0], v.shape[1])
            if g.shape != want:
                raise DimensionMismatchError(want, g.shape, "GraphAttention.backward grad_output shape")
            grad_q, grad_k, grad_v, g_s = self._edge_backward(g[None, :] if single else g)
            if single:
                grad_q = grad_q[0]
                full = np.zeros(num_edges, dtype=g_s.dtype)
                full[keep] = g_s
                g_s = full
            grad_ea = None
            if ea_kind == "bias":
                grad_ea = g_s
            elif ea_kind == "features":
                grad_ea = self.lin_edge.backward(g_s[:, None])
            return grad_q, grad_k, grad_v, grad_ea
        _, nodes, single, n = self._cache
        want = (v.shape[1],) if single else (nodes.shape[0], v.shape[1])
        if g.shape != want:
            raise DimensionMismatchError(want, g.shape, "GraphAttention.backward grad_output shape")
        grad_q, grad_k, grad_v, _ = self._edge_backward(g[None, :] if single else g)
        grad_x = grad_k + grad_v
        np.add.at(grad_x, nodes, grad_q)
        return grad_x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, edge_dim={self.edge_dim}, scale={self.scale:.6g}"


#: another name for the same mechanism
EdgeAttention = GraphAttention
