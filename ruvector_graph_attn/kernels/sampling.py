"""Numba kernels for neighbour sampling (mini-batch training) and negative sampling.

Randomness comes from a counter-based hash (splitmix64 of seed, node, draw), so results
are deterministic for a seed and independent of the number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .hashing import rand_below

@njit(cache=True, parallel=True)
def sample_in_edges(indptr, eids, frontier, fanout, seed):
    """For each node of ``frontier``, up to ``fanout`` of its incoming edges, uniformly without
    replacement (all of them when ``fanout < 0`` or the in-degree is at most ``fanout``).

    ``indptr``/``eids`` is the CSR of incoming edges grouped by target. Returns
    ``(out_ptr[len(frontier)+1], edge_ids)``: the edge ids chosen for frontier node ``i`` are
    ``edge_ids[out_ptr[i]:out_ptr[i+1]]``, in CSR order when all are taken.
    """
    m = frontier.shape[0]
    counts = np.zeros(m + 1, dtype=np.int64)
    for i in prange(m):
        v = frontier[i]
        deg = indptr[v + 1] - indptr[v]
        counts[i + 1] = deg if (fanout < 0 or deg <= fanout) else fanout
    for i in range(m):
        counts[i + 1] += counts[i]
    out = np.empty(counts[m], dtype=np.int64)
    for i in prange(m):
        v = frontier[i]
        start = indptr[v]
        deg = indptr[v + 1] - start
        base = counts[i]
        k = counts[i + 1] - base
        if k == deg:
            for j in range(deg):
                out[base + j] = eids[start + j]
        else:
            # partial Fisher-Yates over positions 0..deg-1
            pos = np.arange(deg)
            for j in range(k):
                r = j + rand_below(seed, v, j, deg - j)
                t = pos[j]
                pos[j] = pos[r]
                pos[r] = t
                out[base + j] = eids[start + pos[j]]
    return counts, out


@njit(inline="always")
def _is_sorted_member(sorted_keys, key):
    """Whether ``key`` occurs in the ascending array ``sorted_keys`` (binary search)."""
    nk = sorted_keys.shape[0]
    lo = 0
    hi = nk
    while lo < hi:
        mid = (lo + hi) >> 1
        if sorted_keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo < nk and sorted_keys[lo] == key


@njit(cache=True, parallel=True)
def sample_negative_pairs(num_nodes, count, sorted_keys, seed, max_tries):
    """``count`` random (src, dst) pairs, src != dst, whose key ``src * num_nodes + dst`` is
    not in ``sorted_keys`` (the existing edges), retrying up to ``max_tries`` times per pair;
    a pair that still collides is returned with ``ok = False``."""
    src = np.empty(count, dtype=np.int64)
    dst = np.empty(count, dtype=np.int64)
    ok = np.zeros(count, dtype=np.bool_)
    for i in prange(count):
        for t in range(max_tries):
            u = rand_below(seed, i, 2 * t, num_nodes)
            v = rand_below(seed, i, 2 * t + 1, num_nodes)
            if u == v:
                continue
            if _is_sorted_member(sorted_keys, u * num_nodes + v):
                continue
            src[i] = u
            dst[i] = v
            ok[i] = True
            break
        if not ok[i]:
            src[i] = 0
            dst[i] = 1 % num_nodes
    return src, dst, ok


@njit(cache=True, parallel=True)
def sample_corrupt_tails(num_nodes, heads, k, sorted_keys, seed, max_tries):
    """For each head ``u``, ``k`` random tails ``v != u`` with ``(u, v)`` not an edge (MRR negatives)."""
    m = heads.shape[0]
    out = np.empty((m, k), dtype=np.int64)
    for i in prange(m):
        u = heads[i]
        for j in range(k):
            v = (u + 1) % num_nodes
            for t in range(max_tries):
                c = rand_below(seed, i, j * max_tries + t, num_nodes)
                if c == u:
                    continue
                if _is_sorted_member(sorted_keys, u * num_nodes + c):
                    continue
                v = c
                break
            out[i, j] = v
    return out
