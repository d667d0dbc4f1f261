"""A re-ranker trained with RerankerTrainer finds parents that features alone cannot find.

Generated hierarchy: 24 parents with random features, 8 children each; a child's feature is its
family's centre plus noise, unrelated to its parent's own feature. Query = a held-out child's
feature (its edge to the parent removed); relevant = its parent. Vector search ranks the parent
by its random feature; a SAGE layer (mean of the in-neighbours = children, plus a root weight)
trained on the other children's (feature, parent) pairs maps a parent to its family's centre."""
import networkx as nx
import numpy as np

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.rerank.metrics import ndcg_at_k

P, KIDS, D = 24, 8, 16


def _hierarchy(parent_links: bool):
    """Features, edges (child -> parent, held-out children's edges removed; with
    ``parent_links`` also parent -> next parent), graph, index, the training pairs and the
    held-out queries with their relevant parents."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(P, D))
    parents = rng.normal(size=(P, D))
    child_x = np.repeat(centres, KIDS, 0) + 0.3 * rng.normal(size=(P * KIDS, D))
    X = np.vstack([parents, child_x]).astype(np.float32)
    child = np.arange(P, P + P * KIDS)
    parent_of = np.repeat(np.arange(P), KIDS)
    held = child[::KIDS]                                   # one child per family
    train = np.setdiff1d(child, held)
    edges = np.stack([train, parent_of[train - P]])        # child -> parent, held-out edges removed
    if parent_links:
        edges = np.concatenate([edges, np.stack([np.arange(P), (np.arange(P) + 1) % P])], axis=1)
    n = X.shape[0]
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(n))
    G.add_edges_from(edges.T.tolist())
    index = rga.HNSWIndex(dim=D, space="cosine", M=16, ef_construction=100, max_elements=n)
    index.add(np.arange(n), X)
    rel = [[p] for p in parent_of[held - P]]
    return X, edges, NetworkXGraph(G), index, (X[train], parent_of[train - P]), (X[held], rel)


def _check(index, graph, layer, direction, queries):
    Q, rel = queries
    n = len(index)
    vec = rga.GraphReranker(index, graph, scorer="vector", candidates=n)
    trained = rga.GraphReranker(index, graph, scorer="sage", layer=layer, blend=1.0, direction=direction,
                                candidates=n)
    v = ndcg_at_k(vec.rerank_arrays(Q, 10)[0], rel, 10)
    t = ndcg_at_k(trained.rerank_arrays(Q, 10)[0], rel, 10)
    assert v < 0.2                                         # features alone: the parent is near random
    assert t > 0.8 and t > 4 * v


def test_trained_sage_beats_vector_only_on_parents():
    X, edges, graph, index, (q, pos), queries = _hierarchy(parent_links=False)
    layer = rga.graph.SAGEConv(D, D, aggr="mean")
    opt = rga.training.Adam(layer.parameters(), lr=0.01)
    tr = rga.training.RerankerTrainer(layer, opt, max_epochs=60, temperature=0.1, num_negatives=32,
                                      batch_size=64, progress=False, seed=0)
    tr.fit(X, edges, q, pos)
    _check(index, graph, layer, "in", queries)


def test_trained_dirgnn_with_hard_negatives_beats_vector_only_on_parents():
    """The direction-aware residual layer (DirGNNConv over SAGE, started at the identity) with
    hard negatives mined from the vector candidates, scored over both directions: a parent's
    children are its in-neighbours, which the layer reads apart from its out-neighbours (the
    parent -> parent links)."""
    X, edges, graph, index, (q, pos), queries = _hierarchy(parent_links=True)
    hard = rga.training.mine_hard_negatives(pos, 8, index=index, queries=q)
    assert not (hard == pos[:, None]).any()
    layer = rga.graph.DirGNNConv(rga.graph.SAGEConv(D, D), alpha=0.5).residual_init()
    opt = rga.training.Adam(layer.parameters(), lr=0.01)
    tr = rga.training.RerankerTrainer(layer, opt, max_epochs=60, temperature=0.1, num_negatives=16,
                                      batch_size=64, progress=False, seed=0)
    tr.fit(X, edges, q, pos, hard_negatives=hard)
    _check(index, graph, layer, "both", queries)
