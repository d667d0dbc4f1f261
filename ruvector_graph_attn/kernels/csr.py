"""CSR construction, in one place: every grouping of edges or pairs by one endpoint in the
library goes through these functions.

Numba kernels (stable counting sorts, O(E + N)):

``csr_from_index(index[E], num_groups) -> (indptr[N+1], perm[E])``
    the edges of group ``i`` are ``perm[indptr[i]:indptr[i+1]]`` (original edge ids, in
    their original relative order: duplicates stay separate entries).
``csr_of_pairs(src[E], dst[E], num_nodes) -> (indptr, indices, order)``
    the adjacency ``src -> dst``: row ``u`` lists ``indices[indptr[u]:indptr[u+1]]`` with
    ``indices[t] = dst[order[t]]`` (``order`` is ``perm`` of ``csr_from_index(src)``).
``csr_grouped(index[E], other[E], num_groups) -> (indptr[N+1], perm[E], col[E])``
    ``csr_from_index`` and ``col[t] = other[perm[t]]`` in the same two passes (no separate
    gather): the layers' CSR (``graph.utils.build_csr``).
``fingerprint(a, key=0) -> (h1, h2)``
    two independent 64-bit hashes, keyed by ``key``, of an int64 array's values and positions (parallel, one
    read of the array, ~1 ms for 2M entries): the content key of the layers' CSR cache.
``csr_with_self_loops(src, dst, num_groups, num_loops, remove_loops) -> (indptr, perm, col, keep)``
    the target CSR of "remove self loops, append one loop per node" without building that
    edge list (GATConv/GATv2Conv use it).

numpy helpers (for the connectors' vectorised code):

``indptr_from_counts(counts[N]) -> indptr[N+1]``  (``indptr[0] = 0``, cumulative counts).
``group_runs(key[M]) -> (order[M], starts[R])``
    ``order`` sorts ``key`` stably; ``starts`` are the positions (into the sorted order) where
    a run of equal keys begins, so ``order[starts]`` is the first occurrence of each
    distinct key and ``np.<ufunc>.reduceat(a[order], starts)`` reduces ``a`` per key.
``row_entries(indptr, rows[R]) -> (entries[M], which[M])``
    the flat CSR positions of the rows ``rows`` (in that order, each row's positions in
    order) and, per position, the index into ``rows`` it came from.
``rank_in_runs(sorted_groups[M]) -> rank[M]``
    the 0-based position of each entry inside its run of equal (already grouped) values:
    ``rank < k`` keeps the first ``k`` entries of every group.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _group_offsets(index, num_groups):
    """``indptr[N+1]``: the exclusive prefix sum of the group sizes of ``index``."""
    indptr = np.zeros(num_groups + 1, dtype=np.int64)
    for k in range(index.shape[0]):
        indptr[index[k] + 1] += 1
    for i in range(num_groups):
        indptr[i + 1] += indptr[i]
    return indptr


@njit(cache=True)
def csr_from_index(index, num_groups):
    """Stable counting sort of edges by ``index``: returns ``(indptr[N+1], perm[E])``."""
    indptr = _group_offsets(index, num_groups)
    fill = indptr[:-1].copy()
    perm = np.empty(index.shape[0], dtype=np.int64)
    for k in range(index.shape[0]):
        g = index[k]
        perm[fill[g]] = k
        fill[g] += 1
    return indptr, perm


@njit(cache=True)
def csr_grouped(index, other, num_groups):
    """Stable counting sort of edges by ``index`` with the other endpoint gathered in the
    same pass: ``(indptr[N+1], perm[E], col[E])``, ``col[t] = other[perm[t]]``."""
    e = index.shape[0]
    indptr = _group_offsets(index, num_groups)
    fill = indptr[:-1].copy()
    perm = np.empty(e, dtype=np.int64)
    col = np.empty(e, dtype=np.int64)
    for k in range(e):
        g = index[k]
        p = fill[g]
        perm[p] = k
        col[p] = other[k]
        fill[g] = p + 1
    return indptr, perm, col


@njit(cache=True, parallel=True)
def fingerprint(a, key=np.uint64(0)):
    """``(h1, h2)``: sums over ``k`` of two different 64-bit finalisers (splitmix64 and a
    murmur3-style mix) of ``(a[k] + k * golden) xor key``; order-sensitive through the position
    term, so permuted or shifted arrays hash differently. ``key`` (a secret random 64-bit value
    for a cache) keeps the sums unpredictable, so colliding arrays cannot be built offline."""
    h1 = np.uint64(0)
    h2 = np.uint64(0)
    kk = np.uint64(key)
    flat = a.ravel()
    for k in prange(flat.shape[0]):
        z = (np.uint64(flat[k]) + np.uint64(k + 1) * np.uint64(0x9E3779B97F4A7C15)) ^ kk
        u = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        u = (u ^ (u >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h1 += u ^ (u >> np.uint64(31))
        v = (z ^ (z >> np.uint64(33))) * np.uint64(0xFF51AFD7ED558CCD)
        v = (v ^ (v >> np.uint64(33))) * np.uint64(0xC4CEB9FE1A85EC53)
        h2 += v ^ (v >> np.uint64(33))
    return h1, h2


@njit(cache=True)
def csr_of_pairs(src, dst, num_nodes):
    """CSR of directed pairs ``src -> dst``: ``(indptr [num_nodes + 1], indices [E], order [E])``
    with ``indices[t] = dst[order[t]]``; row ``u`` is ``indptr[u]:indptr[u+1]`` (pairs in input order)."""
    indptr, order = csr_from_index(src, num_nodes)
    indices = np.empty(order.shape[0], np.int64)
    for t in range(order.shape[0]):
        indices[t] = dst[order[t]]
    return indptr, indices, order


@njit(cache=True)
def csr_with_self_loops(src, dst, num_groups, num_loops, remove_loops):
    """CSR by target of the edge list GATConv uses, without building it: the edges
    ``src -> dst`` minus self loops (when ``remove_loops``), then one loop ``(i, i)`` for
    ``i < num_loops`` appended after them (PyG's remove_self_loops + add_self_loops).

    Returns ``(indptr[num_groups+1], perm[E'], col[E'], keep[E_kept])``: ``perm`` holds ids
    in the NEW numbering (kept edges ``0..E_kept-1`` in original order, then the loops
    ``E_kept + i``), so it equals ``csr_from_index`` of the concatenated edge list; ``keep``
    maps new ids of kept edges to original edge ids. One serial O(E + N) pass."""
    e = src.shape[0]
    indptr = np.zeros(num_groups + 1, dtype=np.int64)
    n_keep = 0
    for k in range(e):
        if remove_loops and src[k] == dst[k]:
            continue
        indptr[dst[k] + 1] += 1
        n_keep += 1
    for i in range(num_loops):
        indptr[i + 1] += 1
    for i in range(num_groups):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    total = n_keep + num_loops
    perm = np.empty(total, dtype=np.int64)
    col = np.empty(total, dtype=np.int64)
    keep = np.empty(n_keep, dtype=np.int64)
    new = 0
    for k in range(e):
        if remove_loops and src[k] == dst[k]:
            continue
        g = dst[k]
        pos = fill[g]
        perm[pos] = new
        col[pos] = src[k]
        fill[g] = pos + 1
        keep[new] = k
        new += 1
    for i in range(num_loops):
        pos = fill[i]
        perm[pos] = n_keep + i
        col[pos] = i
        fill[i] = pos + 1
    return indptr, perm, col, keep


def indptr_from_counts(counts: np.ndarray) -> np.ndarray:
    """``indptr[N+1]`` (int64) of groups with ``counts[N]`` members each."""
    indptr = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr


def group_runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, starts)``: the stable sort of ``key`` and where each run of equal keys begins."""
    order = np.argsort(key, kind="stable")
    ks = key[order]
    first = np.ones(ks.size, dtype=bool)
    first[1:] = ks[1:] != ks[:-1]
    return order, np.flatnonzero(first)


def row_entries(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(entries, which)``: CSR positions of ``rows`` and the index into ``rows`` of each."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    which = np.repeat(np.arange(rows.shape[0], dtype=np.int64), counts)
    offs = np.repeat(starts - np.cumsum(counts) + counts, counts)
    return offs + np.arange(total, dtype=np.int64), which


def rank_in_runs(sorted_groups: np.ndarray) -> np.ndarray:
    """Position of each entry inside its run of equal values (values already grouped)."""
    m = sorted_groups.shape[0]
    first = np.ones(m, dtype=bool)
    first[1:] = sorted_groups[1:] != sorted_groups[:-1]
    pos = np.arange(m)
    return pos - np.maximum.accumulate(np.where(first, pos, 0))


__all__ = ["csr_from_index", "csr_grouped", "fingerprint", "csr_of_pairs", "csr_with_self_loops", "indptr_from_counts", "group_runs",
           "row_entries", "rank_in_runs"]
