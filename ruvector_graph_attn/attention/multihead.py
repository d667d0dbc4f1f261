"""Multi-head attention with ``torch.nn.MultiheadAttention`` semantics, names and shapes.

For ``H`` heads of size ``hd = E / H`` (query ``x_q`` [B, L, E], key ``x_k`` [B, S, kdim],
value ``x_v`` [B, S, vdim])::

    q = x_q W_q^T + b_q,  k = x_k W_k^T + b_k,  v = x_v W_v^T + b_v        (in-projections)
    per head h:  A_h = softmax(q_h k_h^T / sqrt(hd) + mask) ,  o_h = A_h v_h
    out = concat_h(o_h) W_o^T + b_o                                      (out_proj)

exactly as ``torch.nn.functional.multi_head_attention_forward``: the query is multiplied by
``1/sqrt(hd)`` *after* its projection (bias included) and *before* the product with the keys,
and masks are added after that scaling.

Parameters (``state_dict`` names and shapes are torch's, so a torch state_dict loads unchanged):

* ``in_proj_weight`` [3E, E] when ``kdim == vdim == E``; otherwise ``q_proj_weight`` [E, E],
  ``k_proj_weight`` [E, kdim], ``v_proj_weight`` [E, vdim]
* ``in_proj_bias`` [3E] and ``out_proj.bias`` [E] (absent with ``bias=False``)
* ``out_proj.weight`` [E, E]

Initialisation is torch's: xavier-uniform in-projections, zero in-projection and out_proj
biases, out_proj weight U(-1/sqrt(E), 1/sqrt(E)).

Layout: ``batch_first=True`` (the default here; torch's default is ``False``) means [B, L, E];
``batch_first=False`` means [L, B, E]. Unbatched inputs [L, E] / [S, kdim] / [S, vdim] are
accepted as in torch.

Masks (torch semantics): ``key_padding_mask`` [B, S] (or [S] unbatched) and ``attn_mask``
[L, S] or [B*H, L, S] ([H, L, S] unbatched). A boolean mask marks with True the positions that
may NOT be attended; a float mask is added to the scaled scores. Decision where torch gives
NaN: a query row whose every key is masked gets all-zero attention weights, so its attention
output is 0 and the layer returns ``out_proj.bias`` there (never NaN).

Dropout (``dropout`` > 0) drops attention weights in training mode only, as torch does, and the
returned weights are the dropped-and-rescaled ones (torch returns those too).
``add_bias_kv`` / ``add_zero_attn`` are not supported.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import AttentionConfig
from ..errors import ConfigError, DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.softmax import softmax_rows_backward, softmax_rows_inplace
from ..nn.layers import Linear, _resolve_rng
from ..nn.module import Module, Parameter
from ..validation import DEFAULT_MAX_KEYS, as_float_array, check_positive_int, check_size


def _xavier_uniform(shape: tuple[int, int], rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """``torch.nn.init.xavier_uniform_``: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (fan_in = shape[1])."""
    a = math.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view (the layer keeps the array for backward)."""
    v = a.view()
    v.flags.writeable = False
    return v


