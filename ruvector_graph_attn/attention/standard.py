"""Scaled dot-product attention (Vaswani et al. 2017, eq. 1) on vectors.

For queries ``Q`` [B, D], keys ``K`` [N, D] and values ``V`` [N, F]::

    S = scale * Q @ K.T                (scale = 1/sqrt(D) unless given)
    W = softmax(S) over the keys       (mask False -> weight 0)
    out = W @ V                        [B, F]

The products run on BLAS (the scale is folded into the queries, ``B x D`` multiplications
instead of ``B x N``) and the softmax on a fused in-place Numba kernel with a vectorised
exponential (:func:`ruvector_graph_attn.kernels.softmax.softmax_rows_inplace`).

Numerical safety. Finite inputs of any magnitude (tested with float32 max / 2)
give finite outputs. The fast path computes the scores directly; if any score or output is
not finite, the call is redone on a *rescaled* path: ``q`` (per row) and ``K`` are divided by
their largest absolute value so their dot products are bounded by ``D``, the row maximum is
subtracted, and only then the magnitudes are multiplied back in float64 (a product that
overflows there is ``-inf``, i.e. weight 0, which is the exact limit). Values are rescaled
the same way for the weighted sum. Nothing is clipped.

Validation without an extra pass. NaN or Inf in ``q``, ``K`` or ``V`` always reaches the
scores or the output under IEEE arithmetic (``x * NaN`` and ``0 * Inf`` are NaN), so the fast
path only checks the [B, N] scores and the [B, F] output; when one is not finite, the inputs
are checked in full and an :class:`~ruvector_graph_attn.errors.InvalidInputError` names the
offending input. (Every other check, shape, dtype, emptiness, size, runs up front.)

A query whose mask allows no key gets all-zero weights and a zero output (documented
choice; PyTorch returns NaN there, and this library never returns NaN).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..config import AttentionConfig
from ..errors import ConfigError, DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.softmax import (
    softmax_rows, softmax_rows_backward, softmax_rows_fast32, softmax_rows_fast64, softmax_rows_inplace,
    softmax_vector_fast32, softmax_vector_fast64,
)
from ..nn.module import Module
from ..validation import DEFAULT_MAX_KEYS, as_float_array, check_float, check_int, check_size


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidInputError(
            f"{name} contains NaN or Inf (first at index {tuple(int(i) for i in bad)}); expected finite values"
        )


def rescaled_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, mask: np.ndarray | None,
                       scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Overflow-free attention for finite inputs of any magnitude; returns ``(out, weights)``.

    Same mathematics as the fast path (used by it when scores or outputs overflow, and
    exported for tests). ``Q`` [B, D], ``K`` [N, D], ``V`` [N, F], ``mask`` [B, N] or None.
    """
    dtype = np.result_type(Q.dtype, K.dtype, V.dtype)
    Qd = Q.astype(np.float64, copy=False)
    Kd = K.astype(np.float64, copy=False)
    Vd = V.astype(np.float64, copy=False)
    a = np.abs(Qd).max(axis=1)
    a[a == 0] = 1.0
    b = float(np.abs(Kd).max()) or 1.0
    c = float(np.abs(Vd).max()) or 1.0
    S = (Qd / a[:, None]) @ (Kd / b).T  # |S| <= D
    if mask is not None:
        S[~mask] = -np.inf
    m = S.max(axis=1, keepdims=True)
    empty = ~np.isfinite(m[:, 0])
    m[empty] = 0.0
    with np.errstate(over="ignore"):
        L = (((S - m) * scale) * a[:, None]) * b  # <= 0; an overflow is -inf = weight 0
    if empty.any():
        L[empty] = -np.inf
    W = softmax_rows(L)
    out = (W @ (Vd / c)) * c
    return out.astype(dtype, copy=False), W.astype(dtype, copy=False)


