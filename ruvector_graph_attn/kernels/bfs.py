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


@njit(cache=True)
def khop_neighbourhoods(indptr, indices, centres, hops):
    """Members of each centre's neighbourhood within ``hops`` in a CSR adjacency.

    Returns ``(ptr, members, member_hop)``: segment ``ptr[i]:ptr[i+1]`` lists centre ``i``
    first (hop 0), then every node within ``hops`` steps in BFS order, each once.
    """
    n = indptr.shape[0] - 1
    stamp = np.full(n, -1, np.int64)
    c = centres.shape[0]
    ptr = np.zeros(c + 1, np.int64)
    size = max(16, c * 8)
    members = np.empty(size, np.int64)
    mhop = np.empty(size, np.int64)
    count = 0
    for i in range(c):
        ctr = centres[i]
        if count + 1 > size:
            size *= 2
            members = _grown(members, count, size)
            mhop = _grown(mhop, count, size)
        stamp[ctr] = i
        members[count] = ctr
        mhop[count] = 0
        count += 1
        start = count - 1
        for h in range(hops):
            stop = count
            if start == stop:
                break
            for f in range(start, stop):
                u = members[f]
                for k in range(indptr[u], indptr[u + 1]):
                    v = indices[k]
                    if stamp[v] != i:
                        stamp[v] = i
                        if count == size:
                            size *= 2
                            members = _grown(members, count, size)
                            mhop = _grown(mhop, count, size)
                        members[count] = v
                        mhop[count] = h + 1
                        count += 1
            start = stop
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
    size = max(16, n_seeds * 4)
    nodes = np.empty(size, np.int64)
    hop = np.empty(size, np.int64)
    count = 0
    for i in range(n_seeds):
        s = seeds[i]
        if local[s] < 0:
            local[s] = count
            nodes[count] = s
            hop[count] = 0
            count += 1
    esize = max(16, n_seeds * 8)
    src = np.empty(esize, np.int64)
    dst = np.empty(esize, np.int64)
    eid = np.empty(esize, np.int64)
    org = np.empty(esize, np.int64)
    ecount = 0
    start = 0
    for h in range(hops):
        stop = count
        if start == stop:
            break
        for f in range(start, stop):
            u = nodes[f]
            lo = indptr[u]
            hi = indptr[u + 1]
            deg = hi - lo
            if cap >= 0 and deg > cap:
                keys = np.empty(deg, np.uint64)
                for k in range(deg):
                    keys[k] = pair_hash(salt, node_key[u], node_key[nbr[lo + k]])
                order = np.argsort(keys)[:cap]
                picks = np.sort(order) + lo
            else:
                picks = np.arange(lo, hi)
            for t in range(picks.shape[0]):
                k = picks[t]
                v = nbr[k]
                lv = local[v]
                if lv < 0:
                    if count == size:
                        size *= 2
                        nodes = _grown(nodes, count, size)
                        hop = _grown(hop, count, size)
                    lv = count
                    local[v] = lv
                    nodes[count] = v
                    hop[count] = h + 1
                    count += 1
                if ecount + 2 > esize:
                    esize *= 2
                    src = _grown(src, ecount, esize)
                    dst = _grown(dst, ecount, esize)
                    eid = _grown(eid, ecount, esize)
                    org = _grown(org, ecount, esize)
                lu = f
                if e_fwd[k] >= 0:
                    src[ecount] = lu
                    dst[ecount] = lv
                    eid[ecount] = e_fwd[k]
                    org[ecount] = lu
                    ecount += 1
                if e_bwd[k] >= 0:
                    src[ecount] = lv
                    dst[ecount] = lu
                    eid[ecount] = e_bwd[k]
                    org[ecount] = lu
                    ecount += 1
        start = stop
    for i in range(count):
        local[nodes[i]] = -1
    return (nodes[:count].copy(), hop[:count].copy(), src[:ecount].copy(), dst[:ecount].copy(),
            eid[:ecount].copy(), org[:ecount].copy())


#: the old name of :func:`khop_neighbourhoods` (the re-ranking pipeline imports it)
neighbourhoods = khop_neighbourhoods

__all__ = ["khop_neighbourhoods", "khop_members", "csr_expand", "neighbourhoods"]
