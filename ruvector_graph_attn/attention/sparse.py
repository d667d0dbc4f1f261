"""Sparse attention: softmax attention restricted to an allowed set of (query, key) pairs.

The allowed pairs are a :class:`SparseMask`, stored as CSR over query rows (``indptr``,
``indices``; keys sorted, no duplicates). Structured patterns (window, strided, block, full)
are generated directly in CSR by Numba kernels in O(nnz); nothing here builds a dense
``[B, N]`` array except :meth:`SparseMask.dense` (whose input already is one) and the
explicit :meth:`SparseMask.to_dense` / :meth:`SparseWeights.to_dense` helpers.

Semantics (see docs/sparse.md):

* scores ``s_ij = scale * <q_i, k_j>`` with ``scale = 1/sqrt(dim)`` unless given; weights are
  the softmax of ``s_i`` over the allowed keys of row ``i``; output ``sum_j w_ij v_j``.
  This equals dense attention with ``-inf`` at the disallowed positions.
* Query ``i`` sits at position ``i + query_offset`` (``query_offset=0`` by default, so for
  self-attention query ``i`` and key ``i`` are the same token). Window: key ``j`` is allowed
  when ``|pos_i - j| <= window_size`` (``2 * window_size + 1`` keys in the interior).
  Strided adds every key with ``(pos_i - j) % stride == 0``. A global token ``g`` is attended
  by every query, and the query at position ``g`` attends to every key.
* A query with no allowed key gets a zero output row and is flagged in
  :meth:`SparseAttention.empty_rows` (or raises, with ``on_empty="raise"``).
* COO masks are sets: duplicate pairs are merged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..config import AttentionConfig
from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..kernels.csr import indptr_from_counts
from ..kernels.sparse import (
    block_pattern_counts,
    block_pattern_fill,
    csr_attention,
    csr_attention_backward_keys,
    csr_attention_backward_rows,
    csr_transpose_perm,
    topk_merge,
    window_pattern_counts,
    window_pattern_fill,
)
from ..nn.module import Module
from ..validation import safe_ndim
from ..validation import (
    DEFAULT_MAX_KEYS,
    as_float_array,
    as_index_array,
    check_positive_float,
    attention_inputs,
    check_positive_int,
    check_size,
)

__all__ = ["SparseMask", "SparseAttention", "SparseWeights", "DEFAULT_MAX_NNZ"]

#: Default limit on the number of allowed (query, key) pairs of one call (12 bytes each).
DEFAULT_MAX_NNZ = 200_000_000

_KINDS = ("dense", "coo", "csr", "block", "windowed", "strided", "full")


def _check_shape(shape: Any) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise InvalidInputError(f"shape must be a pair (num_queries, num_keys), got {shape!r}")
    b = check_positive_int(shape[0], "shape[0] (number of queries)")
    n = check_positive_int(shape[1], "shape[1] (number of keys)")
    return b, n


class SparseMask:
    """The set of allowed (query, key) pairs, as CSR over query rows.

    Build one with a constructor: :meth:`dense`, :meth:`coo`, :meth:`from_csr`, :meth:`block`,
    :meth:`windowed`, :meth:`strided`, :meth:`full`. Explicit masks (dense, csr, and coo/block
    given ``shape``) have a fixed ``shape``; patterns (windowed, strided, full, and coo/block
    without ``shape``) adapt to the ``(num_queries, num_keys)`` of each call and are
    validated against it then. :meth:`csr` returns ``(indptr, indices)`` for a shape.
    """

    __slots__ = ("kind", "shape", "_spec", "_cache_key", "_cache")

    def __init__(self, kind: str, shape: tuple[int, int] | None, spec: dict[str, Any]):
        if kind not in _KINDS:
            raise InvalidInputError(f"unknown SparseMask kind {kind!r}; expected one of {_KINDS}")
        self.kind = kind
        self.shape = shape
        self._spec = spec
        self._cache_key: tuple[int, int] | None = None
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def dense(cls, mask: Any) -> "SparseMask":
        """From a boolean ``[B, N]`` array (True = the query may attend to the key)."""
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise InvalidInputError(f"dense mask must be boolean (True = attend), got dtype {m.dtype}")
        if m.ndim != 2:
            raise InvalidInputError(f"dense mask must be 2-D [num_queries, num_keys], got shape {m.shape}")
        if m.size == 0:
            raise InvalidInputError(f"dense mask is empty (shape {m.shape})")
        rows, cols = np.nonzero(m)  # row-major: sorted by row, then key
        counts = np.bincount(rows, minlength=m.shape[0]).astype(np.int64)
        out = cls("dense", (int(m.shape[0]), int(m.shape[1])), {})
        out._set_cache(out.shape, indptr_from_counts(counts), np.ascontiguousarray(cols, dtype=np.int64))
        return out

    @classmethod
    def coo(cls, rows: Any, cols: Any, shape: Sequence[int] | None = None) -> "SparseMask":
        """From coordinate lists: query ``rows[t]`` may attend to key ``cols[t]``.

        Duplicate pairs are merged (a mask is a set). Without ``shape`` the mask fits any
        call whose sizes cover every pair; out-of-range pairs raise :class:`InvalidInputError`.
        """
        r = as_index_array(rows, "rows")
        c = as_index_array(cols, "cols")
        if r.shape != c.shape:
            raise DimensionMismatchError(r.shape[0], c.shape[0], "number of cols (must equal number of rows)")
        if r.size and (r.min() < 0 or c.min() < 0):
            raise InvalidInputError("coo mask has a negative row or column index; expected indices >= 0")
        order = np.lexsort((c, r))
        r, c = r[order], c[order]
        if r.size > 1:
            keep = np.ones(r.shape[0], dtype=bool)
            keep[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
            r, c = r[keep], c[keep]
        fixed = _check_shape(tuple(shape)) if shape is not None else None
        out = cls("coo", fixed, {"rows": np.ascontiguousarray(r), "cols": np.ascontiguousarray(c)})
        if fixed is not None:
            out.csr(*fixed)  # validate now
        return out

    @classmethod
    def from_csr(cls, indptr: Any, indices: Any, shape: Sequence[int]) -> "SparseMask":
        """From CSR arrays; each row's keys must be sorted and unique, all in ``[0, N)``."""
        b, n = _check_shape(tuple(shape))
        ip = as_index_array(indptr, "indptr")
        ix = as_index_array(indices, "indices")
        if ip.shape[0] != b + 1:
            raise DimensionMismatchError(b + 1, ip.shape[0], "indptr length (num_queries + 1)")
        if ip[0] != 0 or ip[-1] != ix.shape[0] or np.any(np.diff(ip) < 0):
            raise InvalidInputError("indptr must start at 0, be non-decreasing and end at len(indices)")
        if ix.size:
            if ix.min() < 0 or ix.max() >= n:
                raise InvalidInputError(
                    f"csr mask references key {int(ix.max()) if ix.max() >= n else int(ix.min())} "
                    f"outside 0..{n - 1}")
            steps = np.diff(ix)
            row_start = np.zeros(ix.shape[0], dtype=bool)
            row_start[ip[:-1][ip[:-1] < ix.shape[0]]] = True
            if np.any((steps <= 0) & ~row_start[1:]):
                raise InvalidInputError("csr mask indices must be strictly increasing within each row")
        out = cls("csr", (b, n), {})
        out._set_cache((b, n), ip, ix)
        return out

    @classmethod
    def block(cls, block_size: int | Sequence[int], active_blocks: Any,
              shape: Sequence[int] | None = None) -> "SparseMask":
        """Block-sparse: ``active_blocks`` is a list of ``(query_block, key_block)`` pairs.

        ``block_size`` is an int or ``(query_block_size, key_block_size)``. Block ``(a, b)``
        allows queries ``a*bq .. (a+1)*bq - 1`` to attend to keys ``b*bk .. (b+1)*bk - 1``;
        the last block in each direction is truncated at the sequence end. A block starting
        beyond the sequence raises :class:`InvalidInputError`.
        """
        if isinstance(block_size, (tuple, list)):
            if len(block_size) != 2:
                raise InvalidInputError(f"block_size must be an int or a pair, got {block_size!r}")
            bq = check_positive_int(block_size[0], "block_size[0]")
            bk = check_positive_int(block_size[1], "block_size[1]")
        else:
            bq = bk = check_positive_int(block_size, "block_size")
        blocks = np.asarray(active_blocks)
        if blocks.size == 0:
            blocks = np.zeros((0, 2), dtype=np.int64)
        if blocks.ndim != 2 or blocks.shape[1] != 2:
            raise InvalidInputError(
                f"active_blocks must be a list of (query_block, key_block) pairs, got shape {blocks.shape}")
        blocks = as_index_array(blocks, "active_blocks", ndim=2)
        if blocks.size and blocks.min() < 0:
            raise InvalidInputError("active_blocks contains a negative block index")
        order = np.lexsort((blocks[:, 1], blocks[:, 0]))
        blocks = blocks[order]
        if blocks.shape[0] > 1:
            keep = np.ones(blocks.shape[0], dtype=bool)
            keep[1:] = np.any(blocks[1:] != blocks[:-1], axis=1)
            blocks = blocks[keep]
        fixed = _check_shape(tuple(shape)) if shape is not None else None
        out = cls("block", fixed, {"bq": bq, "bk": bk, "blocks": np.ascontiguousarray(blocks)})
        if fixed is not None:
            out.csr(*fixed)
        return out

    @classmethod
    def windowed(cls, window_size: int, global_tokens: Sequence[int] = (),
                 shape: Sequence[int] | None = None, query_offset: int = 0) -> "SparseMask":
        """Local window: query at position ``p`` attends to keys ``j`` with ``|p - j| <= window_size``,
        plus global tokens (attended by all, and attending to all)."""
        w = check_positive_int(window_size, "window_size", allow_zero=True)
        return cls._pattern("windowed", w, 0, global_tokens, shape, query_offset)

    @classmethod
    def strided(cls, window_size: int, stride: int, global_tokens: Sequence[int] = (),
                shape: Sequence[int] | None = None, query_offset: int = 0) -> "SparseMask":
        """Longformer / Sparse-Transformer style: the local window, plus every key ``j`` with
        ``(p - j) % stride == 0``, plus global tokens."""
        w = check_positive_int(window_size, "window_size", allow_zero=True)
        s = check_positive_int(stride, "stride")
        return cls._pattern("strided", w, s, global_tokens, shape, query_offset)

    @classmethod
    def full(cls, shape: Sequence[int] | None = None) -> "SparseMask":
        """Every query attends to every key (dense attention through the sparse kernel)."""
        fixed = _check_shape(tuple(shape)) if shape is not None else None
        return cls("full", fixed, {})

    @classmethod
    def _pattern(cls, kind: str, window: int, stride: int, global_tokens: Sequence[int],
                 shape: Sequence[int] | None, query_offset: int) -> "SparseMask":
        g = np.atleast_1d(np.asarray(global_tokens))
        if g.size == 0:
            g = np.zeros(0, dtype=np.int64)
        g = as_index_array(g, "global_tokens")
        if g.size and g.min() < 0:
            raise InvalidInputError(f"global_tokens contains a negative position ({int(g.min())})")
        g = np.unique(g)
        off = check_positive_int(query_offset, "query_offset", allow_zero=True)
        fixed = _check_shape(tuple(shape)) if shape is not None else None
        out = cls(kind, fixed, {"window": window, "stride": stride, "globals": g, "offset": off})
        if fixed is not None:
            out.csr(*fixed)
        return out

    # -- CSR --------------------------------------------------------------------------------
    def _set_cache(self, key: tuple[int, int], indptr: np.ndarray, indices: np.ndarray) -> None:
        self._cache_key = key
        self._cache = (indptr, indices)

    def csr(self, num_queries: int, num_keys: int,
            max_nnz: int | None = DEFAULT_MAX_NNZ) -> tuple[np.ndarray, np.ndarray]:
        """``(indptr [B+1], indices [nnz])`` int64 for ``B = num_queries`` queries and
        ``N = num_keys`` keys. Raises if the mask does not fit that shape."""
        key = (int(num_queries), int(num_keys))
        if self.shape is not None and self.shape != key:
            raise DimensionMismatchError(self.shape, key, f"{self.kind} mask shape (num_queries, num_keys)")
        if self._cache_key == key and self._cache is not None:
            check_size(int(self._cache[1].shape[0]), max_nnz, "number of allowed (query, key) pairs")
            return self._cache
        b, n = key
        spec = self._spec
        if self.kind == "coo":
            r, c = spec["rows"], spec["cols"]
            if r.size and (r[-1] >= b or c.max() >= n):
                bad_r = int(r[-1])
                bad_c = int(c.max())
                raise InvalidInputError(
                    f"coo mask references (query {bad_r}, key {bad_c}) but the call has {b} queries "
                    f"and {n} keys (expected rows in 0..{b - 1}, cols in 0..{n - 1})")
            check_size(int(c.shape[0]), max_nnz, "number of allowed (query, key) pairs")
            indptr = indptr_from_counts(np.bincount(r, minlength=b).astype(np.int64))
            indices = c
        elif self.kind == "block":
            bq, bk, blocks = spec["bq"], spec["bk"], spec["blocks"]
            nqb, nkb = -(-b // bq), -(-n // bk)
            if blocks.size and (blocks[:, 0].max() >= nqb or blocks[:, 1].max() >= nkb):
                raise InvalidInputError(
                    f"block mask references block ({int(blocks[:, 0].max())}, {int(blocks[:, 1].max())}) but "
                    f"{b} queries x {n} keys with block size ({bq}, {bk}) have only {nqb} x {nkb} blocks")
            blk_ptr = indptr_from_counts(np.bincount(blocks[:, 0], minlength=nqb).astype(np.int64))
            blk_cols = np.ascontiguousarray(blocks[:, 1])
            counts = np.empty(b, dtype=np.int64)
            block_pattern_counts(b, n, bq, bk, blk_ptr, blk_cols, counts)
            indptr = indptr_from_counts(counts)
            check_size(int(indptr[-1]), max_nnz, "number of allowed (query, key) pairs")
            indices = np.empty(int(indptr[-1]), dtype=np.int64)
            block_pattern_fill(b, n, bq, bk, blk_ptr, blk_cols, indptr, indices)
        elif self.kind in ("windowed", "strided", "full"):
            if self.kind == "full":
                window, stride, g, off = b + n, 0, np.zeros(0, dtype=np.int64), 0
            else:
                window, stride, g, off = spec["window"], spec["stride"], spec["globals"], spec["offset"]
            if g.size and g[-1] >= n:
                raise InvalidInputError(
                    f"global token {int(g[-1])} is out of range for {n} keys (expected 0..{n - 1})")
            is_global = np.zeros(n, dtype=np.bool_)
            is_global[g] = True
            counts = np.empty(b, dtype=np.int64)
            window_pattern_counts(b, n, off, window, stride, g, is_global, counts)
            indptr = indptr_from_counts(counts)
            check_size(int(indptr[-1]), max_nnz, "number of allowed (query, key) pairs")
            indices = np.empty(int(indptr[-1]), dtype=np.int64)
            window_pattern_fill(b, n, off, window, stride, g, is_global, indptr, indices)
        else:  # pragma: no cover - dense/csr always have a cache for their fixed shape
            raise InvalidInputError(f"{self.kind} mask has no CSR for shape {key}")
        self._set_cache(key, indptr, indices)
        return indptr, indices

    def nnz(self, num_queries: int | None = None, num_keys: int | None = None) -> int:
        """Number of allowed pairs (for the fixed shape, or the given one)."""
        b, n = self._resolve_shape(num_queries, num_keys)
        return int(self.csr(b, n, max_nnz=None)[1].shape[0])

    def to_coo(self, num_queries: int | None = None, num_keys: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` of the allowed pairs, sorted by row then key."""
        b, n = self._resolve_shape(num_queries, num_keys)
        indptr, indices = self.csr(b, n, max_nnz=None)
        rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(indptr))
        return rows, indices.copy()

    def to_dense(self, num_queries: int | None = None, num_keys: int | None = None) -> np.ndarray:
        """The boolean ``[B, N]`` mask (for inspection and small cases only: O(B*N) memory)."""
        b, n = self._resolve_shape(num_queries, num_keys)
        rows, cols = self.to_coo(b, n)
        out = np.zeros((b, n), dtype=bool)
        out[rows, cols] = True
        return out

    def _resolve_shape(self, num_queries: int | None, num_keys: int | None) -> tuple[int, int]:
        if num_queries is None or num_keys is None:
            if self.shape is None:
                raise InvalidInputError(
                    f"this {self.kind} mask has no fixed shape; pass num_queries and num_keys")
            return self.shape
        return int(num_queries), int(num_keys)

    def __repr__(self) -> str:
        detail = {k: (v.tolist() if k == "globals" and v.size <= 8 else v)
                  for k, v in self._spec.items() if k == "globals" or not isinstance(v, np.ndarray)}
        return f"SparseMask(kind={self.kind!r}, shape={self.shape}, {detail})"


@dataclass(frozen=True)
class SparseWeights:
    """Attention weights of the last call in COO form; unpacks as ``rows, cols, values``."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.rows, self.cols, self.values))

    def to_dense(self) -> np.ndarray:
        """Dense ``[B, N]`` weights with zeros off the pattern (small cases only)."""
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out[self.rows, self.cols] = self.values
        return out


class SparseAttention(Module):
    """Scaled dot-product attention over a sparse set of allowed (query, key) pairs.

    ``forward``/``forward_batch`` attend over ``mask`` given at construction (a pattern
    such as ``SparseMask.windowed(8)``), or over every key when it is ``None``. The other
    entry points take the pattern per call. Work is O(nnz * d) for every pattern.
    """

    def __init__(self, dim: int, scale: float | None = None, max_keys: int | None = DEFAULT_MAX_KEYS,
                 mask: SparseMask | None = None, on_empty: str = "zero",
                 max_nnz: int | None = DEFAULT_MAX_NNZ, score_block: tuple[int, int] = (1024, 4096)):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.scale = 1.0 / float(np.sqrt(self.dim)) if scale is None else check_positive_float(scale, "scale")
        self.max_keys = None if max_keys is None else check_positive_int(max_keys, "max_keys")
        self.max_nnz = None if max_nnz is None else check_positive_int(max_nnz, "max_nnz")
        if mask is not None and not isinstance(mask, SparseMask):
            raise InvalidInputError(f"mask must be a SparseMask or None, got {type(mask).__name__}")
        self.mask = mask
        if on_empty not in ("zero", "raise"):
            raise InvalidInputError(f"on_empty must be 'zero' or 'raise', got {on_empty!r}")
        self.on_empty = on_empty
        if len(score_block) != 2:
            raise InvalidInputError("score_block must be (query_rows, key_cols)")
        self.score_block = (check_positive_int(score_block[0], "score_block[0]"),
                            check_positive_int(score_block[1], "score_block[1]"))
        self._weights: SparseWeights | None = None
        self._last: tuple | None = None
        self._pattern_cache: tuple | None = None
        self._saved: tuple | None = None
        self._one = False
        self._empty: np.ndarray | None = None

    # -- the Attention trait ----------------------------------------------------------------
    def forward(self, query: Any, keys: Any, values: Any) -> np.ndarray:
        """One query ``[D]`` -> ``[V]`` (over the layer's mask, or all keys)."""
        q, k, v = self._inputs(query, keys, values, query_ndim=1)
        out = self._run(q[None, :], k, v, self.mask or SparseMask.full())[0]
        self._one = True
        return out

    def forward_batch(self, queries: Any, keys: Any, values: Any) -> np.ndarray:
        """Queries ``[B, D]`` -> ``[B, V]`` (over the layer's mask, or all keys)."""
        q, k, v = self._inputs(queries, keys, values, query_ndim=2)
        return self._run(q, k, v, self.mask or SparseMask.full())

    # -- the SparseAttention trait ------------------------------------------------------------
    def forward_sparse(self, queries: Any, keys: Any, values: Any, mask: Any) -> np.ndarray:
        """Attention over an explicit mask (a :class:`SparseMask`, or a boolean ``[B, N]`` array).

        ``queries`` may be ``[D]`` (one query; the mask then has one row) or ``[B, D]``.
        """
        if not isinstance(mask, SparseMask):
            mask = SparseMask.dense(np.atleast_2d(np.asarray(mask)) if np.asarray(mask).ndim == 1 else mask)
        return self._dispatch(queries, keys, values, mask)

    def forward_windowed(self, queries: Any, keys: Any, values: Any, window_size: int,
                         global_tokens: Sequence[int] = (), query_offset: int = 0) -> np.ndarray:
        """Local attention: query ``i`` (position ``i + query_offset``) attends to keys ``j`` with
        ``|i + query_offset - j| <= window_size``, plus ``global_tokens``."""
        window_size = check_positive_int(window_size, "window_size", allow_zero=True)
        key = ("windowed", window_size, tuple(np.atleast_1d(np.asarray(global_tokens)).tolist()), query_offset)
        return self._dispatch(queries, keys, values, self._pattern(
            key, lambda: SparseMask.windowed(window_size, global_tokens, query_offset=query_offset)))

    def forward_strided(self, queries: Any, keys: Any, values: Any, window_size: int, stride: int,
                        global_tokens: Sequence[int] = (), query_offset: int = 0) -> np.ndarray:
        """Longformer-style: local window + keys at multiples of ``stride`` away + global tokens."""
        window_size = check_positive_int(window_size, "window_size", allow_zero=True)
        stride = check_positive_int(stride, "stride")
        key = ("strided", window_size, stride, tuple(np.atleast_1d(np.asarray(global_tokens)).tolist()),
               query_offset)
        return self._dispatch(queries, keys, values, self._pattern(
            key, lambda: SparseMask.strided(window_size, stride, global_tokens, query_offset=query_offset)))

    def forward_topk(self, queries: Any, keys: Any, values: Any, k: int) -> np.ndarray:
        """Per query, attention over the ``k`` keys with the highest scores (exact; ties go to the
        lower key index). Scores are computed in ``score_block`` tiles, so memory is
        O(B*k + tile), never ``[B, N]``."""
        one = safe_ndim(queries) == 1
        q, kk, v = self._inputs(queries, keys, values, query_ndim=1 if one else 2)
        if one:
            q = q[None, :]
        n = kk.shape[0]
        k = check_positive_int(k, "k")
        if k > n:
            raise InvalidInputError(f"k={k} is larger than the number of keys ({n}); expected 1 <= k <= {n}")
        b = q.shape[0]
        check_size(b * k, self.max_nnz, "number of allowed (query, key) pairs (B * k)")
        top_vals = np.empty((b, k), dtype=q.dtype)
        top_idx = np.empty((b, k), dtype=np.int64)
        qb, kb = self.score_block
        for qs in range(0, b, qb):
            qe = min(qs + qb, b)
            q_blk = q[qs:qe]
            for ks in range(0, n, kb):
                ke = min(ks + kb, n)
                scores = q_blk @ kk[ks:ke].T
                topk_merge(scores, ks, ks, top_vals[qs:qe], top_idx[qs:qe])
        top_idx.sort(axis=1)
        mask = SparseMask.from_csr(np.arange(b + 1, dtype=np.int64) * k, top_idx.reshape(-1), (b, n))
        out = self._run(q, kk, v, mask)
        self._one = one
        return out[0] if one else out

    # -- results ------------------------------------------------------------------------------
    def attention_weights(self) -> SparseWeights | None:
        """The last call's weights as COO (``rows, cols, values = att.attention_weights()``),
        sorted by row then key; ``None`` before the first call."""
        if self._weights is None and self._last is not None:
            indptr, indices, weights, shape = self._last
            rows = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(indptr))
            self._weights = SparseWeights(rows, indices, weights, shape)
        return self._weights

    def empty_rows(self) -> np.ndarray | None:
        """Boolean ``[B]``: True for queries of the last call that had no allowed key
        (their output row is zero)."""
        return self._empty

    def reset(self) -> None:
        self._pattern_cache = None
        self._last = None
        self._saved = None
        self._weights = None
        self._empty = None

    def config(self) -> AttentionConfig:
        return AttentionConfig(attention_type="sparse", dim=self.dim, num_heads=1,
                               scale=self.scale, max_keys=self.max_keys)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, scale={self.scale:.6g}, mask={self.mask!r}"

    # -- internals ---------------------------------------------------------------------------
    def _inputs(self, queries: Any, keys: Any, values: Any, query_ndim: int):
        q, k, v = attention_inputs(queries, keys, values, max_keys=self.max_keys, query_ndim=query_ndim)
        if q.shape[-1] != self.dim:
            raise DimensionMismatchError(self.dim, q.shape[-1], "query dimension (the layer's dim)")
        return q, k, v

    def _pattern(self, key: tuple, make) -> SparseMask:
        """The pattern mask for ``key``, reused from the previous call when its parameters match
        (the mask keeps the CSR of its last shape, so repeated calls skip regeneration)."""
        cached = self._pattern_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        mask = make()
        self._pattern_cache = (key, mask)
        return mask

    def _dispatch(self, queries: Any, keys: Any, values: Any, mask: SparseMask) -> np.ndarray:
        one = safe_ndim(queries) == 1
        q, k, v = self._inputs(queries, keys, values, query_ndim=1 if one else 2)
        out = self._run(q[None, :] if one else q, k, v, mask)
        self._one = one
        return out[0] if one else out

    def _run(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: SparseMask) -> np.ndarray:
        b, n = q.shape[0], k.shape[0]
        indptr, indices = mask.csr(b, n, max_nnz=self.max_nnz)
        counts = np.diff(indptr)
        empty = counts == 0
        if self.on_empty == "raise" and empty.any():
            first = int(np.flatnonzero(empty)[0])
            raise InvalidInputError(
                f"query {first} has no allowed key under the {mask.kind} mask "
                f"({int(empty.sum())} such queries); use on_empty='zero' for zero outputs")
        out = np.empty((b, v.shape[1]), dtype=q.dtype)
        weights = np.empty(indices.shape[0], dtype=q.dtype)
        csr_attention(q, k, v, indptr, indices, q.dtype.type(self.scale), out, weights)
        self._last = (indptr, indices, weights, (b, n))
        self._saved = (q, k, v)
        self._weights = None  # built on demand by attention_weights()
        self._empty = empty
        self._one = False
        return out

    # -- training ------------------------------------------------------------------------------
    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradients of the last call: ``(grad_queries, grad_keys, grad_values)``.

        ``grad_output`` has the shape of that call's output. The allowed pattern (including
        a top-k selection) is treated as fixed. Work is O(nnz * (d + dv)) on two kernels:
        one over query rows (softmax backward, query gradients), one over keys through the
        transposed pattern (key and value gradients).
        """
        if self._last is None or self._saved is None:
            raise NotFittedError("backward() needs a forward call first")
        q, k, v = self._saved
        indptr, indices, weights, (b, n) = self._last
        want = (v.shape[1],) if self._one else (b, v.shape[1])
        g = as_float_array(grad_output, "grad_output", shape=want, dtype=q.dtype)
        g = g.reshape(b, v.shape[1])
        grad_q = np.empty_like(q)
        grad_s = np.empty_like(weights)
        csr_attention_backward_rows(q, k, v, indptr, indices, weights, q.dtype.type(self.scale), g,
                                    grad_q, grad_s)
        colptr = np.empty(n + 1, dtype=np.int64)
        perm = np.empty(indices.shape[0], dtype=np.int64)
        csr_transpose_perm(indices, n, colptr, perm)
        grad_k = np.empty_like(k)
        grad_v = np.empty_like(v)
        csr_attention_backward_keys(q, g, indptr, colptr, perm, weights, grad_s, grad_k, grad_v)
        return (grad_q[0] if self._one else grad_q), grad_k, grad_v
