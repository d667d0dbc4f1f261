"""Attention-guided traversal: NetworkXGraph.traverse by hand, with a pluggable step scorer, and
side by side with Neo4jGraph.traverse on the same graph (real server)."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.connectors.traversal import TraversalStep
from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError

EMB = {1: [1.0, 0.0], 2: [1.0, 0.0], 3: [0.0, 1.0], 4: [-1.0, 0.0], 5: [2.0, 0.0], 6: [0.0, 2.0], 7: [1.0, 1.0]}
EDGES = [(1, 2), (1, 3), (1, 4), (2, 5), (2, 6), (2, 1), (3, 7)]


def _hand_graph():
    G = nx.DiGraph()
    for i, e in EMB.items():
        G.add_node(i, embedding=np.asarray(e, np.float32))
    for u, v in EDGES:
        G.add_edge(u, v, type="R")
    G.add_edge(3, 4, type="S")                      # another type: only followed when asked
    return G


def _softmax(xs):
    e = [math.exp(v) for v in xs]
    return [v / sum(e) for v in e]


@pytest.fixture
def hand_graph(request):
    """The 7-node hand graph as a NetworkXGraph, or loaded into the real Neo4j server."""
    if request.param == "networkx":
        yield NetworkXGraph(_hand_graph())
        return
    from ruvector_graph_attn.connectors import Neo4jGraph

    uri, auth, _ = request.getfixturevalue("neo4j_server")
    label = request.getfixturevalue("label")
    g = Neo4jGraph(uri, auth=auth, label=label)
    ids = list(EMB)
    g.load_arrays(ids, np.array([EMB[i] for i in ids]), edges=EDGES, rel_type="R")
    g.load_arrays(ids, np.array([EMB[i] for i in ids]), edges=[(3, 4)], rel_type="S")
    try:
        yield g
    finally:
        g.close()


@pytest.mark.parametrize("hand_graph", ["networkx", pytest.param("neo4j", marks=pytest.mark.neo4j)], indirect=True)
def test_traverse_hand_computed(hand_graph):
    g = hand_graph
    q = np.array([1.0, 0.0])
    s = 1 / math.sqrt(2)
    w1 = _softmax([1 * s, 0 * s, -1 * s])           # from 1: to 2, 3, 4
    w_2 = _softmax([2 * s, 0 * s])                   # from 2: to 5, 6 (1 is on the path)
    w_3 = _softmax([1 * s])                          # from 3: to 7 (3 -> 4 is type S)
    paths = g.traverse([1], [TraversalStep(["R"], "out", 2), TraversalStep(["R"], "out", 1)], query=q)
    want = sorted([((1, 2, 5), w1[0] * w_2[0], (w1[0], w_2[0])), ((1, 3, 7), w1[1] * w_3[0], (w1[1], w_3[0]))],
                  key=lambda t: -t[1])
    assert [p.nodes for p in paths] == [w[0] for w in want]
    for p, w in zip(paths, want):
        assert p.score == pytest.approx(w[1], rel=1e-9)
        assert p.weights == pytest.approx(w[2], rel=1e-9)
    assert [p.rank for p in paths] == [0, 1]
    # both types from 3: 7 and 4 compete
    p3 = g.traverse([3], [TraversalStep(["R", "S"], "out", 5)], query=q)
    w = _softmax([1 * s, -1 * s])
    assert [(p.nodes, pytest.approx(p.score)) for p in p3] == [((3, 7), w[0]), ((3, 4), w[1])]
    # query=None: each step attends with the current node's own embedding
    paths = g.traverse([1], [{"relationship_types": ["R"], "direction": "out", "top_k": 1}] * 2)
    wa = _softmax([1 * s, 0, -1 * s])
    wb = _softmax([2 * s, 0])
    assert [p.nodes for p in paths] == [(1, 2, 5)]
    assert paths[0].score == pytest.approx(wa[0] * wb[0], rel=1e-9)
    # "in" direction and dead ends; relationship_types=None follows every edge
    p_in = g.traverse([4], [TraversalStep(["R"], "in", 5)], query=q)
    assert [p.nodes for p in p_in] == [(4, 1)] and p_in[0].score == pytest.approx(1.0)
    assert {p.nodes for p in g.traverse([4], [TraversalStep(None, "in", 5)], query=q)} == {(4, 1), (4, 3)}
    assert g.traverse([5], [TraversalStep(None, "out", 2)]) == []
    # temperature, revisits, unknown starts, empty steps
    hot = g.traverse([1], [TraversalStep(None, "out", 3)], query=q, temperature=1e6)
    assert [p.score for p in hot] == pytest.approx([1 / 3] * 3, rel=1e-5)
    back = g.traverse([1], [TraversalStep(None, "out", 1), TraversalStep(None, "out", 3)], query=q, allow_revisit=True)
    assert {p.nodes for p in back} == {(1, 2, 5), (1, 2, 6), (1, 2, 1)}
    assert g.traverse([99, 1], []) == g.traverse([1], [])
    assert [p.nodes for p in g.traverse([99, 1], [])] == [(1,)]
    assert g.traverse([99], [TraversalStep()]) == []
    with pytest.raises(DimensionMismatchError):
        g.traverse([1], [TraversalStep()], query=np.ones(3))
    with pytest.raises(InvalidInputError):
        g.traverse([], [TraversalStep()])
    with pytest.raises(InvalidInputError):
        g.traverse([1], [TraversalStep()], temperature=0)
    with pytest.raises(InvalidInputError):
        g.traverse([1], ["out"])


def test_undirected_and_pluggable_step_scorer():
    G = nx.Graph()
    for i, e in EMB.items():
        G.add_node(i, embedding=np.asarray(e, np.float32))
    G.add_edges_from(EDGES)
    g = NetworkXGraph(G)
    q = np.array([1.0, 0.0])

    def neg_sq_dist(qr, xr):                        # -|q - x|^2 instead of the scaled dot product
        return -((qr - xr) ** 2).sum(axis=1)

    paths = g.traverse([2], [TraversalStep(None, "out", 3)], query=q, step_scorer=neg_sq_dist)
    # neighbours of 2 (undirected): 1 (d^2 = 0), 5 (d^2 = 1), 6 (d^2 = 1 + 4 = 5)
    w = _softmax([0.0, -1.0, -5.0])
    assert [p.nodes for p in paths] == [(2, 1), (2, 5), (2, 6)]
    assert [p.score for p in paths] == pytest.approx(w, rel=1e-9)
    # the temperature still divides the step scores
    paths = g.traverse([2], [TraversalStep(None, "both", 3)], query=q, step_scorer=neg_sq_dist, temperature=2.0)
    assert [p.score for p in paths] == pytest.approx(_softmax([0.0, -0.5, -2.5]), rel=1e-9)
    with pytest.raises(DimensionMismatchError):
        g.traverse([2], [TraversalStep()], query=q, step_scorer=lambda a, b: np.zeros(1))
    with pytest.raises(InvalidInputError):
        g.traverse([2], [TraversalStep()], query=q, step_scorer=lambda a, b: np.full(len(a), np.nan))
    with pytest.raises(InvalidInputError):
        g.traverse([2], [TraversalStep()], query=q, step_scorer="dot")


# ------------------------------------------------------------------------------ side by side
def _random_typed_digraph(n=60, m=220, dim=6, seed=4, string_ids=False):
    rng = np.random.default_rng(seed)
    ids = [f"n{i:03d}" for i in range(n)] if string_ids else list(range(n))
    X = rng.normal(size=(n, dim)).astype(np.float32)
    G = nx.DiGraph()
    for i, node in enumerate(ids):
        G.add_node(node, embedding=X[i])
    edges = {"R": [], "S": []}
    while G.number_of_edges() < m:
        u, v = rng.integers(0, n, 2)
        t = "R" if rng.random() < 0.7 else "S"
        if not G.has_edge(ids[u], ids[v]):
            G.add_edge(ids[u], ids[v], type=t)
            edges[t].append((ids[u], ids[v]))
    G.add_edge(ids[5], ids[5], type="R")            # a self-loop
    edges["R"].append((ids[5], ids[5]))
    return G, ids, X, edges


@pytest.mark.neo4j
@pytest.mark.parametrize("string_ids", [False, True])
def test_networkx_and_neo4j_traverse_are_equal(neo4j_server, label, string_ids):
    from ruvector_graph_attn.connectors import Neo4jGraph

    G, ids, X, edges = _random_typed_digraph(string_ids=string_ids)
    uri, auth, _ = neo4j_server
    neo = Neo4jGraph(uri, auth=auth, label=label)
    neo.load_arrays(ids, X, edges=edges["R"], rel_type="R")
    neo.load_arrays(ids, X, edges=edges["S"], rel_type="S")
    nxg = NetworkXGraph(G)
    rng = np.random.default_rng(9)
    q = rng.normal(size=X.shape[1])
    starts = [ids[0], ids[5], ids[17], "nope" if string_ids else 10_000]
    cases = [
        dict(steps=[TraversalStep(None, "out", 3), TraversalStep(None, "out", 2)], query=q),
        dict(steps=[TraversalStep(["R"], "both", 2), TraversalStep(["S"], "in", 2)], query=q, temperature=0.5),
        dict(steps=[TraversalStep(["R", "S"], "both", 4)] * 3, query=None),
        dict(steps=[TraversalStep(None, "out", 2)] * 2, query=q, allow_revisit=True),
        dict(steps=[TraversalStep(["R"], "out", 3)] * 2, query=q,
             step_scorer=lambda a, b: -np.linalg.norm(a - b, axis=1)),
    ]
    try:
        for case in cases:
            a = nxg.traverse(starts, **case)
            b = neo.traverse(starts, **case)
            assert a, case
            assert [p.nodes for p in a] == [p.nodes for p in b]
            np.testing.assert_allclose([p.score for p in a], [p.score for p in b], rtol=1e-12, atol=0)
            for x, y in zip(a, b):
                np.testing.assert_allclose(x.weights, y.weights, rtol=1e-12, atol=0)
            assert [p.rank for p in a] == list(range(len(a)))
    finally:
        neo.close()
