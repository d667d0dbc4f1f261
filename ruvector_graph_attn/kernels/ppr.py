"""Numba kernels of personalised PageRank over per-query walk graphs (CSR power iteration).

Plain functions on arrays; positions are dense int64 indices of one subgraph.

Each query ``b`` has seeds ``seeds[qptr[b]:qptr[b+1]]`` (subgraph positions) with
personalisation weights (summing to 1). Its walk graph is defined from a traversal adjacency
(CSR ``indptr``/``indices``: ``u -> v`` when expanding ``u`` reached ``v``):

* nodes: every node within ``hops`` BFS steps of the query's seeds;
* edges: ``u -> v`` for each traversal edge whose source is at distance ``< hops``; with
  ``undirected=True`` also its reverse ``v -> u``. Parallel edges count once.

Power iteration (as ``networkx.pagerank`` with ``personalization=p`` and dangling mass
returned to ``p``), ``alpha`` the probability of following an edge::

    x_0 = p;  x_{t+1}[v] = alpha * sum_{u -> v} x_t[u] / outdeg(u)
                           + (alpha * sum_{outdeg(u) = 0} x_t[u] + 1 - alpha) * p[v]
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange
from .bfs import _expand_levels


@njit(cache=True)
def _bfs(indptr, indices, seeds, hops, loc, dist, order):
    """Multi-source BFS up to ``hops``; fills ``loc`` (global -> local), ``dist``, ``order``
    (local -> global). Returns the number of nodes reached. The levels are the shared BFS
    loop of :mod:`.bfs`."""
    count = 0
    for s in seeds:
        if loc[s] < 0:
            loc[s] = count
            order[count] = s
            dist[count] = 0
            count += 1
    none = np.empty(0, np.int64)
    _, _, count, _, _, _, _, _ = _expand_levels(indptr, indices, none, none, hops, -1, 0, loc, none,
                                                order, dist, count, 0, none, none, none, none, 0)
    return count


@njit(cache=True, parallel=True)
def walk_sizes(indptr, indices, qptr, seeds, hops):
    """Number of walk-graph nodes of each query."""
    n = indptr.shape[0] - 1
    B = qptr.shape[0] - 1
    sizes = np.zeros(B, np.int64)
    for b in prange(B):
        loc = np.full(n, -1, np.int64)
        dist = np.empty(n, np.int64)
        order = np.empty(n, np.int64)
        sizes[b] = _bfs(indptr, indices, seeds[qptr[b]:qptr[b + 1]], hops, loc, dist, order)
    return sizes


@njit(cache=True)
def _push(esrc, edst, cnt, a, b):
    """Append edge ``a -> b`` at ``cnt`` (growing the buffers); returns the buffers."""
    if cnt == esrc.shape[0]:
        e2 = np.empty(2 * cnt, np.int64)
        e2[:cnt] = esrc[:cnt]
        e3 = np.empty(2 * cnt, np.int64)
        e3[:cnt] = edst[:cnt]
        esrc, edst = e2, e3
    esrc[cnt] = a
    edst[cnt] = b
    return esrc, edst


@njit(cache=True)
def _ppr_query(b, indptr, indices, rindptr, rindices, undirected, qptr, seeds, weights, hops, alpha,
               iterations, node_ptr, seed_mass, nodes, mass):
    n = indptr.shape[0] - 1
    loc = np.full(n, -1, np.int64)
    dist = np.empty(n, np.int64)
    order = np.empty(n, np.int64)
    m = _bfs(indptr, indices, seeds[qptr[b]:qptr[b + 1]], hops, loc, dist, order)
    # local walk adjacency (row = source), parallel edges once
    cnt = 0
    esrc = np.empty(16, np.int64)
    edst = np.empty(16, np.int64)
    stamp = np.full(m, -1, np.int64)
    for a in range(m):
        u = order[a]
        if dist[a] < hops:
            for k in range(indptr[u], indptr[u + 1]):
                lb = loc[indices[k]]
                if lb >= 0 and stamp[lb] != a:
                    stamp[lb] = a
                    esrc, edst = _push(esrc, edst, cnt, a, lb)
                    cnt += 1
        if undirected:
            for k in range(rindptr[u], rindptr[u + 1]):
                lb = loc[rindices[k]]
                if lb >= 0 and dist[lb] < hops and stamp[lb] != a:
                    stamp[lb] = a
                    esrc, edst = _push(esrc, edst, cnt, a, lb)
                    cnt += 1
    deg = np.zeros(m, np.float64)
    for e in range(cnt):
        deg[esrc[e]] += 1.0
    p = np.zeros(m, np.float64)
    for t in range(qptr[b], qptr[b + 1]):
        p[loc[seeds[t]]] += weights[t]
    x = p.copy()
    new = np.empty(m, np.float64)
    for _ in range(iterations):
        dangling = 0.0
        for a in range(m):
            new[a] = 0.0
            if deg[a] == 0.0:
                dangling += x[a]
        for e in range(cnt):
            a = esrc[e]
            new[edst[e]] += alpha * x[a] / deg[a]
        restart = alpha * dangling + 1.0 - alpha
        for a in range(m):
            x[a] = new[a] + restart * p[a]
    for t in range(qptr[b], qptr[b + 1]):
        seed_mass[t] = x[loc[seeds[t]]]
    o = node_ptr[b]
    for a in range(m):
        nodes[o + a] = order[a]
        mass[o + a] = x[a]


@njit(cache=True, parallel=True)
def personalized_pagerank(indptr, indices, rindptr, rindices, undirected, qptr, seeds, weights, hops,
                          alpha, iterations, node_ptr):
    """Personalised PageRank of every query's walk graph (module docstring).

    ``rindptr``/``rindices``: the reverse of the traversal adjacency (``v -> u`` for each
    ``u -> v``), used when ``undirected``. ``node_ptr`` [B+1]: offsets from :func:`walk_sizes`.

    Returns ``(seed_mass [len(seeds)], nodes [node_ptr[-1]], mass [node_ptr[-1]])``: the
    PageRank value of each seed entry, and per query (``node_ptr[b]:node_ptr[b+1]``) its walk
    nodes in BFS order with their values.
    """
    B = qptr.shape[0] - 1
    seed_mass = np.zeros(seeds.shape[0], np.float64)
    nodes = np.empty(node_ptr[B], np.int64)
    mass = np.empty(node_ptr[B], np.float64)
    for b in prange(B):
        _ppr_query(b, indptr, indices, rindptr, rindices, undirected, qptr, seeds, weights, hops, alpha,
                   iterations, node_ptr, seed_mass, nodes, mass)
    return seed_mass, nodes, mass
