"""Poincaré embeddings (Nickel and Kiela 2017): closure, trainer, reconstruction metrics."""
import numpy as np
import pytest

from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.training.poincare import (
    PoincareEmbedding, reconstruction_metrics, transitive_closure,
)

TREE = np.array([[i, (i - 1) // 2] for i in range(1, 31)])      # binary tree, 31 nodes, child -> parent


def test_transitive_closure():
    cl = transitive_closure(np.array([[1, 0], [2, 1], [3, 1]]).T)
    assert cl.tolist() == [[1, 0], [2, 0], [2, 1], [3, 0], [3, 1]]
    full = transitive_closure(TREE)
    depth = np.floor(np.log2(np.arange(1, 32))).astype(int)       # ancestors of node i = its depth
    assert full.shape == (depth.sum(), 2)
    with pytest.raises(InvalidInputError):
        transitive_closure(np.array([1, 2, 3]))


def test_reconstruction_metrics_hand_computed():
    # 1-d points: node 0 observes node 1; distances from 0: node 2 closer than node 1
    theta = np.array([[0.0], [0.5], [0.2], [-0.6]])
    m = reconstruction_metrics(theta, [[0, 1]])
    # rank of (0, 1) among {1} + non-neighbours {2, 3}: node 2 is closer -> rank 2; AP = 1/2
    assert m["mean_rank"] == pytest.approx(2.0) and m["map"] == pytest.approx(0.5)
    # two observed partners of 0: {1, 3}; order by distance from 0: 2 (0.2), 1 (0.5), 3 (0.6)
    m = reconstruction_metrics(theta, [[0, 1], [0, 3]])
    assert m["mean_rank"] == pytest.approx((2 + 2) / 2)          # other partners are not counted
    assert m["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    with pytest.raises(InvalidInputError):
        reconstruction_metrics(np.array([[1.0], [0.0]]), [[0, 1]])
    with pytest.raises(InvalidInputError):
        reconstruction_metrics(theta, [[0, 0]])


def test_trainer_reaches_mean_rank_one_on_a_tree():
    cl = transitive_closure(TREE)
    pe = PoincareEmbedding(31, dim=5, lr=0.3, negatives=10, seed=0).fit(cl, epochs=500)
    m = pe.evaluate(cl)
    assert m["mean_rank"] == 1.0 and m["map"] == 1.0
    assert np.all((pe.theta ** 2).sum(1) < 1.0)
    # burn-in: the first 10 epochs ran at lr / 10
    assert [h["lr"] for h in pe.history[:11]] == [0.03] * 10 + [0.3]
    # the hierarchy shows in the norms: the root sits closer to the origin than the leaves
    norms = np.linalg.norm(pe.theta, axis=1)
    assert norms[0] < norms[15:].min()
    # untrained positions do not reconstruct the tree
    assert PoincareEmbedding(31, dim=5, seed=1).evaluate(cl)["mean_rank"] > 2.0


def test_trainer_bad_input():
    with pytest.raises(InvalidInputError):
        PoincareEmbedding(10, lr=-1.0)
    pe = PoincareEmbedding(4, dim=2)
    with pytest.raises(InvalidInputError):
        pe.fit([[0, 9]], epochs=1)
    with pytest.raises(InvalidInputError):
        pe.fit(np.zeros((0, 2)), epochs=1)
