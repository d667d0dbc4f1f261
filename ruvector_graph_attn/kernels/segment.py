"""Segment (per-target) kernels for message passing: CSR ordering, segment softmax,
scatter sum/mean/max, gather, and the fused per-edge GAT/GATv2 kernels.

All functions are plain Numba functions (``@njit(cache=True)``), parallel over
*targets* (or over sources for the transposed backward pass) with ``prange``. Work is
O(E * width); nothing is N x N; there are no Python loops over nodes or edges.
Float arrays may be float32 or float64 (each dtype compiles once and is cached on disk);
index arrays are int64. Callers validate inputs (``graph/utils.py`` and the layers do);
the kernels trust shapes.

CSR layout (built by ``kernels.csr.csr_from_index``, wrapped by ``graph.utils.build_csr``)
-----------------------------------------------------------------------------------------
Given the group index ``index[E]`` (usually the targets ``edge_index[1]``) and ``N``
groups:

* ``indptr[N + 1]`` int64: the edges of group ``i`` are positions ``indptr[i]:indptr[i+1]``;
* ``perm[E]`` int64: a *stable* ordering of the edges by group, so ``perm[k]`` is the
  original edge id at CSR position ``k``. Duplicate edges stay separate entries
  (separate messages), in their original relative order;
* ``col[E]`` int64 (optional, per kernel): the *other* endpoint at CSR position ``k``,
  i.e. ``other[perm]`` (for a target CSR, ``col = edge_index[0][perm]``, the sources).

Per-edge arrays (``scores``, ``alpha``, ``messages``) are always in ORIGINAL edge order
(indexed through ``perm``), so results line up with the caller's ``edge_index``.

API summary
-----------
``csr_from_index``, ``csr_with_self_loops``: the CSR builders of ``kernels/csr.py``, re-exported.
``segment_softmax(scores[E,H], indptr, perm) -> alpha[E,H]``
    softmax over the edges of each group, per column; ``max`` subtracted per group
    (safe for extreme values). A group whose scores are all ``-inf`` gets weights 0
    (PyG would give NaN); empty groups produce nothing.
``segment_softmax_neg_sq(dist[E], perm, indptr, inv_temperature) -> alpha[E]``
    the squared-distance variant, ``softmax(-dist**2 / T)`` per group (geometric attention).
``segment_softmax_runs(logits[M], ptr) -> weights[M]``
    softmax over contiguous runs ``ptr[p]:ptr[p+1]`` (no permutation).
``softmax_segment(src, out, lo, hi, perm, direct, scale)``
    the inline one-segment softmax all of the above (and the fused re-ranking and edge
    attention kernels) are written with.
``segment_softmax_backward(alpha[E,H], grad_alpha[E,H], indptr, perm) -> grad_scores[E,H]``
    ``alpha * (g - sum_group(alpha * g))``.
``segment_sum(values[E,H], indptr, perm) -> [N,H]``  sum of per-edge values per group.
``scatter_sum(msg[E,F], indptr, perm) -> out[N,F]``; empty group -> 0.
``scatter_mean(msg[E,F], indptr, perm) -> out[N,F]``; empty group -> 0 (PyG: sum / max(count, 1)).
``scatter_max(msg[E,F], indptr, perm) -> (out[N,F], argmax[N,F])``; empty group -> 0
    and argmax -1 (PyG's ``scatter(reduce="max")`` gives 0 for empty groups). Ties: the
    argmax is the FIRST edge in CSR order (= the lowest original edge id, because the CSR
    order is stable).
``scatter_min`` likewise, with ``argmin``.
``scatter_sum_backward(grad_out[N,F], index[E]) -> grad_msg[E,F]``  (= ``grad_out[index]``).
``scatter_mean_backward(grad_out[N,F], index[E], indptr) -> grad_msg[E,F]``.
``scatter_arg_backward(grad_out[N,F], arg[N,F], num_edges) -> grad_msg[E,F]``
    backward of max/min routing the whole gradient to the recorded arg edge
    (torch_scatter convention).
``scatter_max_backward_split(grad_out, msg, out, indptr, perm) -> grad_msg``
    backward of max that splits the gradient evenly among tied edges (the convention of
    ``torch.Tensor.scatter_reduce(reduce="amax")``, which PyG uses without torch_scatter).
``gather_rows(x[N,F], idx[M]) -> x[idx]`` (parallel copy).
``weighted_aggregate(alpha[E,H], xs[N,H,C], indptr, perm, col) -> out[N_t,H,C]``
    ``out[i,h,:] = sum_{e -> i} alpha[e,h] * xs[src[e],h,:]`` without materialising
    ``[E,H,C]`` messages.
``weighted_aggregate_backward_alpha(grad_out[N_t,H,C], xs, indptr, perm, col) -> grad_alpha[E,H]``.
``weighted_aggregate_backward_x(grad_out, alpha, s_indptr, s_perm, s_col, num_src) -> grad_xs[N_s,H,C]``
    needs the CSR by SOURCE (``s_col`` = targets in source order).
``gat_fused_forward(a_src, a_dst, a_edge, xs, indptr, perm, col, slope, need_alpha) -> (out, alpha)``
    one prange sweep over targets: per-edge score, leaky relu, segment softmax and the
    weighted aggregation (GATConv without attention dropout); ``alpha`` only if asked.

The gathers prefetch the source rows ``_AHEAD`` CSR positions ahead (``llvm.prefetch``
through a small Numba intrinsic): the random row reads then overlap instead of each
waiting for memory, about 25-30% faster on the 1M-edge benchmark graph.
``gat_fused_backward_targets(grad_out, alpha, drop_scale, xs, a_src, a_dst, a_edge, indptr, perm, col, slope)
    -> (grad_pre, grad_a_dst)`` and ``gat_fused_backward_sources(...) -> (grad_xs, grad_a_src)``.
``gatv2_fused_forward(xl[N,H,C], xr[N_t,H,C], ee[E,H,C] | empty, att[H,C], indptr, perm, col, slope,
    need_alpha) -> (out, alpha)``  (GATv2Conv: ``alpha = softmax(att . leaky_relu(xl[j] + xr[i] + ee))``).
``gatv2_fused_backward_targets(...)``, ``gatv2_backward_sources(...)``: the GATv2 backward.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .csr import csr_from_index, csr_with_self_loops  # noqa: F401  (re-exported: old import path)

_FM = {"nsz", "arcp", "contract", "reassoc"}  # no nnan/ninf: -inf must survive in softmax
#: how many CSR positions ahead the gathers prefetch their source rows
_AHEAD = 16


@intrinsic
def _prefetch_line(typingctx, arr, row, byte_offset):
    """Emit ``llvm.prefetch`` (read, high locality) for the address of ``arr[row]`` plus
    ``byte_offset`` bytes. A prefetch never faults; it only starts a cache fill, so the
    random row reads of a gather overlap instead of waiting one after the other."""
    if not isinstance(arr, types.Array):
        return None
    sig = types.void(arr, row, byte_offset)

    def codegen(context, builder, signature, args):
        aryty, rowty, offty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        stride0 = builder.extract_value(ary.strides, 0)
        offset = builder.add(builder.mul(context.cast(builder, args[1], rowty, types.intp), stride0),
                             context.cast(builder, args[2], offty, types.intp))
        addr = builder.add(builder.ptrtoint(ary.data, ir.IntType(64)), offset)
        ptr = builder.inttoptr(addr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always")
def _prefetch_row(arr, row):
    """Prefetch the first (up to) four 64-byte lines of row ``row`` of a C-contiguous
    array; longer rows are streamed sequentially, which the hardware prefetcher follows.
    (A fixed trip count unrolls; a loop to ``strides[0]`` measured 25% slower.)"""
    nbytes = arr.strides[0]
    _prefetch_line(arr, row, 0)
    if nbytes > 64:
        _prefetch_line(arr, row, 64)
    if nbytes > 128:
        _prefetch_line(arr, row, 128)
    if nbytes > 192:
        _prefetch_line(arr, row, 192)


@njit(inline="always")
def _sum_rows_into(out, i, msg, lo, hi, perm):
    """``out[i, :] += msg[perm[k], :]`` for the CSR positions ``lo:hi`` (prefetching ahead)."""
    e_ = perm.shape[0]
    f = msg.shape[1]
    for k in range(lo, hi):
        if k + _AHEAD < e_:
            _prefetch_row(msg, perm[k + _AHEAD])
        e = perm[k]
        for c in range(f):
            out[i, c] += msg[e, c]


@njit(inline="always")
def _axpy_head(out, i, h, a, x, j):
    """``out[i, h, :] += a * x[j, h, :]``."""
    for c in range(x.shape[2]):
        out[i, h, c] += a * x[j, h, c]


@njit(inline="always")
def _dot_head(a, i, b, j, h):
    """``<a[i, h, :], b[j, h, :]>`` (accumulated from 0.0, as the kernels always did)."""
    s = 0.0
    for c in range(b.shape[2]):
        s += a[i, h, c] * b[j, h, c]
    return s


@njit(inline="always")
def _fused_forward_buffers(n, e_, x, need_alpha):
    """Work arrays of the fused GAT/GATv2 forward, in ``x.dtype`` (``x`` is ``[N_s,H,C]``):
    ``out[n,H,C]`` (zeros), the CSR-ordered score scratch ``sc[e_,H]``, ``alpha[e_ or 0,H]``,
    the per-target maximum ``mx[n,H]`` and normaliser ``sm[n,H]`` (zeros)."""
    h_ = x.shape[1]
    out = np.zeros((n, h_, x.shape[2]), dtype=x.dtype)
    sc = np.empty((e_, h_), dtype=x.dtype)
    alpha = np.empty((e_ if need_alpha else 0, h_), dtype=x.dtype)
    mx = np.empty((n, h_), dtype=x.dtype)
    sm = np.zeros((n, h_), dtype=x.dtype)
    return out, sc, alpha, mx, sm


@njit(inline="always")
def _softmax_aggregate_target(i, lo, hi, perm, col, sc, mx, sm, x, out, alpha, need_alpha):
    """Pass 2 of the fused GAT/GATv2 forward for target ``i``: turn the CSR-ordered scores
    ``sc[lo:hi]`` into ``exp(s - mx[i])``, accumulate them into ``sm[i]`` and the weighted
    rows ``x[col[k]]`` into ``out[i]``, normalise ``out[i]`` (``sm[i]`` becomes ``1 / sum``)
    and, when ``need_alpha``, write the coefficients to ``alpha`` in original edge order."""
    h_ = x.shape[1]
    c_ = x.shape[2]
    for k in range(lo, hi):
        j = col[k]
        for h in range(h_):
            w = np.exp(sc[k, h] - mx[i, h])
            sc[k, h] = w
            sm[i, h] += w
            _axpy_head(out, i, h, w, x, j)
    for h in range(h_):
        inv = 1.0 / sm[i, h]
        sm[i, h] = inv
        for c in range(c_):
            out[i, h, c] *= inv
    if need_alpha:
        for k in range(lo, hi):
            e = perm[k]
            for h in range(h_):
                alpha[e, h] = sc[k, h] * sm[i, h]


@njit(inline="always")
def _alpha_grad_target(i, lo, hi, perm, col, grad_out, x, alpha, drop_scale, has_drop, g_alpha, dot):
    """Pass 1 of the fused GAT/GATv2 target backward for target ``i``: ``g_alpha[e, h] =
    <grad_out[i, h], x[col[k], h]>`` (times ``drop_scale[e, h]`` when ``has_drop``) and
    ``dot[h] += alpha[e, h] * g_alpha[e, h]`` over the CSR positions ``lo:hi``."""
    e_ = perm.shape[0]
    h_ = x.shape[1]
    for k in range(lo, hi):
        if k + _AHEAD < e_:
            _prefetch_row(x, col[k + _AHEAD])
        e = perm[k]
        j = col[k]
        for h in range(h_):
            s = _dot_head(grad_out, i, x, j, h)
            if has_drop:
                s *= drop_scale[e, h]
            g_alpha[e, h] = s  # d loss / d alpha (pre-dropout)
            dot[h] += alpha[e, h] * s


@njit(cache=True, parallel=True)
def gather_rows(x, idx):
    """``x[idx]`` for a 2-D ``x`` (parallel row copy)."""
    m = idx.shape[0]
    f = x.shape[1]
    out = np.empty((m, f), dtype=x.dtype)
    for k in prange(m):
        r = idx[k]
        for c in range(f):
            out[k, c] = x[r, c]
    return out


# --------------------------------------------------------------------------------------
# segment softmax
# --------------------------------------------------------------------------------------
@njit(inline="always")
def softmax_segment(src, out, lo, hi, perm, direct, scale):
    """Softmax over one segment: ``out[p] = exp(scale * (src[p] - m)) / sum`` for the
    positions ``p = perm[k]`` (``direct``: ``p = k``), ``k in lo..hi``, ``m`` their maximum.

    ``src`` and ``out`` are 1-D (columns of 2-D arrays work) and may be the same array (in
    place). A segment whose logits are all ``-inf`` gets weights 0; an empty one is left
    alone. The one softmax loop of every segment kernel (layers, re-ranking, manifold
    attention, traversal)."""
    m = -np.inf
    for k in range(lo, hi):
        v = src[k if direct else perm[k]]
        if v > m:
            m = v
    if m == -np.inf:
        for k in range(lo, hi):
            out[k if direct else perm[k]] = 0.0
        return
    s = 0.0
    for k in range(lo, hi):
        e = k if direct else perm[k]
        w = np.exp((src[e] - m) * scale)
        out[e] = w
        s += w
    inv = 1.0 / s
    for k in range(lo, hi):
        e = k if direct else perm[k]
        out[e] = out[e] * inv


@njit(cache=True, parallel=True, fastmath=_FM)
def segment_softmax(scores, indptr, perm):
    """Softmax of ``scores[E, H]`` over the edges of each group (per column)."""
    n = indptr.shape[0] - 1
    h_ = scores.shape[1]
    out = np.zeros_like(scores)
    for i in prange(n):
        for h in range(h_):
            softmax_segment(scores[:, h], out[:, h], indptr[i], indptr[i + 1], perm, False, 1.0)
    return out


@njit(cache=True, parallel=True)
def segment_softmax_neg_sq(dist, perm, indptr, inv_temperature):
    """Per-segment ``softmax(-dist**2 / T)`` (``inv_temperature = 1 / T``), in float64.

    ``perm`` lists edge ids grouped by segment (target node); segment ``i`` owns
    ``perm[indptr[i]:indptr[i+1]]``. Returns weights indexed by edge id (``[E]``, the dtype
    of ``dist``)."""
    nseg = indptr.shape[0] - 1
    logit = np.empty(dist.shape[0])
    for s in prange(nseg):
        for t in range(indptr[s], indptr[s + 1]):
            d = float(dist[perm[t]])
            logit[perm[t]] = -d * d * inv_temperature
        softmax_segment(logit, logit, indptr[s], indptr[s + 1], perm, False, 1.0)
    return logit.astype(dist.dtype)


@njit(cache=True, parallel=True)
def segment_softmax_runs(logits, ptr):
    """Softmax of 1-D ``logits`` over the contiguous runs ``ptr[p]:ptr[p+1]``."""
    out = np.empty_like(logits)
    for p in prange(ptr.shape[0] - 1):
        softmax_segment(logits, out, ptr[p], ptr[p + 1], ptr, True, 1.0)
    return out


@njit(cache=True, parallel=True, fastmath=_FM)
def segment_softmax_backward(alpha, grad_alpha, indptr, perm):
    """Gradient of :func:`segment_softmax`: ``alpha * (g - sum_group(alpha * g))``."""
    n = indptr.shape[0] - 1
    h_ = alpha.shape[1]
    out = np.zeros_like(alpha)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        for h in range(h_):
            s = 0.0
            for k in range(lo, hi):
                e = perm[k]
                s += alpha[e, h] * grad_alpha[e, h]
            for k in range(lo, hi):
                e = perm[k]
                out[e, h] = alpha[e, h] * (grad_alpha[e, h] - s)
    return out


# --------------------------------------------------------------------------------------
# scatter aggregation
# --------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, fastmath=_FM)
def scatter_sum(msg, indptr, perm):
    """``out[i] = sum_{e in group i} msg[e]``; empty groups give 0."""
    n = indptr.shape[0] - 1
    f = msg.shape[1]
    out = np.zeros((n, f), dtype=msg.dtype)
    for i in prange(n):
        _sum_rows_into(out, i, msg, indptr[i], indptr[i + 1], perm)
    return out


@njit(cache=True, parallel=True, fastmath=_FM)
def scatter_mean(msg, indptr, perm):
    """``out[i] = mean_{e in group i} msg[e]``; empty groups give 0."""
    n = indptr.shape[0] - 1
    f = msg.shape[1]
    out = np.zeros((n, f), dtype=msg.dtype)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        if hi == lo:
            continue
        _sum_rows_into(out, i, msg, lo, hi, perm)
        inv = 1.0 / (hi - lo)
        for c in range(f):
            out[i, c] *= inv
    return out


@njit(cache=True, parallel=True)
def _scatter_extreme(msg, indptr, perm, sign):
    n = indptr.shape[0] - 1
    f = msg.shape[1]
    out = np.zeros((n, f), dtype=msg.dtype)
    arg = np.full((n, f), -1, dtype=np.int64)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        if hi == lo:
            continue
        e0 = perm[lo]
        for c in range(f):
            out[i, c] = msg[e0, c]
            arg[i, c] = e0
        for k in range(lo + 1, hi):
            e = perm[k]
            for c in range(f):
                v = msg[e, c]
                if sign * v > sign * out[i, c]:  # strict: first in CSR order wins ties
                    out[i, c] = v
                    arg[i, c] = e
    return out, arg


@njit(cache=True)
def scatter_max(msg, indptr, perm):
    """Per-group maximum -> ``(out[N,F], argmax[N,F])``; empty group: 0 and -1."""
    return _scatter_extreme(msg, indptr, perm, 1.0)


@njit(cache=True)
def scatter_min(msg, indptr, perm):
    """Per-group minimum -> ``(out[N,F], argmin[N,F])``; empty group: 0 and -1."""
    return _scatter_extreme(msg, indptr, perm, -1.0)


#: backward of scatter_sum: ``grad_msg[e] = grad_out[index[e]]``
scatter_sum_backward = gather_rows
#: sum of per-edge ``values[E, H]`` over each group -> ``[N, H]``
segment_sum = scatter_sum


@njit(cache=True, parallel=True)
def scatter_mean_backward(grad_out, index, indptr):
    """Backward of scatter_mean: ``grad_msg[e] = grad_out[index[e]] / count[index[e]]``."""
    e_ = index.shape[0]
    f = grad_out.shape[1]
    out = np.empty((e_, f), dtype=grad_out.dtype)
    for e in prange(e_):
        i = index[e]
        inv = 1.0 / (indptr[i + 1] - indptr[i])
        for c in range(f):
            out[e, c] = grad_out[i, c] * inv
    return out


@njit(cache=True, parallel=True)
def scatter_arg_backward(grad_out, arg, num_edges):
    """Backward of scatter_max/min routing each gradient to its recorded arg edge."""
    n = grad_out.shape[0]
    f = grad_out.shape[1]
    out = np.zeros((num_edges, f), dtype=grad_out.dtype)
    # each (e, c) has at most one (i, c) pointing at it (an edge belongs to one group)
    for i in prange(n):
        for c in range(f):
            e = arg[i, c]
            if e >= 0:
                out[e, c] += grad_out[i, c]
    return out


@njit(cache=True, parallel=True)
def scatter_max_backward_split(grad_out, msg, out, indptr, perm):
    """Backward of scatter max (or min) splitting the gradient evenly among tied edges."""
    n = indptr.shape[0] - 1
    f = msg.shape[1]
    g = np.zeros_like(msg)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        for c in range(f):
            cnt = 0
            for k in range(lo, hi):
                if msg[perm[k], c] == out[i, c]:
                    cnt += 1
            if cnt == 0:
                continue
            share = grad_out[i, c] / cnt
            for k in range(lo, hi):
                e = perm[k]
                if msg[e, c] == out[i, c]:
                    g[e, c] = share
    return g


# --------------------------------------------------------------------------------------
# GAT helpers
# --------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, fastmath=_FM)
def weighted_aggregate(alpha, xs, indptr, perm, col):
    """``out[i,h,:] = sum_{k in group i} alpha[perm[k],h] * xs[col[k],h,:]``."""
    n = indptr.shape[0] - 1
    h_ = xs.shape[1]
    c_ = xs.shape[2]
    e_ = perm.shape[0]
    out = np.zeros((n, h_, c_), dtype=xs.dtype)
    for i in prange(n):
        for k in range(indptr[i], indptr[i + 1]):
            if k + _AHEAD < e_:
                _prefetch_row(xs, col[k + _AHEAD])
            e = perm[k]
            j = col[k]
            for h in range(h_):
                _axpy_head(out, i, h, alpha[e, h], xs, j)
    return out


@njit(cache=True, parallel=True, fastmath=_FM)
def weighted_aggregate_backward_alpha(grad_out, xs, indptr, perm, col):
    """``grad_alpha[e,h] = <grad_out[dst[e],h,:], xs[src[e],h,:]>`` (target CSR)."""
    n = indptr.shape[0] - 1
    h_ = xs.shape[1]
    e_ = perm.shape[0]
    out = np.zeros((e_, h_), dtype=xs.dtype)
    for i in prange(n):
        for k in range(indptr[i], indptr[i + 1]):
            if k + _AHEAD < e_:
                _prefetch_row(xs, col[k + _AHEAD])
            e = perm[k]
            j = col[k]
            for h in range(h_):
                out[e, h] = _dot_head(grad_out, i, xs, j, h)
    return out


@njit(cache=True, parallel=True, fastmath=_FM)
def weighted_aggregate_backward_x(grad_out, alpha, s_indptr, s_perm, s_col, num_src):
    """``grad_xs[j,h,:] = sum_{e: src[e]=j} alpha[e,h] * grad_out[dst[e],h,:]``.

    ``s_indptr``/``s_perm``/``s_col`` are the CSR by SOURCE (``s_col`` = targets)."""
    h_ = grad_out.shape[1]
    c_ = grad_out.shape[2]
    out = np.zeros((num_src, h_, c_), dtype=grad_out.dtype)
    e_ = s_perm.shape[0]
    for j in prange(num_src):
        for k in range(s_indptr[j], s_indptr[j + 1]):
            if k + _AHEAD < e_:
                _prefetch_row(grad_out, s_col[k + _AHEAD])
            e = s_perm[k]
            i = s_col[k]
            for h in range(h_):
                _axpy_head(out, j, h, alpha[e, h], grad_out, i)
    return out


@njit(cache=True, parallel=True, fastmath=_FM)
def gat_fused_forward(a_src, a_dst, a_edge, xs, indptr, perm, col, slope, need_alpha):
    """GATConv forward in one parallel sweep over targets (no attention dropout).

    ``a_src[N_s,H]``, ``a_dst[N_t,H]``, ``a_edge[E,H]`` (or shape ``(0,H)``), ``xs[N_s,H,C]``.
    Per target: pass 1 computes the leaky-relu scores of its in-edges (kept in a CSR-ordered
    scratch, contiguous) and their maximum; pass 2 accumulates ``exp(s - max) * xs[j]`` and
    the normaliser, reading each source row once; the row is then divided by the sum.
    No ``[E,H,C]`` message array exists. Returns ``out[N_t,H,C]`` (un-biased, heads not
    merged) and, when ``need_alpha``, ``alpha[E,H]`` in original edge order (else ``(0,H)``).
    """
    n = indptr.shape[0] - 1
    h_ = xs.shape[1]
    e_ = perm.shape[0]
    has_edge = a_edge.shape[0] == e_ and e_ > 0
    out, sc, alpha, mx, sm = _fused_forward_buffers(n, e_, xs, need_alpha)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        if lo == hi:
            continue
        for h in range(h_):
            mx[i, h] = -np.inf
        for k in range(lo, hi):
            if k + _AHEAD < e_:  # start the source rows pass 2 will read
                jj = col[k + _AHEAD]
                _prefetch_row(a_src, jj)
                _prefetch_row(xs, jj)
            j = col[k]
            for h in range(h_):
                v = a_src[j, h] + a_dst[i, h]
                if has_edge:
                    v += a_edge[perm[k], h]
                if not v > 0:
                    v *= slope
                sc[k, h] = v
                if v > mx[i, h]:
                    mx[i, h] = v
        _softmax_aggregate_target(i, lo, hi, perm, col, sc, mx, sm, xs, out, alpha, need_alpha)
    return out, alpha


@njit(cache=True, parallel=True, fastmath=_FM)
def gat_fused_backward_targets(grad_out, alpha, drop_scale, xs, a_src, a_dst, a_edge, indptr, perm, col, slope):
    """Target-side GATConv backward in one pass over targets.

    ``alpha`` are the softmax coefficients (before dropout); ``alpha * drop_scale`` are
    the ones the aggregation used (``drop_scale`` is the dropout mask divided by
    ``1 - p``, or ``(0, H)``-shaped when there was no dropout). The pre-activation
    ``a_src[j] + a_dst[i] (+ a_edge[e])`` is recomputed for the leaky-relu slope. Returns
    ``grad_pre[E,H]`` (gradient w.r.t. the pre-activation score) and ``grad_a_dst[N_t,H]``.
    """
    n = indptr.shape[0] - 1
    h_ = xs.shape[1]
    e_ = perm.shape[0]
    has_drop = drop_scale.shape[0] == e_ and e_ > 0
    has_edge = a_edge.shape[0] == e_ and e_ > 0
    grad_pre = np.zeros((e_, h_), dtype=xs.dtype)
    grad_a_dst = np.zeros((n, h_), dtype=xs.dtype)
    dot = np.zeros((n, h_), dtype=xs.dtype)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        if lo == hi:
            continue
        _alpha_grad_target(i, lo, hi, perm, col, grad_out, xs, alpha, drop_scale, has_drop, grad_pre, dot[i])
        for k in range(lo, hi):
            e = perm[k]
            j = col[k]
            for h in range(h_):
                g = alpha[e, h] * (grad_pre[e, h] - dot[i, h])
                v = a_src[j, h] + a_dst[i, h]
                if has_edge:
                    v += a_edge[e, h]
                if not v > 0:
                    g *= slope
                grad_pre[e, h] = g
                grad_a_dst[i, h] += g
    return grad_pre, grad_a_dst


@njit(cache=True, parallel=True, fastmath=_FM)
def gat_fused_backward_sources(grad_out, alpha_used, grad_pre, s_indptr, s_perm, s_col, num_src):
    """Source-side GATConv backward in one pass over sources: returns
    ``grad_xs[N_s,H,C]`` (from the messages) and ``grad_a_src[N_s,H]``."""
    h_ = grad_out.shape[1]
    c_ = grad_out.shape[2]
    gx = np.zeros((num_src, h_, c_), dtype=grad_out.dtype)
    ga = np.zeros((num_src, h_), dtype=grad_out.dtype)
    e_ = s_perm.shape[0]
    for j in prange(num_src):
        for k in range(s_indptr[j], s_indptr[j + 1]):
            if k + _AHEAD < e_:
                _prefetch_row(grad_out, s_col[k + _AHEAD])
            e = s_perm[k]
            i = s_col[k]
            for h in range(h_):
                ga[j, h] += grad_pre[e, h]
                _axpy_head(gx, j, h, alpha_used[e, h], grad_out, i)
    return gx, ga


# --------------------------------------------------------------------------------------
# GATv2
# --------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, fastmath=_FM)
def gatv2_fused_forward(xl, xr, ee, att, indptr, perm, col, slope, need_alpha):
    """GATv2Conv forward in one parallel sweep over targets (no attention dropout).

    ``score[e,h] = sum_c att[h,c] * leaky_relu(xl[j,h,c] + xr[i,h,c] (+ ee[e,h,c]))``,
    ``alpha = segment_softmax(score)``, ``out[i,h,:] = sum_e alpha[e,h] * xl[j,h,:]``.
    ``ee`` is ``[E,H,C]`` or shape ``(0,H,C)``. Scores go to a CSR-ordered scratch (pass 1),
    pass 2 accumulates the un-normalised messages. Returns ``(out[N_t,H,C], alpha)`` with
    ``alpha[E,H]`` in original edge order when ``need_alpha`` (else shape ``(0,H)``).
    """
    n = indptr.shape[0] - 1
    h_ = xl.shape[1]
    c_ = xl.shape[2]
    e_ = perm.shape[0]
    has_edge = ee.shape[0] == e_ and e_ > 0
    out, sc, alpha, mx, sm = _fused_forward_buffers(n, e_, xl, need_alpha)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        if lo == hi:
            continue
        for h in range(h_):
            mx[i, h] = -np.inf
        for k in range(lo, hi):
            if k + _AHEAD < e_:
                _prefetch_row(xl, col[k + _AHEAD])
                if has_edge:
                    _prefetch_row(ee, perm[k + _AHEAD])
            j = col[k]
            e = perm[k]
            for h in range(h_):
                s = xl[j, h, 0] * 0
                for c in range(c_):
                    z = xl[j, h, c] + xr[i, h, c]
                    if has_edge:
                        z += ee[e, h, c]
                    if z < 0:
                        z *= slope
                    s += att[h, c] * z
                sc[k, h] = s
                if s > mx[i, h]:
                    mx[i, h] = s
        _softmax_aggregate_target(i, lo, hi, perm, col, sc, mx, sm, xl, out, alpha, need_alpha)
    return out, alpha


@njit(cache=True, parallel=True, fastmath=_FM)
def gatv2_fused_backward_targets(grad_out, alpha, drop_scale, xl, xr, ee, att, indptr, perm, col, slope,
                                 want_ee):
    """Target-side GATv2Conv backward, one pass over targets.

    Returns ``grad_score[E,H]`` (w.r.t. the pre-softmax score), ``grad_xr[N_t,H,C]``,
    ``grad_att_parts[N_t,H,C]`` (sum over axis 0 gives ``grad att``) and, when
    ``want_ee``, ``grad_ee[E,H,C]`` (else shape ``(0,H,C)``).
    """
    n = indptr.shape[0] - 1
    h_ = xl.shape[1]
    c_ = xl.shape[2]
    e_ = perm.shape[0]
    has_edge = ee.shape[0] == e_ and e_ > 0
    has_drop = drop_scale.shape[0] == e_ and e_ > 0
    gs = np.zeros((e_, h_), dtype=xl.dtype)
    gxr = np.zeros((n, h_, c_), dtype=xl.dtype)
    gatt = np.zeros((n, h_, c_), dtype=xl.dtype)
    gee = np.zeros((e_ if want_ee else 0, h_, c_), dtype=xl.dtype)
    for i in prange(n):
        lo = indptr[i]
        hi = indptr[i + 1]
        if lo == hi:
            continue
        dot = np.zeros(h_, dtype=xl.dtype)
        _alpha_grad_target(i, lo, hi, perm, col, grad_out, xl, alpha, drop_scale, has_drop, gs, dot)
        for k in range(lo, hi):
            e = perm[k]
            j = col[k]
            for h in range(h_):
                g = alpha[e, h] * (gs[e, h] - dot[h])
                gs[e, h] = g
                for c in range(c_):
                    z = xl[j, h, c] + xr[i, h, c]
                    if has_edge:
                        z += ee[e, h, c]
                    if z > 0:
                        gatt[i, h, c] += g * z
                        gz = g * att[h, c]
                    else:
                        gatt[i, h, c] += g * z * slope
                        gz = g * att[h, c] * slope
                    gxr[i, h, c] += gz
                    if want_ee:
                        gee[e, h, c] = gz
    return gs, gxr, gatt, gee


@njit(cache=True, parallel=True, fastmath=_FM)
def gatv2_backward_sources(grad_out, alpha_used, grad_score, xl, xr, ee, att, s_indptr, s_perm, s_col, slope):
    """Source-side GATv2Conv backward, one pass over sources: ``grad_xl[N_s,H,C]``
    (messages + the score path)."""
    num_src = s_indptr.shape[0] - 1
    h_ = xl.shape[1]
    c_ = xl.shape[2]
    e_ = s_perm.shape[0]
    has_edge = ee.shape[0] == e_ and e_ > 0
    gx = np.zeros((num_src, h_, c_), dtype=xl.dtype)
    for j in prange(num_src):
        for k in range(s_indptr[j], s_indptr[j + 1]):
            if k + _AHEAD < e_:
                _prefetch_row(grad_out, s_col[k + _AHEAD])
                _prefetch_row(xr, s_col[k + _AHEAD])
            e = s_perm[k]
            i = s_col[k]
            for h in range(h_):
                a = alpha_used[e, h]
                g = grad_score[e, h]
                for c in range(c_):
                    z = xl[j, h, c] + xr[i, h, c]
                    if has_edge:
                        z += ee[e, h, c]
                    gz = g * att[h, c]
                    if not z > 0:
                        gz *= slope
                    gx[j, h, c] += a * grad_out[i, h, c] + gz
    return gx