class MultiHeadAttention(Module):
    """Multi-head attention; ``forward(query, key, value, ...)`` returns ``(output, weights)``.

    Parameters follow ``torch.nn.MultiheadAttention(embed_dim, num_heads, dropout, bias,
    kdim=None, vdim=None, batch_first)``; ``rng`` (None, int seed or Generator) drives the
    initialisation, ``seed`` the dropout masks, ``max_keys`` limits the source length ``S``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = True,
                 max_keys: int | None = DEFAULT_MAX_KEYS, rng: Any = None, seed: int | None = None,
                 dtype: Any = np.float32):
        super().__init__()
        E = check_positive_int(embed_dim, "embed_dim")
        H = check_positive_int(num_heads, "num_heads")
        if E % H != 0:
            raise ConfigError(f"embed_dim ({E}) must be divisible by num_heads ({H})")
        if not isinstance(dropout, (int, float)) or not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.embed_dim = E
        self.num_heads = H
        self.head_dim = E // H
        self.kdim = E if kdim is None else check_positive_int(kdim, "kdim")
        self.vdim = E if vdim is None else check_positive_int(vdim, "vdim")
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        if max_keys is not None:
            check_positive_int(max_keys, "max_keys")
        self.max_keys = max_keys
        self._config = AttentionConfig(attention_type="multi_head", dim=E, num_heads=H,
                                       scale=1.0 / math.sqrt(self.head_dim), dropout=self.dropout,
                                       max_keys=max_keys)
        gen = _resolve_rng(rng)
        dt = np.dtype(dtype)
        self._qkv_same_embed_dim = self.kdim == E and self.vdim == E
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(_xavier_uniform((3 * E, E), gen, dt))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(_xavier_uniform((E, E), gen, dt))
            self.k_proj_weight = Parameter(_xavier_uniform((E, self.kdim), gen, dt))
            self.v_proj_weight = Parameter(_xavier_uniform((E, self.vdim), gen, dt))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * E, dtype=dt))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, rng=gen, dtype=dt)
        if bias:
            self.out_proj.bias.data[...] = 0
        object.__setattr__(self, "_drop_rng", np.random.default_rng(seed))
        object.__setattr__(self, "_cache", None)
        object.__setattr__(self, "_head_weights", None)
        #: "auto" (default), True or False: compute attention for few queries without projecting
        #: the keys and values (see ``_forward_folded``); same result up to rounding
        self.fold_kv_projections: bool | str = "auto"

    # -- projections ----------------------------------------------------------------------
    def _proj_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight.data
            return w[:E], w[E:2 * E], w[2 * E:]
        return self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data

    def _proj_biases(self) -> tuple[np.ndarray | None, ...]:
        if self.in_proj_bias is None:
            return None, None, None
        b = self.in_proj_bias.data
        E = self.embed_dim
        return b[:E], b[E:2 * E], b[2 * E:]

    # -- public API -----------------------------------------------------------------------
    def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None,
                average_attn_weights: bool = True):
        """Torch's ``MultiheadAttention.forward``; returns ``(attn_output, attn_weights)``.

        ``attn_weights`` is [B, L, S] averaged over heads (``average_attn_weights``), or
        [B, H, L, S]; ``None`` when ``need_weights=False``. Unbatched inputs drop the B axis.
        """
        xq, xk, xv, batched = self._inputs(query, key, value)
        B, L, _ = xq.shape
        S = xk.shape[1]
        H = self.num_heads
        dt = xq.dtype
        add_mask = self._combined_mask(key_padding_mask, attn_mask, B, L, S, batched, dt)
        fold = self.fold_kv_projections
        if fold == "auto":
            fold = 2 * H * L <= self.embed_dim
        res = None
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are diagnosed below
            if fold:
                res = self._forward_folded(xq, xk, xv, add_mask)
            if res is None:
                res = self._forward_projected(xq, xk, xv, add_mask)
        if res is None:
            self._diagnose(xq, xk, xv)
        out, P, keep, Pd, attn, cache = res
        object.__setattr__(self, "_head_weights", Pd)
        object.__setattr__(self, "_cache", dict(xq=xq, xk=xk, xv=xv, P=P, keep=keep, Pd=Pd, attn=attn,
                                                batched=batched, **cache))
        out = self._out_layout(out, batched)
        if not need_weights:
            return out, None
        w = Pd.mean(axis=1) if average_attn_weights else _read_only(Pd)
        return out, (w if batched else w[0])

    def _softmax_dropout(self, scores: np.ndarray, add_mask: np.ndarray | None, dt: np.dtype):
        B, H, L, S = scores.shape
        if add_mask is not None:
            scores += add_mask
        P = softmax_rows_inplace(scores.reshape(-1, S)).reshape(B, H, L, S).astype(dt, copy=False)
        keep = None
        Pd = P
        if self.training and self.dropout > 0.0:
            keep = (self._drop_rng.random(P.shape) >= self.dropout).astype(dt) * dt.type(1.0 / (1.0 - self.dropout))
            Pd = P * keep
        return P, keep, Pd

    def _out(self, attn: np.ndarray) -> np.ndarray:
        dt = attn.dtype
        out = attn @ self.out_proj.weight.data.astype(dt, copy=False).T
        if self.out_proj.bias is not None:
            out += self.out_proj.bias.data.astype(dt, copy=False)
        return out

    def _query_heads(self, xq: np.ndarray) -> np.ndarray:
        B, L, _ = xq.shape
        H, hd = self.num_heads, self.head_dim
        dt = xq.dtype
        Wq = self._proj_weights()[0].astype(dt, copy=False)
        bq = self._proj_biases()[0]
        q = xq @ Wq.T
        if bq is not None:
            q += bq.astype(dt, copy=False)
        q *= dt.type(1.0 / math.sqrt(hd))  # torch scales the projected query (bias included)
        return q.reshape(B, L, H, hd).transpose(0, 2, 1, 3)  # [B, H, L, hd] (a view)

    def _forward_projected(self, xq, xk, xv, add_mask):
        """The textbook order: project every key and value, then attend per head."""
        B, L, E = xq.shape
        S = xk.shape[1]
        H, hd = self.num_heads, self.head_dim
        dt = xq.dtype
        _, Wk, Wv = (w.astype(dt, copy=False) for w in self._proj_weights())
        _, bk, bv = self._proj_biases()
        qh = self._query_heads(xq)
        k = xk @ Wk.T
        v = xv @ Wv.T
        if bk is not None:
            k += bk.astype(dt, copy=False)
            v += bv.astype(dt, copy=False)
        kh = k.reshape(B, S, H, hd).transpose(0, 2, 1, 3)
        vh = v.reshape(B, S, H, hd).transpose(0, 2, 1, 3)
        scores = qh @ kh.transpose(0, 1, 3, 2)  # [B, H, L, S]
        if not (np.isfinite(qh).all() and np.isfinite(v).all()):
            return None
        if not np.isfinite(scores).all():
            # finite projections whose dot products overflow: redo the scores in float64
            # (|score| <= hd * max|q| * max|k| fits easily); non-finite keys stay non-finite
            scores = qh.astype(np.float64) @ kh.astype(np.float64).transpose(0, 1, 3, 2)
            if not np.isfinite(scores).all():
                return None
        P, keep, Pd = self._softmax_dropout(scores, add_mask, dt)
        attn = (Pd @ vh).transpose(0, 2, 1, 3).reshape(B, L, E)
        out = self._out(attn)
        if not np.isfinite(out).all():
            return None
        return out, P, keep, Pd, attn, dict(qh=qh, kh=kh, vh=vh)

    def _forward_folded(self, xq, xk, xv, add_mask):
        """Same result for few queries over many keys, without projecting the keys and values.

        Per head h: ``q_h . (W_k,h x + b_k,h) = (W_k,h^T q_h) . x + q_h . b_k,h`` and
        ``sum_j P_j (W_v,h x_j + b_v,h) = W_v,h (sum_j P_j x_j) + b_v,h sum_j P_j``: the cost is
        ``O(S * (kdim + vdim) * H * L)`` instead of ``O(S * (kdim + vdim) * E)``, a factor
        ``E / (H * L)`` less (16x for one query, E=128, 8 heads). Returns None on any
        non-finite value (the caller then takes the projected path, which diagnoses it).
        """
        B, L, E = xq.shape
        S = xk.shape[1]
        H, hd = self.num_heads, self.head_dim
        dt = xq.dtype
        _, Wk, Wv = (w.astype(dt, copy=False) for w in self._proj_weights())
        _, bk, bv = self._proj_biases()
        qh = self._query_heads(xq)  # [B, H, L, hd], scaled
        U = qh @ Wk.reshape(H, hd, self.kdim)  # [B, H, L, kdim]
        scores = (U.reshape(B, H * L, self.kdim) @ xk.transpose(0, 2, 1)).reshape(B, H, L, S)
        if bk is not None:
            scores += (qh @ bk.astype(dt, copy=False).reshape(H, hd, 1))  # [B, H, L, 1]
        if not np.isfinite(scores).all():
            return None
        P, keep, Pd = self._softmax_dropout(scores, add_mask, dt)
        Y = (Pd.reshape(B, H * L, S) @ xv).reshape(B, H, L, self.vdim)
        oh = Y @ Wv.reshape(H, hd, self.vdim).transpose(0, 2, 1)  # [B, H, L, hd]
        if bv is not None:
            oh += Pd.sum(axis=-1, keepdims=True) * bv.astype(dt, copy=False).reshape(H, 1, hd)
        attn = oh.transpose(0, 2, 1, 3).reshape(B, L, E)
        out = self._out(attn)
        if not np.isfinite(out).all():
            return None
        return out, P, keep, Pd, attn, dict(qh=qh, kh=None, vh=None)

    def _diagnose(self, xq: np.ndarray, xk: np.ndarray, xv: np.ndarray) -> None:
        """Something was not finite: name the input that holds NaN/Inf, else report the overflow."""
        for name, arr in (("query", xq), ("key", xk), ("value", xv)):
            if not np.isfinite(arr).all():
                b, pos, feat = (int(i) for i in np.argwhere(~np.isfinite(arr))[0])
                raise InvalidInputError(
                    f"{name} contains NaN or Inf (first at batch {b}, position {pos}, feature {feat}); "
                    "expected finite values"
                )
        big = max(float(np.abs(a).max()) for a in (xq, xk, xv))
        raise InvalidInputError(
            f"multi-head attention overflowed in {xq.dtype}: the projections or the output are not "
            f"finite (largest input magnitude {big:.3g}); use smaller inputs or float64"
        )

    def forward_vector(self, query: Any, keys: Any, values: Any, key_padding_mask: Any = None) -> np.ndarray:
        """Seed-style convenience: one query vector [E] over keys [N, kdim] / values [N, vdim]
        -> output [E] (torch's unbatched call with L = 1). Per-head weights: ``attention_weights()``
        ([H, 1, N]); ``backward`` then expects a gradient of shape [1, E]."""
        q = as_float_array(query, "query", ndim=1, finite=False)
        out, _ = self.forward(q[None], keys, values, key_padding_mask=key_padding_mask, need_weights=False)
        return out[0]

    def attention_weights(self, average: bool = False) -> np.ndarray | None:
        """Per-head weights of the last forward, [B, H, L, S] ([H, L, S] unbatched), or their
        mean over heads with ``average=True``; ``None`` before any forward."""
        if self._head_weights is None:
            return None
        w = self._head_weights.mean(axis=1) if average else _read_only(self._head_weights)
        return w if self._cache["batched"] else w[0]

    def config(self) -> AttentionConfig:
        return self._config.model_copy()

    def reset(self) -> None:
        object.__setattr__(self, "_cache", None)
        object.__setattr__(self, "_head_weights", None)

    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns ``(grad_query, grad_key, grad_value)`` shaped like the forward inputs and adds
        the parameter gradients into ``.grad`` (in_proj_* / q,k,v_proj_weight, out_proj.*)."""
        c = self._cache
        if c is None:
            raise NotFittedError("MultiHeadAttention.backward needs a forward() first")
        xq, xk, xv = c["xq"], c["xk"], c["xv"]
        B, L, E = xq.shape
        S = xk.shape[1]
        H, hd = self.num_heads, self.head_dim
        dt = xq.dtype
        expected = self._out_layout(np.empty((B, L, E), dtype=dt), c["batched"]).shape
        g = as_float_array(grad_output, "grad_output", shape=expected, dtype=dt)
        g = self._in_layout(g, c["batched"])  # [B, L, E]
        g2 = g.reshape(-1, E)
        Wo = self.out_proj.weight.data.astype(dt, copy=False)
        self.out_proj.weight.accumulate(g2.T @ c["attn"].reshape(-1, E))
        if self.out_proj.bias is not None:
            self.out_proj.bias.accumulate(g2.sum(axis=0))
        if c["kh"] is None:  # the forward folded the projections: project keys/values now
            _, Wk_, Wv_ = (w.astype(dt, copy=False) for w in self._proj_weights())
            _, bk_, bv_ = self._proj_biases()
            k = xk @ Wk_.T
            v = xv @ Wv_.T
            if bk_ is not None:
                k += bk_.astype(dt, copy=False)
                v += bv_.astype(dt, copy=False)
            c["kh"] = k.reshape(B, S, H, hd).transpose(0, 2, 1, 3)
            c["vh"] = v.reshape(B, S, H, hd).transpose(0, 2, 1, 3)
        d_attn = (g @ Wo).reshape(B, L, H, hd).transpose(0, 2, 1, 3)  # [B, H, L, hd]
        d_vh = c["Pd"].transpose(0, 1, 3, 2) @ d_attn  # [B, H, S, hd]
        d_Pd = d_attn @ c["vh"].transpose(0, 1, 3, 2)  # [B, H, L, S]
        if c["keep"] is not None:
            d_Pd *= c["keep"]
        d_scores = softmax_rows_backward(c["P"].reshape(-1, S), d_Pd.reshape(-1, S)).reshape(B, H, L, S)
        d_qh = (d_scores @ c["kh"]) * dt.type(1.0 / math.sqrt(hd))  # d/d(q) incl. the 1/sqrt(hd) factor
        d_kh = d_scores.transpose(0, 1, 3, 2) @ c["qh"]  # qh already holds the scaled query
        d_q = d_qh.transpose(0, 2, 1, 3).reshape(B, L, E)
        d_k = d_kh.transpose(0, 2, 1, 3).reshape(B, S, E)
        d_v = d_vh.transpose(0, 2, 1, 3).reshape(B, S, E)
        Wq, Wk, Wv = (w.astype(dt, copy=False) for w in self._proj_weights())
        gWq = d_q.reshape(-1, E).T @ xq.reshape(-1, E)
        gWk = d_k.reshape(-1, E).T @ xk.reshape(-1, self.kdim)
        gWv = d_v.reshape(-1, E).T @ xv.reshape(-1, self.vdim)
        if self._qkv_same_embed_dim:
            self.in_proj_weight.accumulate(np.concatenate([gWq, gWk, gWv], axis=0))
        else:
            self.q_proj_weight.accumulate(gWq)
            self.k_proj_weight.accumulate(gWk)
            self.v_proj_weight.accumulate(gWv)
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate(np.concatenate([d_q.reshape(-1, E).sum(0), d_k.reshape(-1, E).sum(0),
                                                         d_v.reshape(-1, E).sum(0)]))
        gq = self._out_layout(d_q @ Wq, c["batched"])
        gk = self._out_layout(d_k @ Wk, c["batched"])
        gv = self._out_layout(d_v @ Wv, c["batched"])
        return gq, gk, gv

    def extra_repr(self) -> str:
        extra = "" if self._qkv_same_embed_dim else f", kdim={self.kdim}, vdim={self.vdim}"
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"bias={self.in_proj_bias is not None}{extra}, batch_first={self.batch_first}")

    # -- internals ------------------------------------------------------------------------
    def _in_layout(self, x: np.ndarray, batched: bool) -> np.ndarray:
        if not batched:
            return x[None]
        return x if self.batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))

    def _out_layout(self, x: np.ndarray, batched: bool) -> np.ndarray:
        if not batched:
            return x[0]
        return x if self.batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))

    def _inputs(self, query: Any, key: Any, value: Any):
        # finiteness is checked through the results (NaN/Inf reach the scores or the output)
        q = as_float_array(query, "query", ndim=(2, 3), finite=False)
        k = as_float_array(key, "key", ndim=(2, 3), finite=False)
        v = as_float_array(value, "value", ndim=(2, 3), finite=False)
        if not (q.ndim == k.ndim == v.ndim):
            raise InvalidInputError(
                f"query, key and value must all be batched (3-D) or all unbatched (2-D), "
                f"got {q.ndim}-D, {k.ndim}-D and {v.ndim}-D"
            )
        batched = q.ndim == 3
        dt = np.result_type(q.dtype, k.dtype, v.dtype, self.out_proj.weight.data.dtype)
        q, k, v = (self._in_layout(a.astype(dt, copy=False), batched) for a in (q, k, v))
        if q.shape[2] != self.embed_dim:
            raise DimensionMismatchError(self.embed_dim, q.shape[2], "query embedding dimension (embed_dim)")
        if k.shape[2] != self.kdim:
            raise DimensionMismatchError(self.kdim, k.shape[2], "key feature dimension (kdim)")
        if v.shape[2] != self.vdim:
            raise DimensionMismatchError(self.vdim, v.shape[2], "value feature dimension (vdim)")
        if k.shape[:2] != v.shape[:2]:
            raise DimensionMismatchError(k.shape[:2], v.shape[:2], "value batch/sequence shape (must equal key's)")
        if q.shape[0] != k.shape[0]:
            raise DimensionMismatchError(q.shape[0], k.shape[0], "key batch size (must equal query's)")
        check_size(k.shape[1], self.max_keys, "number of keys (source length)")
        return q, k, v, batched

    def _combined_mask(self, key_padding_mask: Any, attn_mask: Any, B: int, L: int, S: int,
                       batched: bool, dt: np.dtype) -> np.ndarray | None:
        """One additive float mask broadcastable to [B, H, L, S] (0 / -inf / float values)."""
        H = self.num_heads
        total = None
        if attn_mask is not None:
            m = self._additive(attn_mask, "attn_mask", dt)
            if m.ndim == 2:
                if m.shape != (L, S):
                    raise DimensionMismatchError((L, S), m.shape, "2-D attn_mask shape")
                total = m[None, None]
            elif m.ndim == 3:
                want = (B * H, L, S) if batched else (H, L, S)
                if m.shape != want:
                    raise DimensionMismatchError(want, m.shape, "3-D attn_mask shape")
                total = m.reshape(B, H, L, S)
            else:
                raise InvalidInputError(f"attn_mask must be 2-D or 3-D, got shape {m.shape}")
        if key_padding_mask is not None:
            m = self._additive(key_padding_mask, "key_padding_mask", dt)
            want = (B, S) if batched else (S,)
            if m.shape != want:
                raise DimensionMismatchError(want, m.shape, "key_padding_mask shape")
            m = m.reshape(B, 1, 1, S)
            total = m if total is None else total + m
        return total

    @staticmethod
    def _additive(mask: Any, name: str, dt: np.dtype) -> np.ndarray:
        m = np.asarray(mask)
        if m.dtype == np.bool_:
            out = np.zeros(m.shape, dtype=dt)
            out[m] = -np.inf  # True = not allowed
            return out
        if m.dtype.kind not in "fiu":
            raise InvalidInputError(f"{name} must be boolean (True = masked) or float (added), got dtype {m.dtype}")
        out = m.astype(dt)
        if np.isnan(out).any() or np.isposinf(out).any():
            raise InvalidInputError(f"{name} contains NaN or +inf; expected finite values or -inf")
        return out


__all__ = ["MultiHeadAttention"]
