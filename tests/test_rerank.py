"""GraphReranker: hand-worked order, numpy references of every scorer, batch == single,
missing candidates, validation."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import (
    ConfigError, DimensionMismatchError, InvalidInputError, NotFittedError, UnknownIdError,
)


def _unit(deg):
    r = math.radians(deg)
    return np.array([math.cos(r), math.sin(r)], dtype=np.float32)


def _setup(vectors: dict, edges, space="cosine", directed=False, index_ids=None):
    G = nx.DiGraph() if directed else nx.Graph()
    for n, v in vectors.items():
        G.add_node(n, embedding=np.asarray(v, np.float32))
    G.add_edges_from(edges)
    dim = len(next(iter(vectors.values())))
    index = rga.HNSWIndex(dim=dim, space=space, M=8, ef_construction=100)
    ids = list(vectors) if index_ids is None else list(index_ids)
    index.add(ids, np.stack([np.asarray(vectors.get(i, np.ones(dim)), np.float32) for i in ids]))
    return index, NetworkXGraph(G)


def test_hand_worked_order():
    # q = (1, 0); unit vectors at angles: A 20, B 30, N 40, D 53.13 (cos 0.6), C 60, F 90 degrees.
    # Only edge: A - C. Vector order: A .940, B .866, N .766, D .600, C .500, F 0.
    # attention, T = 0.01, blend = 0.5:
    #   C's neighbourhood {C, A}: weights softmax((.5, .940) / .01) = (e^-44, 1) ~ (0, 1), so the
    #   context vector is ~A and context = cos 20 = .940; score = .5 * .5 + .5 * .940 = .720,
    #   which passes D (.600, isolated: context = its own .600, score .600).
    #   A's neighbourhood {A, C}: weights ~ (1, 0): score = .940.
    vecs = {"A": _unit(20), "B": _unit(30), "N": _unit(40), "D": _unit(math.degrees(math.acos(0.6))),
            "C": _unit(60), "F": _unit(90)}
    index, graph = _setup(vecs, [("A", "C")])
    rr = rga.GraphReranker(index, graph, candidates=6, temperature=0.01, blend=0.5)
    hits = rr.search(np.array([1.0, 0.0], np.float32), k=6)
    assert [h.id for h in hits] == ["A", "B", "N", "C", "D", "F"]
    by = {h.id: h for h in hits}
    assert by["C"].score == pytest.approx(0.25 + 0.5 * math.cos(math.radians(20)), abs=1e-5)
    assert by["D"].score == pytest.approx(0.6, abs=1e-5)
    assert by["C"].vector_rank == 4 and by["C"].rank == 3
    assert by["C"].attention["A"] == pytest.approx(1.0, abs=1e-6)
    assert set(by["C"].attention) == {"A", "C"}
    assert by["C"].top_attention(1) == [("A", pytest.approx(1.0, abs=1e-6))]
    assert by["B"].attention == {"B": pytest.approx(1.0)}
    # the vector scorer keeps the index order
    vec = rga.GraphReranker(index, graph, scorer="vector", candidates=6).search([1.0, 0.0], k=6)
    assert [h.id for h in vec] == ["A", "B", "N", "D", "C", "F"]
    assert all(h.attention == {} and h.score == h.vector_score for h in vec)


def _reference_attention(q, X, members, own, T, beta, space):
    """Equations of docs/rerank.md written out in numpy (float64)."""
    q = q.astype(np.float64)
    Xm = X[members].astype(np.float64)
    if space == "cosine":
        qn = q / np.linalg.norm(q)
        Xn = Xm / np.linalg.norm(Xm, axis=1, keepdims=True)
        s = Xn @ qn
    elif space == "ip":
        Xn, qn = Xm, q
        s = Xm @ q
    else:
        Xn, qn = Xm, q
        s = -((Xm - q) ** 2).sum(1)
    a = np.exp((s - s.max()) / T)
    a /= a.sum()
    h = a @ Xn
    if space == "cosine":
        ctx = h @ qn / np.linalg.norm(h)
    elif space == "ip":
        ctx = h @ qn
    else:
        ctx = -((h - q) ** 2).sum()
    return (1 - beta) * own + beta * ctx, a


@pytest.mark.parametrize("space", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("direction,hops", [("both", 1), ("out", 2), ("in", 1)])
def test_attention_scores_match_numpy_reference(space, direction, hops):
    rng = np.random.default_rng(3)
    n, d = 30, 6
    X = rng.standard_normal((n, d)).astype(np.float32) * (0.3 if space != "cosine" else 1.0)
    G = nx.gnp_random_graph(n, 0.12, seed=4, directed=True)
    vecs = {i: X[i] for i in range(n)}
    index, graph = _setup(vecs, G.edges(), space=space, directed=True)
    T, beta = 0.3, 0.6
    rr = rga.GraphReranker(index, graph, candidates=n, temperature=T, blend=beta, direction=direction, hops=hops)
    q = rng.standard_normal(d).astype(np.float32) * 0.3
    hits = rr.search(q, k=n)
    assert len(hits) == n
    view = G if direction == "out" else G.reverse(copy=False) if direction == "in" else G.to_undirected(as_view=True)
    for h in hits:
        members = list(nx.single_source_shortest_path_length(view, h.id, cutoff=hops))
        if space == "cosine":
            own = float(X[h.id] @ q / np.linalg.norm(X[h.id]) / np.linalg.norm(q))
        elif space == "ip":
            own = float(X[h.id] @ q)
        else:
            own = -float(((X[h.id] - q) ** 2).sum())
        assert h.vector_score == pytest.approx(own, abs=1e-4)
        score, a = _reference_attention(q, X, members, own, T, beta, space)
        assert h.score == pytest.approx(score, abs=1e-4)
        assert set(h.attention) == set(members)
        np.testing.assert_allclose([h.attention[m] for m in members], a, atol=1e-5)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert [h.rank for h in hits] == list(range(n))


def test_batch_equals_single_with_missing_and_caps():
    rng = np.random.default_rng(5)
    n, d = 200, 8
    X = rng.standard_normal((n, d)).astype(np.float32)
    G = nx.gnm_random_graph(n, 1200, seed=2)
    vecs = {i: X[i] for i in range(n)}
    # ids 200..219 are in the index but not in the graph
    extra = rng.standard_normal((20, d)).astype(np.float32)
    all_vecs = {**vecs, **{n + i: extra[i] for i in range(20)}}
    index, _ = _setup(all_vecs, [])
    Gf = nx.Graph()
    Gf.add_nodes_from((i, {"embedding": X[i]}) for i in range(n))
    Gf.add_edges_from(G.edges())
    graph = NetworkXGraph(Gf)
    Q = rng.standard_normal((7, d)).astype(np.float32)
    for scorer in ("attention", "hyperbolic", "vector"):
        rr = rga.GraphReranker(index, graph, scorer=scorer, candidates=60, max_neighbors=4, direction="out", seed=1)
        batch = rr.search_batch(Q, k=15)
        for q, row in zip(Q, batch):
            single = rr.search(q, k=15)
            assert [h.id for h in row] == [h.id for h in single]
            np.testing.assert_allclose([h.score for h in row], [h.score for h in single], rtol=1e-5)
            for a, b in zip(row, single):
                assert a.attention.keys() == b.attention.keys()
                for key in a.attention:
                    assert a.attention[key] == pytest.approx(b.attention[key], abs=1e-5)
    # missing candidates are kept, flagged, and scored by vector alone
    q = extra[3] + 0.01
    hits = rga.GraphReranker(index, graph, candidates=60).search(q, k=60)
    missing = [h for h in hits if not h.in_graph]
    assert missing and all(h.id >= n for h in missing)
    assert any(h.id == n + 3 for h in missing)
    for h in missing:
        assert h.score == h.vector_score and h.attention == {} and h.context_score is None
    assert all(h.in_graph for h in hits if h.id < n)


def test_layer_scorer_matches_propagation_reference():
    from ruvector_graph_attn.graph import SAGEConv

    rng = np.random.default_rng(9)
    n, d = 25, 5
    X = rng.standard_normal((n, d)).astype(np.float32)
    G = nx.gnp_random_graph(n, 0.15, seed=8, directed=True)
    index, graph = _setup({i: X[i] for i in range(n)}, G.edges(), directed=True)
    layer = SAGEConv(d, d, aggr="mean")
    eye = np.eye(d, dtype=np.float32)
    layer.load_state_dict({"lin_l.weight": 0.4 * eye, "lin_l.bias": np.zeros(d, np.float32), "lin_r.weight": 0.6 * eye})
    beta = 0.7
    rr = rga.GraphReranker(index, graph, scorer="sage", layer=layer, candidates=n, blend=beta)
    q = rng.standard_normal(d).astype(np.float32)
    hits = rr.search(q, k=n)
    U = G.to_undirected()
    for h in hits:
        # direction="both": the layer sees traversed edges in both orientations; a candidate's
        # in-neighbours are then all its graph neighbours (all candidates are seeds, hop 0)
        nb = list(U.neighbors(h.id))
        agg = X[nb].mean(0) if nb else np.zeros(d)
        hv = 0.4 * agg + 0.6 * X[h.id]
        sim = hv @ q / np.linalg.norm(hv) / np.linalg.norm(q)
        own = X[h.id] @ q / np.linalg.norm(X[h.id]) / np.linalg.norm(q)
        assert h.score == pytest.approx((1 - beta) * own + beta * sim, abs=1e-4)
        if nb:
            assert set(h.attention) == set(nb)
            assert sum(h.attention.values()) == pytest.approx(1.0)


def test_hyperbolic_weights_match_poincare_reference():
    rng = np.random.default_rng(11)
    n, d = 12, 4
    X = rng.standard_normal((n, d)).astype(np.float32)
    G = nx.path_graph(n)
    index, graph = _setup({i: X[i] for i in range(n)}, G.edges())
    T, c = 0.5, 1.0
    rr = rga.GraphReranker(index, graph, scorer="hyperbolic", candidates=n, temperature=T, blend=1.0, curvature=c)
    q = rng.standard_normal(d).astype(np.float32)
    hits = rr.search(q, k=n)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q)
    t = np.arctanh(0.9)  # cosine rows are unit: common scale 1

    def expmap0(u):
        nu = np.linalg.norm(u)
        return np.tanh(nu) * u / nu

    def dist(x, y):
        mx = -x
        xy, x2, y2 = mx @ y, mx @ mx, y @ y
        num = (1 + 2 * xy + y2) * mx + (1 - x2) * y
        madd = num / (1 + 2 * xy + x2 * y2)
        return 2 * np.arctanh(np.linalg.norm(madd))

    uq = expmap0(qn * t)
    for h in hits:
        members = [h.id] + [m for m in (h.id - 1, h.id + 1) if 0 <= m < n]
        logits = np.array([-dist(uq, expmap0(Xn[m] * t)) ** 2 / T for m in members])
        a = np.exp(logits - logits.max())
        a /= a.sum()
        np.testing.assert_allclose([h.attention[m] for m in members], a, atol=1e-4)
        hv = a @ Xn[members]
        assert h.score == pytest.approx(hv @ qn / np.linalg.norm(hv), abs=1e-4)


def test_embed_subgraph():
    vecs = {i: np.array([i, 1.0], np.float32) for i in range(5)}
    index, graph = _setup(vecs, [(0, 1), (1, 2), (3, 4)])
    rr = rga.GraphReranker(index, graph, hops=1, temperature=0.5)
    np.testing.assert_allclose(rr.embed_subgraph([1], method="mean"), np.mean([vecs[0], vecs[1], vecs[2]], 0))
    np.testing.assert_allclose(rr.embed_subgraph([1], method="max"), [2.0, 1.0])
    np.testing.assert_allclose(rr.embed_subgraph([0, 3], method="sum"), vecs[0] + vecs[1] + vecs[3] + vecs[4])
    emb = rr.embed_subgraph([1], method="attention")
    M = np.stack([vecs[1], vecs[0], vecs[2]])
    m = vecs[1] / np.linalg.norm(vecs[1])
    s = (M / np.linalg.norm(M, axis=1, keepdims=True)) @ m
    a = np.exp((s - s.max()) / 0.5)
    a /= a.sum()
    np.testing.assert_allclose(emb, a @ M, rtol=1e-5)
    with pytest.raises(UnknownIdError):
        rr.embed_subgraph([1, 99])
    with pytest.raises(InvalidInputError):
        rr.embed_subgraph([1], method="median")


def test_validation_errors():
    vecs = {i: np.array([1.0, i], np.float32) for i in range(4)}
    index, graph = _setup(vecs, [(0, 1)])
    with pytest.raises(ConfigError):
        rga.GraphReranker(index, graph, scorer="magic")
    for scorer in ("gat", "sage", "gin"):
        with pytest.raises(NotFittedError, match="layer"):
            rga.GraphReranker(index, graph, scorer=scorer)
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, graph, temperature=0.0)
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, graph, blend=1.5)
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, graph, candidates=0)
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, graph, direction="up")
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, {"not": "a graph"})
    rr = rga.GraphReranker(index, graph)
    with pytest.raises(DimensionMismatchError):
        rr.search(np.ones(3, np.float32))
    with pytest.raises(InvalidInputError):
        rr.search([np.nan, 1.0])
    with pytest.raises(InvalidInputError):
        rr.search_batch(np.ones(2, np.float32))
    with pytest.raises(InvalidInputError):
        rr.search([1.0, 0.0], k=0)
    # fewer items than k: all of them come back
    assert len(rr.search([1.0, 0.0], k=10)) == 4
    d = rr.search([1.0, 0.0], k=2)[0].to_dict()
    assert set(d) >= {"id", "score", "vector_score", "rank", "attention", "in_graph"}


def test_gat_scorer_with_uniform_attention_matches_reference():
    from ruvector_graph_attn.graph import GATConv

    rng = np.random.default_rng(21)
    n, d = 20, 4
    X = rng.standard_normal((n, d)).astype(np.float32)
    G = nx.gnp_random_graph(n, 0.2, seed=3)
    index, graph = _setup({i: X[i] for i in range(n)}, G.edges())
    layer = GATConv(d, d, heads=1, add_self_loops=True)
    layer.load_state_dict({"lin.weight": np.eye(d, dtype=np.float32), "att_src": np.zeros((1, 1, d), np.float32),
                           "att_dst": np.zeros((1, 1, d), np.float32), "bias": np.zeros(d, np.float32)})
    rr = rga.GraphReranker(index, graph, scorer="gat", layer=layer, candidates=n, blend=1.0)
    q = rng.standard_normal(d).astype(np.float32)
    for h in rr.search(q, k=n):
        members = [h.id] + list(G.neighbors(h.id))       # zero attention vectors: uniform over self + neighbours
        hv = X[members].mean(0)
        assert h.score == pytest.approx(hv @ q / np.linalg.norm(hv) / np.linalg.norm(q), abs=1e-4)
        assert set(h.attention) == set(members)
        np.testing.assert_allclose(list(h.attention.values()), 1.0 / len(members), atol=1e-5)


def test_multi_layer_model_reads_its_depth_and_batch_equals_single():
    from ruvector_graph_attn.errors import ConfigError
    from ruvector_graph_attn.graph import GraphSequential, SAGEConv

    rng = np.random.default_rng(21)
    n, d = 60, 6
    X = rng.standard_normal((n, d)).astype(np.float32)
    G = nx.gnp_random_graph(n, 0.06, seed=3)
    index, graph = _setup({i: X[i] for i in range(n)}, G.edges())
    model = GraphSequential([SAGEConv(d, d, rng=np.random.default_rng(1)), rga.nn.ReLU(),
                             SAGEConv(d, d, rng=np.random.default_rng(2))]).eval()
    rr = rga.GraphReranker(index, graph, scorer="sage", layer=model, candidates=15)
    assert rr.hops == 2  # two message-passing layers read two hops around each candidate
    Q = rng.standard_normal((5, d)).astype(np.float32)
    batch = rr.search_batch(Q, k=10)
    for q, hits in zip(Q, batch):
        single = rr.search(q, k=10)
        assert [h.id for h in single] == [h.id for h in hits]
        np.testing.assert_allclose([h.score for h in single], [h.score for h in hits], rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="2 graph layers"):
        rga.GraphReranker(index, graph, scorer="sage", layer=model, hops=1)
    assert rga.GraphReranker(index, graph, scorer="sage", layer=model, hops=3).hops == 3
    assert rga.GraphReranker(index, graph).hops == 1  # non-layer scorers keep the default radius