class ScaledDotProductAttention(Module):
    """``softmax(scale * q K^T) V`` for one query (:meth:`forward`) or a batch (:meth:`forward_batch`).

    Parameters
    ----------
    dim: key/query dimension ``D``.
    scale: logit scale; ``1/sqrt(dim)`` when ``None``.
    dropout: probability of zeroing an attention weight in training mode (inverted dropout,
        as ``torch.nn.functional.dropout``); 0 disables it. Call ``eval()`` for inference.
    max_keys: limit on the number of keys per call (``None`` = unlimited).
    seed: seed of the dropout generator.

    The layer has no parameters; ``backward(grad_output)`` returns the gradients for the
    query/queries, keys and values of the last forward.
    """

    def __init__(self, dim: int, scale: float | None = None, dropout: float = 0.0,
                 max_keys: int | None = DEFAULT_MAX_KEYS, seed: int | None = None):
        super().__init__()
        check_int(dim, "dim", lo=1, error=ConfigError)
        if scale is not None:
            check_float(scale, "scale (or None)", lo=0.0, lo_open=True, error=ConfigError)
        try:
            dropout = check_float(dropout, "dropout")
        except InvalidInputError as exc:
            raise ConfigError(str(exc)) from None
        try:
            self._config = AttentionConfig(attention_type="scaled_dot_product", dim=int(dim), num_heads=1,
                                           scale=None if scale is None else float(scale),
                                           dropout=float(dropout), max_keys=max_keys)
        except ValidationError as exc:
            raise ConfigError(f"invalid ScaledDotProductAttention config: {exc}") from exc
        self.dim = int(dim)
        self.scale = float(scale) if scale is not None else 1.0 / math.sqrt(self.dim)
        self.dropout = float(dropout)
        self.max_keys = max_keys
        self._rng = np.random.default_rng(seed)
        # the scale in both float dtypes, so the hot path converts nothing
        self._scale_by_char = {"f": np.float32(self.scale), "d": np.float64(self.scale)}
        self._weights: np.ndarray | None = None
        self._cache: tuple | None = None

    # -- public API -----------------------------------------------------------------------
    def forward(self, query: Any, keys: Any, values: Any, mask: Any = None) -> np.ndarray:
        """Attend one query [D] over keys [N, D] / values [N, F]; ``mask`` [N] bool, True = attend."""
        if mask is None and self._plain_inputs(query, keys, values, 1):
            out = self._forward_lean(query, keys, values)
            if out is not None:
                return out
        q, K, V = self._inputs(query, keys, values, 1)
        m = None if mask is None else self._mask(mask, (K.shape[0],)).reshape(1, -1)
        out = self._attend(q.reshape(1, -1), K, V, m, single=True)
        return out[0]

    def forward_batch(self, queries: Any, keys: Any, values: Any, mask: Any = None) -> np.ndarray:
        """Attend queries [B, D] over shared keys/values; ``mask`` [B, N] (or [N], shared) bool."""
        if mask is None and self._plain_inputs(queries, keys, values, 2):
            out = self._forward_lean(queries, keys, values)
            if out is not None:
                return out
        Q, K, V = self._inputs(queries, keys, values, 2)
        m = None
        if mask is not None:
            m_arr = np.asarray(mask)
            if m_arr.ndim == 1:
                m = np.broadcast_to(self._mask(m_arr, (K.shape[0],)), (Q.shape[0], K.shape[0]))
            else:
                m = self._mask(m_arr, (Q.shape[0], K.shape[0]))
        return self._attend(Q, K, V, m, single=False)

    def attention_weights(self) -> np.ndarray | None:
        """Weights of the last forward, [B, N] ([1, N] after :meth:`forward`); rows sum to 1
        (0 for a fully masked query); before dropout. ``None`` before any forward."""
        w = self._weights
        if w is None:
            return None
        w = w.reshape(1, -1) if w.ndim == 1 else w.view()
        w.flags.writeable = False  # a read-only view: the layer's own array backs backward()
        return w

    def config(self) -> AttentionConfig:
        return self._config.model_copy()

    def reset(self) -> None:
        """Forget the last weights and the backward cache."""
        self._weights = None
        self._cache = None

    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients ``(grad_query, grad_keys, grad_values)`` of the last forward, given dL/d(output)."""
        if self._cache is None:
            raise NotFittedError("backward() needs a forward() first (or reset() was called)")
        Q, K, V, W, keep, single = self._cache
        if single:
            Q = Q.reshape(1, -1)
            W = W.reshape(1, -1)
        out_shape = (V.shape[1],) if single else (Q.shape[0], V.shape[1])
        G = as_float_array(grad_output, "grad_output", shape=out_shape, dtype=Q.dtype).reshape(Q.shape[0], -1)
        Wd = W if keep is None else W * keep
        grad_v = Wd.T @ G
        dW = G @ V.T
        if keep is not None:
            dW *= keep
        dS = softmax_rows_backward(W, dW, self.scale)
        grad_q = dS @ K
        grad_k = dS.T @ Q
        if single:
            grad_q = grad_q[0]
        return grad_q, grad_k, grad_v

    def extra_repr(self) -> str:
        return f"dim={self.dim}, scale={self.scale:.6g}, dropout={self.dropout}"

    # -- internals ------------------------------------------------------------------------
    def _plain_inputs(self, q: Any, K: Any, V: Any, qdim: int) -> bool:
        """True for the common case that needs no conversion: C-contiguous float32/float64 numpy
        arrays of one dtype and the right, non-empty shapes within the key limit. Everything
        else (lists, other dtypes, errors to report) takes the general validating path."""
        if type(q) is not np.ndarray or type(K) is not np.ndarray or type(V) is not np.ndarray:
            return False
        dt = K.dtype
        if (dt.char not in "fd" or not dt.isnative or q.dtype != dt or V.dtype != dt or q.ndim != qdim
                or K.ndim != 2 or V.ndim != 2):
            return False
        n = K.shape[0]
        limit = self.max_keys
        return (q.shape[-1] == self.dim and K.shape[1] == self.dim and V.shape[0] == n and n > 0
                and V.shape[1] > 0 and q.size > 0 and (limit is None or n <= limit)
                and K.flags.c_contiguous and V.flags.c_contiguous and q.flags.c_contiguous)

    def _forward_lean(self, q: np.ndarray, K: np.ndarray, V: np.ndarray) -> np.ndarray | None:
        """The fast path with as few Python-level steps as possible (for one query the per-call
        overhead is a visible share of the time). None = take the general path, which re-checks
        everything, names a NaN/Inf input, or rescales an overflow."""
        if self.training and self.dropout > 0.0:
            return None
        single = q.ndim == 1
        char = K.dtype.char
        scale = self._scale_by_char[char]
        with np.errstate(over="ignore", invalid="ignore"):
            if single:
                W = K @ q  # the scale goes into the softmax kernel's exponent
                m = W.max()  # NaN/+inf propagate through max; the kernel counts -inf entries
                if not math.isfinite(m):
                    return None
                if (softmax_vector_fast32 if char == "f" else softmax_vector_fast64)(W, m, scale):
                    return None
            else:
                W = (q * scale) @ K.T
                m = W.max(axis=1)
                if not (math.isfinite(float(m.sum())) and math.isfinite(float(W.min()))):
                    return None
                (softmax_rows_fast32 if char == "f" else softmax_rows_fast64)(W, m, scale.dtype.type(1))
            out = W @ V
            if not math.isfinite(float(out.sum())):
                return None
        object.__setattr__(self, "_weights", W)  # 1-D for one query; attention_weights() gives [1, N]
        object.__setattr__(self, "_cache", (q, K, V, W, None, single))
        return out

    def _inputs(self, query: Any, keys: Any, values: Any, qdim: int):
        q = as_float_array(query, "query" if qdim == 1 else "queries", ndim=qdim, finite=False)
        K = as_float_array(keys, "keys", ndim=2, finite=False)
        V = as_float_array(values, "values", ndim=2, finite=False)
        if K.shape[0] != V.shape[0]:
            raise DimensionMismatchError(K.shape[0], V.shape[0], "number of values (must equal number of keys)")
        if K.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, K.shape[1], "key dimension (the layer's dim)")
        if q.shape[-1] != self.dim:
            raise DimensionMismatchError(self.dim, q.shape[-1], "query dimension (must equal key dimension)")
        check_size(K.shape[0], self.max_keys, "number of keys")
        dt = np.result_type(q.dtype, K.dtype, V.dtype)
        return q.astype(dt, copy=False), K.astype(dt, copy=False), V.astype(dt, copy=False)

    @staticmethod
    def _mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise InvalidInputError(f"mask must be boolean (True = attend), got dtype {m.dtype}")
        if m.shape != shape:
            raise DimensionMismatchError(shape, m.shape, "mask shape")
        return np.ascontiguousarray(m)

    def _attend(self, Q: np.ndarray, K: np.ndarray, V: np.ndarray, mask: np.ndarray | None,
                single: bool) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._fast(Q, K, V, mask)
        if out is not None:
            W, keep, out = out
        else:  # NaN/Inf input, or overflow of finite inputs: check, then rescale
            _check_finite(Q, "query" if single else "queries")
            _check_finite(K, "keys")
            _check_finite(V, "values")
            out, W = rescaled_attention(Q, K, V, None if mask is None else np.asarray(mask), self.scale)
            keep = self._dropout_keep(W)
            if keep is not None:
                out = _safe_weighted_sum(W * keep, V)
        # plain attributes (not parameters or modules): skip Module.__setattr__'s registry work
        object.__setattr__(self, "_weights", W)
        object.__setattr__(self, "_cache", (Q, K, V, W, keep, single))
        return out

    def _fast(self, Q, K, V, mask):
        """Scores on BLAS (scale folded into the queries), then the fused in-place softmax.
        Returns None when a score is not finite (bad input or overflow)."""
        Qs = Q * Q.dtype.type(self.scale)
        # one query: matrix-vector products (BLAS gemv), a 1-row gemm is slower
        S = (K @ Qs[0])[None] if Q.shape[0] == 1 else Qs @ K.T
        m = S.max(axis=1)  # NaN propagates through max; -inf is caught by the min
        # (a sum that overflows only sends finite inputs to the rescaled path, which is exact too)
        if not (math.isfinite(float(m.sum())) and math.isfinite(float(S.min()))):
            return None
        if mask is not None:
            np.copyto(S, -np.inf, where=~mask)
            m = S.max(axis=1)  # -inf for a query with nothing to attend to -> zero weights
        W = softmax_rows_inplace(S, 1.0, row_max=m)
        keep = self._dropout_keep(W)
        Wd = W if keep is None else W * keep
        out = (Wd[0] @ V)[None] if Wd.shape[0] == 1 else Wd @ V
        if not math.isfinite(float(out.sum())):
            return None
        return W, keep, out

    def _dropout_keep(self, W: np.ndarray) -> np.ndarray | None:
        if not self.training or self.dropout == 0.0:
            return None
        keep = (self._rng.random(W.shape) >= self.dropout).astype(W.dtype)
        keep *= W.dtype.type(1.0 / (1.0 - self.dropout))
        return keep


def _safe_weighted_sum(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``W @ V`` with ``V`` rescaled by its largest magnitude (no intermediate overflow)."""
    Vd = V.astype(np.float64, copy=False)
    c = float(np.abs(Vd).max()) or 1.0
    out = (W.astype(np.float64, copy=False) @ (Vd / c)) * c
    return out.astype(V.dtype, copy=False)


__all__ = ["ScaledDotProductAttention", "rescaled_attention"]
