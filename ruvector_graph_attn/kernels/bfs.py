"""Breadth-first searches over a CSR adjacency, in one place.

``khop_neighbourhoods(indptr, indices, centres[C], hops) -> (ptr[C+1], members[M], member_hop[M])``
    every centre's own k-hop neighbourhood: segment ``ptr[i]:ptr[i+1]`` lists centre ``i``
    first (hop 0), then each node within ``hops`` steps along the CSR rows, once, in BFS
    order. One visited-stamp array of ``num_nodes`` is reused across the centres; total
    work is the sum of the edges scanned, never ``C x N``. (Re-ranking neighbourhoods over
    the out-CSR; ``GraphAttention.forward_k_hop`` over the in-edge CSR through
    :func:`khop_members`.)
``khop_members(indptr, col, nodes[B], k, num_nodes) -> (owner[M], member[M])``
    the same search as flat (centre index, member) pairs.
``csr_expand(indptr, nbr, e_fwd, e_bwd, seeds, hops, cap, salt, local, node_key)``
    the union expansion of many seeds with a per-node neighbour cap by ``pair_hash``
    (the NetworkX connector's ``expand``; details in its docstring).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .hashing import pair_hash


@njit(inline="always")
def _grown(arr, count, size):
    """A new array of length ``size`` holding ``arr[:count]`` (growth of a scratch buffer)."""
    out = np.empty(size, arr.dtype)
    out[:count] = arr[:count]
    return out


@njit(inline="always")
def _grown2(a, b, count):
    """Both paired buffers doubled, holding their first ``count`` entries (called only when
    full: reassigning arrays on every append costs reference counting in the hot loop)."""
    return _grown(a, count, 2 * a.shape[0]), _grown(b, count, 2 * a.shape[0])


@njit(inline="always")
def _put_edge(src, dst, eid, org, t, s, d, e, o):
    """Write edge ``s -> d`` (graph edge ``e``, expanded by ``o``) at position ``t``; returns ``t + 1``."""
    src[t] = s
    dst[t] = d
    eid[t] = e
    org[t] = o
    return t + 1


@njit(inline="always")
def _expand_levels(indptr, nbr, e_fwd, e_bwd, hops, cap, salt, local, node_key,
                   nodes, hop, count, start, src, dst, eid, org, ecount):
    """The breadth-first levels from the frontier ``nodes[start:count]`` (the one BFS loop of
    both searches below). A node ``v`` is new when ``local[v] < start`` (positions below
    ``start`` belong to earlier, separate searches; -1 = never seen); it is appended to
    ``nodes``/``hop`` and ``local[v]`` set to its position. Edges are emitted only when
    ``e_fwd`` is non-empty. Returns the updated buffers and counts."""
    emit = e_fwd.shape[0] > 0
    base = start
    for h in range(hops):
        stop = count
        if start == stop:
            break
        for f in range(start, stop):
            u = nodes[f]
            lo = indptr[u]
            hi = indptr[u + 1]
            deg = hi - lo
            capped = cap >= 0 and deg > cap
            if capped:
                keys = np.empty(deg, np.uint64)
                for k in range(deg):
                    keys[k] = pair_hash(salt, node_key[u], node_key[nbr[lo + k]])
                picks = np.sort(np.argsort(keys)[:cap]) + lo
            else:
                picks = e_bwd[:0]   # every neighbour, without allocating their positions
            for t in range(picks.shape[0] if capped else deg):
                k = picks[t] if capped else lo + t
                v = nbr[k]
                lv = local[v]
                if lv < base:
                    if count == nodes.shape[0]:
                        nodes, hop = _grown2(nodes, hop, count)
                    lv = count
                    local[v] = lv
                    nodes[count] = v
                    hop[count] = h + 1
                    count += 1
                if not emit:
                    continue
                if ecount + 2 > src.shape[0]:
                    src, dst = _grown2(src, dst, ecount)
                    eid, org = _grown2(eid, org, ecount)
                if e_fwd[k] >= 0:
                    ecount = _put_edge(src, dst, eid, org, ecount, f, lv, e_fwd[k], f)
                if e_bwd[k] >= 0:
                    ecount = _put_edge(src, dst, eid, org, ecount, lv, f, e_bwd[k], f)
        start = stop
    return nodes, hop, count, src, dst, eid, org, ecount


@njit(cache=True)
def khop_neighbourhoods(indptr, indices, centres, hops):
    """Members of each centre's neighbourhood within ``hops`` in a CSR adjacency.

    Returns ``(ptr, members, member_hop)``: segment ``ptr[i]:ptr[i+1]`` lists centre ``i``
    first (hop 0), then every node within ``hops`` steps in BFS order, each once.
    """
    local = np.full(indptr.shape[0] - 1, -1, np.int64)
    c = centres.shape[0]
    ptr = np.zeros(c + 1, np.int64)
    members = np.empty(max(16, c * 8), np.int64)
    mhop = np.empty(members.shape[0], np.int64)
    none = np.empty(0, np.int64)
    count = 0
    for i in range(c):
        start = count
        if count == members.shape[0]:
            members, mhop = _grown2(members, mhop, count)
        local[centres[i]] = count
        members[count] = centres[i]
        mhop[count] = 0
        count += 1
        members, mhop, count, _, _, _, _, _ = _expand_levels(
            indptr, indices, none, none, hops, -1, 0, local, none,
            members, mhop, count, start, none, none, none, none, 0)
        ptr[i + 1] = count
    return ptr, members[:count].copy(), mhop[:count].copy()


@njit(cache=True)
def khop_members(indptr, col, nodes, k, num_nodes):
    """:func:`khop_neighbourhoods` as ``(owner, member)`` pairs (``num_nodes`` = ``len(indptr) - 1``)."""
    ptr, members, _ = khop_neighbourhoods(indptr, col, nodes, k)
    owner = np.empty(members.shape[0], np.int64)
    for b in range(nodes.shape[0]):
        owner[ptr[b]:ptr[b + 1]] = b
    return owner, members


@njit(cache=True)
def csr_expand(indptr, nbr, e_fwd, e_bwd, seeds, hops, cap, salt, local, node_key):
    """Breadth-first frontier expansion over a CSR adjacency.

    ``indptr``/``nbr`` list each node's distinct neighbours in the expansion direction;
    ``e_fwd[k]`` is the id of the graph edge ``u -> nbr[k]`` (or -1) and ``e_bwd[k]`` the id
    of ``nbr[k] -> u`` (or -1), so traversed edges are emitted in the graph's orientation.
    ``seeds`` are global positions (distinct). ``local`` is a scratch array of length
    ``num_nodes`` filled with -1; it is used for global -> local positions and restored to
    all -1 before returning (so callers can keep and reuse it). A node reached at hop ``h < hops`` is
    expanded; when it has more than ``cap`` neighbours (``cap < 0``: no cap) the ``cap``
    neighbours with the smallest ``pair_hash(salt, node_key[u], node_key[v])`` are kept
    (``node_key``: an int64 key per node derived from its database id), so the sample of a
    node depends only on (salt, node) and never on the other seeds.

    Returns ``(nodes, hop, src, dst, eid, org)``: global positions in discovery order
    (seeds first), the hop at which each was reached, and the traversed edges as *local*
    positions into ``nodes`` with their graph edge ids and the local position of the node
    whose expansion traversed them (may contain duplicates when two expanded nodes
    sampled each other; the caller merges them).
    """
    n_seeds = seeds.shape[0]
    nodes = np.empty(max(16, n_seeds * 4), np.int64)
    hop = np.empty(nodes.shape[0], np.int64)
    count = 0
    for i in range(n_seeds):
        s = seeds[i]
        if local[s] < 0:
            local[s] = count
            nodes[count] = s
            hop[count] = 0
            count += 1
    src = np.empty(max(16, n_seeds * 8), np.int64)
    dst = np.empty(src.shape[0], np.int64)
    eid = np.empty(src.shape[0], np.int64)
    org = np.empty(src.shape[0], np.int64)
    nodes, hop, count, src, dst, eid, org, ecount = _expand_levels(
        indptr, nbr, e_fwd, e_bwd, hops, cap, salt, local, node_key,
        nodes, hop, count, 0, src, dst, eid, org, 0)
    for i in range(count):
        local[nodes[i]] = -1
    return (nodes[:count].copy(), hop[:count].copy(), src[:ecount].copy(), dst[:ecount].copy(),
            eid[:ecount].copy(), org[:ecount].copy())


#: the old name of :func:`khop_neighbourhoods` (the re-ranking pipeline imports it)
neighbourhoods = khop_neighbourhoods

__all__ = ["khop_neighbourhoods", "khop_members", "csr_expand", "neighbourhoods"]
