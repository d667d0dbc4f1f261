"""Synthetic node-classification data with the shape of the Planetoid citation benchmarks.

No data set is downloaded at run time (the library must work offline), and no PyPI package
ships Cora. :func:`cora_like` builds a graph with Cora's published statistics instead:
2,708 nodes, 7 classes with Cora's class proportions, about 5,278 undirected edges (10,556
directed) drawn from a degree-corrected stochastic block model with heavy-tailed degrees
and edge homophily about 0.81, and 1,433-dimensional binary bag-of-words features with
about 18 words per node, each word drawn from the node's class topic with probability
``topic_mix`` and from a shared background otherwise; rows are L1-normalised as PyG's
``NormalizeFeatures``. The split is Planetoid's: 20 training nodes per class, 500
validation and 1,000 test nodes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError

__all__ = ["NodeDataset", "cora_like", "taxonomy_like", "CORA_CLASS_PROPORTIONS"]

#: class sizes of Cora (818, 426, 418, 351, 298, 217, 180) / 2708
CORA_CLASS_PROPORTIONS = np.array([818, 426, 418, 351, 298, 217, 180], dtype=np.float64) / 2708


@dataclass
class NodeDataset:
    x: np.ndarray
    edge_index: np.ndarray
    y: np.ndarray
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray
    description: str

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    def edge_homophily(self) -> float:
        return float((self.y[self.edge_index[0]] == self.y[self.edge_index[1]]).mean())


def cora_like(seed: int = 0, num_nodes: int = 2708, num_features: int = 1433, num_undirected_edges: int = 5278,
              homophily: float = 0.78, words_per_node: float = 18.0, topic_mix: float = 0.3,
              topic_size: int = 120, train_per_class: int = 20, num_val: int = 500,
              num_test: int = 1000) -> NodeDataset:
    """A Cora-shaped graph (see the module docstring); deterministic for ``seed``."""
    if num_nodes < 50 or num_features < 10:
        raise InvalidInputError("cora_like needs at least 50 nodes and 10 features")
    if not 0 < homophily < 1 or not 0 <= topic_mix <= 1:
        raise InvalidInputError("homophily must be in (0, 1) and topic_mix in [0, 1]")
    rng = np.random.default_rng(seed)
    c = len(CORA_CLASS_PROPORTIONS)
    y = rng.choice(c, size=num_nodes, p=CORA_CLASS_PROPORTIONS).astype(np.int64)
    # heavy-tailed propensities (degree correction), as in citation graphs
    theta = rng.pareto(2.5, size=num_nodes) + 1.0
    theta /= theta.sum()
    by_class = [np.flatnonzero(y == k) for k in range(c)]
    pw = [theta[idx] / theta[idx].sum() for idx in by_class]
    m = int(num_undirected_edges)
    keys = np.zeros(0, dtype=np.int64)
    while True:
        need = 3 * m
        u = rng.choice(num_nodes, size=need, p=theta)
        intra = rng.random(need) < homophily
        v = rng.choice(num_nodes, size=need, p=theta)
        # intra-class partner drawn from u's class with the same propensities
        for k in range(c):
            sel = np.flatnonzero(intra & (y[u] == k))
            if sel.size:
                v[sel] = rng.choice(by_class[k], size=sel.size, p=pw[k])
        ok = (u != v) & ~(~intra & (y[u] == y[v]))
        lo, hi = np.minimum(u[ok], v[ok]), np.maximum(u[ok], v[ok])
        keys = np.concatenate([keys, lo * np.int64(num_nodes) + hi])
        _, first = np.unique(keys, return_index=True)
        if first.size >= m:
            keys = keys[np.sort(first)[:m]]
            break
    s = keys // num_nodes
    d = keys % num_nodes
    edge_index = np.concatenate([np.stack([s, d]), np.stack([d, s])], axis=1)
    order = np.lexsort((edge_index[0], edge_index[1]))
    edge_index = np.ascontiguousarray(edge_index[:, order])
    # bag-of-words features
    topics = [rng.choice(num_features, size=topic_size, replace=False) for _ in range(c)]
    counts = np.maximum(1, rng.poisson(words_per_node, size=num_nodes))
    x = np.zeros((num_nodes, num_features), dtype=np.float32)
    total = int(counts.sum())
    owner = np.repeat(np.arange(num_nodes), counts)
    from_topic = rng.random(total) < topic_mix
    words = rng.integers(0, num_features, size=total)
    tw = rng.integers(0, topic_size, size=total)
    topic_words = np.stack(topics)[y[owner], tw]
    words = np.where(from_topic, topic_words, words)
    x[owner, words] = 1.0
    x /= np.maximum(x.sum(axis=1, keepdims=True), 1.0)
    # Planetoid split
    train = np.zeros(num_nodes, dtype=bool)
    for k in range(c):
        train[rng.permutation(by_class[k])[:train_per_class]] = True
    rest = rng.permutation(np.flatnonzero(~train))
    val = np.zeros(num_nodes, dtype=bool)
    test = np.zeros(num_nodes, dtype=bool)
    val[rest[:num_val]] = True
    test[rest[num_val:num_val + num_test]] = True
    desc = (f"cora_like(seed={seed}): {num_nodes} nodes, {edge_index.shape[1]} directed edges, "
            f"{num_features} bag-of-words features, {c} classes, edge homophily "
            f"{float((y[edge_index[0]] == y[edge_index[1]]).mean()):.2f}")
    return NodeDataset(x, edge_index, y, train, val, test, desc)


def taxonomy_like(seed: int = 0, num_nodes: int = 80_000, num_features: int = 384,
                  num_classes: int = 26, num_undirected_edges: int = 170_000, hub_fraction: float = 0.002,
                  hub_share: float = 0.35, cross_homophily: float = 0.7, noise: float = 0.9,
                  train_fraction: float = 0.1, val_fraction: float = 0.1,
                  test_fraction: float = 0.2) -> NodeDataset:
    """A taxonomy-shaped graph with text-embedding-like features (deterministic for ``seed``).

    Shape: ``num_classes`` top-level categories (the labels) each root a tree; every other
    node gets one parent. A small set of hubs (``hub_fraction`` of the nodes, e.g. broad
    categories) takes ``hub_share`` of all children, so hubs have hundreds of children,
    while most nodes are leaves (the degree distribution of a real taxonomy or category
    graph: median degree 1-2, a few hundred at the top). The remaining
    ``num_undirected_edges - (num_nodes - num_classes)`` edges are cross links ("related",
    "see also") drawn preferentially by degree, within the same category with probability
    ``cross_homophily``. A node's label is the category of its root.

    Features: unit-norm ``num_features``-d float32 vectors, each the mean direction of its
    category, drifted along the path from the root (a child is its parent plus a small
    random step) plus isotropic noise of relative size ``noise`` -- the geometry of sentence
    embeddings of category names. Split: random ``train/val/test_fraction`` of the nodes.
    Edges are stored in both directions, sorted by target.
    """
    if num_nodes < 10 * num_classes or num_features < 2 or num_classes < 2:
        raise InvalidInputError("taxonomy_like needs num_nodes >= 10 * num_classes, num_features >= 2, num_classes >= 2")
    tree_edges = num_nodes - num_classes
    if num_undirected_edges < tree_edges:
        raise InvalidInputError(f"num_undirected_edges must be at least num_nodes - num_classes = {tree_edges}")
    if not 0 < hub_fraction < 1 or not 0 <= hub_share < 1 or not 0 <= cross_homophily <= 1:
        raise InvalidInputError("hub_fraction in (0, 1), hub_share in [0, 1) and cross_homophily in [0, 1] required")
    if train_fraction + val_fraction + test_fraction > 1 or min(train_fraction, val_fraction, test_fraction) <= 0:
        raise InvalidInputError("split fractions must be positive and sum to at most 1")
    rng = np.random.default_rng(seed)
    n = int(num_nodes)
    parent = np.full(n, -1, dtype=np.int64)
    # nodes 0..C-1 are the roots; node k > C attaches to an earlier node: a hub with
    # probability hub_share (hubs are the first nodes after the roots), otherwise a node
    # drawn uniformly from the recent past (keeps depth moderate, most nodes end as leaves)
    c = int(num_classes)
    n_hubs = max(c, int(hub_fraction * n))
    k = np.arange(c, n)
    to_hub = rng.random(k.size) < hub_share
    hub_pick = rng.integers(0, c + n_hubs, size=k.size)
    uniform_pick = (rng.random(k.size) * k).astype(np.int64)  # any earlier node
    parent[c:] = np.where(to_hub, np.minimum(hub_pick, k - 1), uniform_pick)
    root = np.arange(n, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    for i in range(c, n):  # parents precede children: one pass resolves roots and depth
        root[i] = root[parent[i]]
        depth[i] = depth[parent[i]] + 1
    y = root.astype(np.int64)
    # cross links, preferential by tree degree, mostly within a category
    deg = np.bincount(parent[c:], minlength=n).astype(np.float64) + 1.0
    p = deg / deg.sum()
    m_extra = int(num_undirected_edges) - tree_edges
    lo0 = np.minimum(parent[c:], k)
    hi0 = np.maximum(parent[c:], k)
    keys = lo0 * np.int64(n) + hi0
    by_class = [np.flatnonzero(y == j) for j in range(c)]
    pw = [p[idx] / p[idx].sum() for idx in by_class]
    have = np.zeros(0, dtype=np.int64)
    while have.size < m_extra:
        need = 2 * (m_extra - have.size) + 16
        u = rng.choice(n, size=need, p=p)
        v = rng.choice(n, size=need, p=p)
        same = rng.random(need) < cross_homophily
        for j in range(c):
            sel = np.flatnonzero(same & (y[u] == j))
            if sel.size:
                v[sel] = rng.choice(by_class[j], size=sel.size, p=pw[j])
        ok = u != v
        cand = np.minimum(u[ok], v[ok]) * np.int64(n) + np.maximum(u[ok], v[ok])
        cand = cand[~np.isin(cand, keys)]
        have = np.concatenate([have, cand])
        _, first = np.unique(have, return_index=True)
        have = have[np.sort(first)]
    keys = np.concatenate([keys, have[:m_extra]])
    s, d = keys // n, keys % n
    edge_index = np.concatenate([np.stack([s, d]), np.stack([d, s])], axis=1)
    edge_index = np.ascontiguousarray(edge_index[:, np.lexsort((edge_index[0], edge_index[1]))])
    # features: category direction, drifted down the tree, plus noise; unit norm
    f = int(num_features)
    centre = rng.standard_normal((c, f)).astype(np.float32)
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    drift = (rng.standard_normal((n, f)).astype(np.float32) * np.float32(0.35 / np.sqrt(f)))
    pos = np.zeros((n, f), dtype=np.float32)
    pos[:c] = centre
    order = np.argsort(depth, kind="stable")
    for dd in range(1, int(depth.max()) + 1):  # one vectorised step per tree level
        lvl = order[depth[order] == dd]
        pos[lvl] = pos[parent[lvl]] + drift[lvl]
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    x = pos + rng.standard_normal((n, f)).astype(np.float32) * np.float32(noise / np.sqrt(f))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = np.ascontiguousarray(x, dtype=np.float32)
    perm = rng.permutation(n)
    a, b = int(train_fraction * n), int((train_fraction + val_fraction) * n)
    e = b + int(test_fraction * n)
    train, val, test = (np.zeros(n, dtype=bool) for _ in range(3))
    train[perm[:a]] = True
    val[perm[a:b]] = True
    test[perm[b:e]] = True
    full_deg = np.bincount(edge_index[1], minlength=n)
    desc = (f"taxonomy_like(seed={seed}): {n} nodes, {edge_index.shape[1] // 2} undirected edges, "
            f"{f}-d unit features, {c} classes, degree median {int(np.median(full_deg))} / max "
            f"{int(full_deg.max())}, {int((full_deg == 1).sum())} leaves, edge homophily "
            f"{float((y[edge_index[0]] == y[edge_index[1]]).mean()):.2f}")
    return NodeDataset(x, edge_index, y, train, val, test, desc)
