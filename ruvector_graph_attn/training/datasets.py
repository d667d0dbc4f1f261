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

__all__ = ["NodeDataset", "cora_like", "CORA_CLASS_PROPORTIONS"]

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
