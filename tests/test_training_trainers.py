"""Trainers end to end, the neighbour sampler, and the ranking metrics."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import InvalidInputError, NotFittedError
from ruvector_graph_attn.graph import GraphSequential, SAGEConv
from ruvector_graph_attn.training import (
    Adam, LinkPredictionTrainer, NeighborSampler, NodeClassificationTrainer, RerankerTrainer, graph_query_pairs,
    mrr, roc_auc, split_edges,
)


def sbm(n=400, c=4, p_in=0.04, p_out=0.003, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    same = y[:, None] == y[None, :]
    a = rng.random((n, n)) < np.where(same, p_in, p_out)
    a = np.triu(a, 1)
    src, dst = np.nonzero(a)
    ei = np.concatenate([np.stack([src, dst]), np.stack([dst, src])], axis=1).astype(np.int64)
    return ei, y


def blank_feature_task(seed=0):
    """Half the nodes carry their class (one-hot + noise) in their features, the other half
    have all-zero features: on those, features alone give one constant prediction (chance),
    only the graph (homophilous neighbours) tells the class."""
    n, c = 400, 4
    ei, y = sbm(n, c, seed=seed)
    rng = np.random.default_rng(seed + 1)
    informative = rng.random(n) < 0.5
    x = np.zeros((n, 8), dtype=np.float32)
    x[informative, y[informative]] = 1.0
    x[informative] += 0.3 * rng.normal(size=(informative.sum(), 8)).astype(np.float32)
    blank = np.flatnonzero(~informative)
    rng.shuffle(blank)
    third = blank.size // 3
    return x, ei, y, blank[:third], blank[third:2 * third], blank[2 * third:]


def sage_model(seed=0, f=8, h=16, c=4):
    return GraphSequential([SAGEConv(f, h, rng=seed), nn.ReLU(), nn.Dropout(0.2), SAGEConv(h, c, rng=seed + 1)])


def test_graph_beats_features_full_batch():
    x, ei, y, tr, va, te = blank_feature_task()
    model = sage_model()
    trainer = NodeClassificationTrainer(model, Adam(model.parameters(), lr=0.02, weight_decay=5e-4),
                                        max_epochs=60, patience=20, progress=False)
    hist = trainer.fit(x, ei, y, tr, va)
    acc = trainer.evaluate(x, ei, y, te)
    # features of test nodes are identical (zero): a feature-only model is at most the
    # majority-class rate; the graph model must be far above it
    majority = np.bincount(y[te]).max() / te.size
    assert majority < 0.4
    assert acc > 0.75, (acc, hist[-1])
    # the same model without edges (graph part removed) is stuck at one prediction
    no_edges = np.zeros((2, 0), dtype=np.int64)
    pred = trainer.predict(x, no_edges, nodes=te).argmax(1)
    assert np.unique(pred).size == 1
    assert {"epoch", "loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"} <= set(hist[0])


def test_mini_batch_neighbour_sampling_trains():
    x, ei, y, tr, va, te = blank_feature_task(seed=3)
    model = sage_model(seed=5)
    trainer = NodeClassificationTrainer(model, Adam(model.parameters(), lr=0.02), max_epochs=25,
                                        batch_size=32, fanouts=[5, 5], progress=False, seed=1)
    trainer.fit(x, ei, y, tr, va)
    assert trainer.evaluate(x, ei, y, te) > 0.7


def test_exact_batched_inference_equals_full_batch():
    x, ei, y, tr, va, te = blank_feature_task(seed=2)
    model = sage_model(seed=7).eval()
    full = model(x, ei)
    trainer = NodeClassificationTrainer(model, Adam(model.parameters()), batch_size=50, fanouts=[3, 3],
                                        progress=False)
    batched = trainer.predict(x, ei)
    np.testing.assert_allclose(batched, full, rtol=1e-5, atol=1e-6)


def test_determinism_and_early_stopping():
    x, ei, y, tr, va, te = blank_feature_task(seed=4)
    runs = []
    for _ in range(2):
        model = sage_model(seed=9)
        t = NodeClassificationTrainer(model, Adam(model.parameters(), lr=0.05), max_epochs=200, patience=5,
                                      monitor="val_loss", progress=False, seed=11)
        hist = t.fit(x, ei, y, tr, va)
        runs.append(([h["loss"] for h in hist], t.metrics(x, ei, y, va)["loss"], t))
    assert runs[0][0] == runs[1][0]
    t = runs[0][2]
    assert len(t.history) < 200  # stopped early
    assert len(t.history) == t.best_epoch + 5
    best = min(h["val_loss"] for h in t.history)
    assert runs[0][1] == pytest.approx(best, rel=1e-5)  # best weights restored


def test_neighbor_sampler_fanout_and_locality():
    ei, y = sbm(200, 2, seed=1)
    s = NeighborSampler(ei, 200, [3, 2], seed=0)
    sub = s.sample(np.array([5, 17, 42]))
    assert list(sub.nodes[:3]) == [5, 17, 42]
    assert np.unique(sub.nodes).size == sub.nodes.size
    # every sampled edge exists in the graph, with the right endpoints
    np.testing.assert_array_equal(sub.nodes[sub.edge_index], ei[:, sub.edge_ids])
    # hop 1: at most 3 in-edges per seed
    tgt = sub.edge_index[1]
    for i in range(3):
        deg = (ei[1] == sub.nodes[i]).sum()
        assert (tgt == i).sum() == min(3, deg)
    # deterministic for a seed
    s2 = NeighborSampler(ei, 200, [3, 2], seed=0)
    np.testing.assert_array_equal(s2.sample(np.array([5, 17, 42])).edge_ids, sub.edge_ids)
    with pytest.raises(InvalidInputError):
        NeighborSampler(ei, 200, [0])
    with pytest.raises(InvalidInputError):
        s.sample(np.array([1, 1]))


def test_roc_auc_and_mrr_hand_values():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.9]) == 0.0
    # pos {3, 1}, neg {2, 1}: pairs (3>2, 3>1, 1<2, 1=1) -> (1 + 1 + 0 + 0.5) / 4
    assert roc_auc([3.0, 1.0], [2.0, 1.0]) == pytest.approx(0.625)
    # ranks: 1, 3, 1.5 -> mean(1, 1/3, 2/3)
    assert mrr([5.0, 1.0, 2.0], [[1.0, 2.0], [3.0, 4.0], [2.0, 0.0]]) == pytest.approx((1 + 1 / 3 + 1 / 1.5) / 3)


def test_split_edges_no_leakage():
    ei, _ = sbm(300, 3, seed=2)
    sp = split_edges(ei, 300, 0.1, 0.2, seed=0)
    key = lambda a: set(map(tuple, np.sort(a, axis=0).T.tolist()))  # noqa: E731
    train, val, test = key(sp.train), key(sp.val_pos), key(sp.test_pos)
    assert not (train & val) and not (train & test) and not (val & test)
    allk = key(ei)
    assert not (key(sp.val_neg) & allk) and not (key(sp.test_neg) & allk)
    assert sp.val_neg.shape == sp.val_pos.shape and sp.test_neg.shape == sp.test_pos.shape


def test_link_prediction_learns():
    ei, y = sbm(320, 8, p_in=0.12, p_out=0.002, seed=5)
    rng = np.random.default_rng(0)
    x = (np.eye(8)[y] + 0.8 * rng.normal(size=(320, 8))).astype(np.float32)
    model = GraphSequential([SAGEConv(8, 32, rng=0), nn.ReLU(), SAGEConv(32, 16, rng=1)])
    trainer = LinkPredictionTrainer(model, Adam(model.parameters(), lr=0.01), max_epochs=60, patience=15,
                                    progress=False)
    with pytest.raises(NotFittedError):
        trainer.evaluate()
    hist = trainer.fit(x, ei)
    test = trainer.evaluate("test")
    # only eight communities: a random encoder is near 0.5, community structure gives ~0.9
    assert test["auc"] > 0.85, (test, hist[-1])
    assert test["mrr"] > 0.2
    assert {"loss", "val_auc", "val_mrr"} <= set(hist[0])


def test_reranker_trainer_improves_ranking():
    ei, y = sbm(300, 5, p_in=0.08, p_out=0.004, seed=6)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    q, pos = graph_query_pairs(x, ei, 600, noise=0.1, seed=2)
    vq, vpos = graph_query_pairs(x, ei, 200, noise=0.1, seed=3)
    layer = SAGEConv(16, 16, rng=0)
    trainer = RerankerTrainer(layer, Adam(layer.parameters(), lr=0.01), max_epochs=30, batch_size=100,
                              num_negatives=32, progress=False)
    before = trainer.evaluate(x, ei, vq, vpos)
    hist = trainer.fit(x, ei, q, pos, vq, vpos)
    after = trainer.evaluate(x, ei, vq, vpos)
    assert after["mrr"] > before["mrr"] + 0.2, (before, after)
    assert after["recall"] > 0.6
    assert after["mrr"] == pytest.approx(max(h["val_mrr"] for h in hist))


def test_trained_layer_plugs_into_graph_reranker():
    import networkx as nx

    import ruvector_graph_attn as rga

    ei, _ = sbm(200, 4, p_in=0.08, p_out=0.004, seed=8)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    both = np.concatenate([ei, ei[::-1]], axis=1)
    layer = SAGEConv(8, 8, rng=0)
    q, pos = graph_query_pairs(x, both, 300, seed=4)
    trainer = RerankerTrainer(layer, Adam(layer.parameters(), lr=0.01), max_epochs=5, batch_size=100,
                              progress=False)
    trainer.fit(x, both, q, pos)
    G = nx.Graph()
    for i in range(200):
        G.add_node(i, embedding=x[i])
    G.add_edges_from(ei.T.tolist())
    index = rga.HNSWIndex(dim=8, space="cosine")
    index.add(np.arange(200), x)
    rr = trainer.to_reranker(index, rga.connectors.NetworkXGraph(G), scorer="sage", candidates=30)
    hits = rr.search(q[0], k=5)
    assert [h.rank for h in hits] == [0, 1, 2, 3, 4]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(np.isfinite(h.score) for h in hits)


@pytest.mark.parametrize("kind", ["sage", "gat2"])
def test_reranker_trainer_subgraph_batches_equal_full_graph(kind):
    """Exact L-hop computation subgraphs (the default) give the full-graph losses and weights;
    sampled fanouts still learn."""
    from ruvector_graph_attn import nn
    from ruvector_graph_attn.graph import GATConv, GraphSequential

    ei, _ = sbm(300, 4, p_in=0.05, p_out=0.004, seed=5)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 8)).astype(np.float64)
    q, pos = graph_query_pairs(x, ei, 240, seed=2)

    def build():
        if kind == "sage":
            return SAGEConv(8, 8, rng=0).double()
        return GraphSequential([GATConv(8, 4, heads=2, rng=1), nn.ELU(), GATConv(8, 8, heads=1, rng=2)]).double()

    runs = {}
    for full in (False, True):
        layer = build()
        tr = RerankerTrainer(layer, Adam(layer.parameters(), lr=0.01), max_epochs=3, batch_size=60,
                             num_negatives=16, progress=False, full_graph=full, restore_best=False)
        runs[full] = ([h["loss"] for h in tr.fit(x, ei, q, pos)], layer.state_dict())
    np.testing.assert_allclose(runs[False][0], runs[True][0], rtol=1e-9)
    for name in runs[True][1]:
        np.testing.assert_allclose(runs[False][1][name], runs[True][1][name], rtol=1e-7, atol=1e-9, err_msg=name)
    layer = build()
    tr = RerankerTrainer(layer, Adam(layer.parameters(), lr=0.01), max_epochs=8, batch_size=60,
                         num_negatives=16, progress=False, fanouts=[3] * (1 if kind == "sage" else 2))
    before = tr.evaluate(x, ei, q, pos)["mrr"]
    tr.fit(x, ei, q, pos)
    assert tr.evaluate(x, ei, q, pos)["mrr"] > before
    with pytest.raises(InvalidInputError):
        RerankerTrainer(layer, Adam(layer.parameters()), fanouts=[0])
