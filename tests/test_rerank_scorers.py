"""Scorer objects against plain numpy references on small graphs (hand-checked cases
included), aliases, and batch == single for every scorer."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import ConfigError, DimensionMismatchError, InvalidInputError, NotFittedError
from ruvector_graph_attn.manifold import Euclidean, PoincareBall, Product, Sphere

S = rga.scorers


def _world(n=30, d=6, p=0.12, seed=3, space="cosine", directed=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    G = nx.gnp_random_graph(n, p, seed=seed + 1, directed=directed)
    for i in range(n):
        G.add_node(i, embedding=X[i])
    index = rga.HNSWIndex(dim=d, space=space, M=8, ef_construction=100)
    index.add(np.arange(n), X)
    return X, G, index, NetworkXGraph(G), rng


def _unit(a):
    a = np.asarray(a, np.float64)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _members(G, c, hops, direction="both"):
    view = G if direction == "out" else G.reverse(copy=False) if direction == "in" else G.to_undirected(as_view=True)
    return list(nx.single_source_shortest_path_length(view, c, cutoff=hops))


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# ------------------------------------------------------------------------------ sparse top-k
def test_sparse_topk_hand_case_and_reference():
    # q = (1, 0): A at 0, B at 50, C at 80 degrees; path A - B - C. k = 1: each candidate attends
    # only to its most similar neighbourhood member.
    def u(deg):
        r = math.radians(deg)
        return np.array([math.cos(r), math.sin(r)], np.float32)

    G = nx.Graph()
    for name, deg in (("A", 0), ("B", 50), ("C", 80)):
        G.add_node(name, embedding=u(deg))
    G.add_edges_from([("A", "B"), ("B", "C")])
    rr = rga.GraphReranker(None, NetworkXGraph(G), scorer=S.SparseTopKScorer(k=1, temperature=0.1, blend=0.5))
    hits = {h.id: h for h in rr.rerank([1.0, 0.0], ["A", "B", "C"], k=3)}
    assert hits["B"].attention == {"A": 1.0}           # B's best member is A (cos 1)
    assert hits["C"].attention == {"B": 1.0}           # C's best member is B (cos 50 deg)
    assert hits["B"].score == pytest.approx(0.5 * math.cos(math.radians(50)) + 0.5 * 1.0, abs=1e-6)
    assert hits["C"].score == pytest.approx(0.5 * math.cos(math.radians(80)) + 0.5 * math.cos(math.radians(50)),
                                            abs=1e-6)

    X, G, index, graph, rng = _world(n=40, p=0.15)
    T, beta, k = 0.3, 0.7, 3
    rr = rga.GraphReranker(index, graph, scorer=S.SparseTopKScorer(k, T, beta), candidates=40, hops=2)
    q = rng.standard_normal(6).astype(np.float32)
    qn = _unit(q)
    for h in rr.search(q, k=40):
        m = _members(G, h.id, 2)
        Xm = _unit(X[m])
        s = Xm @ qn
        top = np.argsort(-s, kind="stable")[:k]
        a = _softmax(s[top] / T)
        hv = a @ Xm[top]
        own = float(_unit(X[h.id]) @ qn)
        assert h.score == pytest.approx((1 - beta) * own + beta * hv @ qn / np.linalg.norm(hv), abs=1e-5)
        assert set(h.attention) == {m[i] for i in top}
        np.testing.assert_allclose([h.attention[m[i]] for i in top], a, atol=1e-6)
    # k at least the neighbourhood size: the same as full attention
    full = rga.GraphReranker(index, graph, scorer=S.AttentionScorer(T, beta), candidates=40, hops=1)
    big = rga.GraphReranker(index, graph, scorer=S.SparseTopKScorer(10_000, T, beta), candidates=40, hops=1)
    a, b = full.search(q, k=40), big.search(q, k=40)
    assert [h.id for h in a] == [h.id for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-6)


# ------------------------------------------------------------------------------ geometric
def test_geometric_poincare_is_the_hyperbolic_alias_bit_for_bit():
    X, G, index, graph, rng = _world()
    Q = rng.standard_normal((4, 6)).astype(np.float32)
    a = rga.GraphReranker(index, graph, scorer="hyperbolic", curvature=0.5, temperature=0.7, blend=0.6, candidates=20)
    b = rga.GraphReranker(index, graph, scorer=S.GeometricScorer(PoincareBall(0.5), 0.7, 0.6), candidates=20)
    for ra, rb in zip(a.search_batch(Q, k=20), b.search_batch(Q, k=20)):
        assert [(h.id, h.score, h.attention) for h in ra] == [(h.id, h.score, h.attention) for h in rb]


def test_geometric_euclidean_on_unit_vectors_is_attention_at_half_temperature():
    # cosine space: rows are unit, so -|q - x|^2 / T = (2 cos - 2) / T: softmax(2 cos / T)
    X, G, index, graph, rng = _world()
    q = rng.standard_normal(6).astype(np.float32)
    a = rga.GraphReranker(index, graph, scorer=S.GeometricScorer(Euclidean(), 0.4, 0.9), candidates=30).search(q, k=30)
    b = rga.GraphReranker(index, graph, scorer=S.AttentionScorer(0.2, 0.9), candidates=30).search(q, k=30)
    assert [h.id for h in a] == [h.id for h in b]
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
    for x, y in zip(a, b):
        for key in x.attention:
            assert x.attention[key] == pytest.approx(y.attention[key], abs=1e-5)


@pytest.mark.parametrize("which", ["sphere", "product"])
def test_geometric_sphere_and_product_match_numpy_reference(which):
    X, G, index, graph, rng = _world(n=25, d=6)
    T, beta = 0.5, 0.75
    if which == "sphere":
        manifold = Sphere(2.0)
    else:
        manifold = Product([PoincareBall(1.0), Sphere(1.0)], [4, 2])
    rr = rga.GraphReranker(index, graph, scorer=S.GeometricScorer(manifold, T, beta), candidates=25)
    q = rng.standard_normal(6).astype(np.float32)
    qn = _unit(q)
    Xn = _unit(X)

    def sphere_d(u, v):                       # geodesic on the sphere of radius r
        r = np.linalg.norm(u)
        return r * np.arccos(np.clip(u @ v / (r * r), -1, 1))

    def ball_d(x, y):
        mx = -x
        xy, x2, y2 = mx @ y, mx @ mx, y @ y
        madd = ((1 + 2 * xy + y2) * mx + (1 - x2) * y) / (1 + 2 * xy + x2 * y2)
        return 2 * np.arctanh(np.linalg.norm(madd))

    def expmap0(v):
        nv = np.linalg.norm(v)
        return np.tanh(nv) * v / nv if nv > 0 else v

    for h in rr.search(q, k=25):
        m = _members(G, h.id, 1)
        if which == "sphere":
            d = np.array([sphere_d(2 * qn, 2 * Xn[j]) for j in m])
        else:
            qb, xb = qn[:4], Xn[m][:, :4]
            s = max(np.linalg.norm(xb, axis=1).max(), np.linalg.norm(qb))
            f = np.arctanh(0.9) / s
            d_ball = np.array([ball_d(expmap0(qb * f), expmap0(x * f)) for x in xb])
            d_sph = np.array([sphere_d(_unit(qn[4:]), _unit(Xn[j][4:])) for j in m])
            d = np.sqrt(d_ball ** 2 + d_sph ** 2)
        a = _softmax(-(d ** 2) / T)
        hv = a @ Xn[m]
        own = float(Xn[h.id] @ qn)
        assert h.score == pytest.approx((1 - beta) * own + beta * hv @ qn / np.linalg.norm(hv), abs=1e-4)
        np.testing.assert_allclose([h.attention[j] for j in m], a, atol=1e-4)


def test_geometric_rejects_other_manifolds_and_dimensions():
    with pytest.raises(ConfigError):
        S.GeometricScorer("poincare")
    X, G, index, graph, rng = _world()
    rr = rga.GraphReranker(index, graph, scorer=S.GeometricScorer(Product([Sphere(), Euclidean()], [2, 2])))
    with pytest.raises(DimensionMismatchError):
        rr.search(rng.standard_normal(6).astype(np.float32))


# ------------------------------------------------------------------------------ multi-head
def test_multihead_scorer_matches_per_pair_reference_and_loads_torch_names():
    X, G, index, graph, rng = _world(n=20, d=8)
    mha = rga.MultiHeadAttention(embed_dim=8, num_heads=2, bias=True)
    sd = {"in_proj_weight": rng.standard_normal((24, 8)).astype(np.float32) * 0.5,
          "in_proj_bias": rng.standard_normal(24).astype(np.float32) * 0.1,
          "out_proj.weight": rng.standard_normal((8, 8)).astype(np.float32) * 0.5,
          "out_proj.bias": rng.standard_normal(8).astype(np.float32) * 0.1}
    mha.load_state_dict(sd)
    beta = 0.6
    rr = rga.GraphReranker(index, graph, scorer=S.MultiHeadScorer(mha, blend=beta), candidates=20)
    q = rng.standard_normal(8).astype(np.float32)
    qn = _unit(q).astype(np.float32)
    Xn = _unit(X).astype(np.float32)
    ref = rga.MultiHeadAttention(embed_dim=8, num_heads=2, bias=True)
    ref.load_state_dict(sd)
    for h in rr.search(q, k=20):
        m = _members(G, h.id, 1)
        out, w = ref.forward(qn[None], Xn[m], Xn[m])              # one query token over N(c)
        ctx = float(_unit(out[0]) @ qn)
        own = float(Xn[h.id] @ qn)
        assert h.context_score == pytest.approx(ctx, abs=1e-5)
        assert h.score == pytest.approx((1 - beta) * own + beta * ctx, abs=1e-5)
        np.testing.assert_allclose([h.attention[j] for j in m], w[0], atol=1e-5)
    # the alias takes the module through layer=
    alias = rga.GraphReranker(index, graph, scorer="multihead", layer=mha, blend=beta, candidates=20)
    assert [h.id for h in alias.search(q, k=20)] == [h.id for h in rr.search(q, k=20)]
    with pytest.raises(NotFittedError):
        rga.GraphReranker(index, graph, scorer="multihead")
    with pytest.raises(NotFittedError):
        S.MultiHeadScorer("weights.pt")
    wrong = rga.GraphReranker(index, graph, scorer=S.MultiHeadScorer(rga.MultiHeadAttention(4, 2)))
    with pytest.raises(DimensionMismatchError):
        wrong.search(q)


# ------------------------------------------------------------------------------ PageRank
def test_ppr_two_node_hand_case():
    # A - B, both candidates, personalisation p = (0.8, 0.2) (softmax of v / T), alpha = 0.5:
    # x_A = 0.5 x_B + 0.5 * 0.8, x_B = 0.5 x_A + 0.5 * 0.2  ->  x = (0.6, 0.4)
    G = nx.Graph()
    G.add_node("A", embedding=np.array([1.0, 0.0], np.float32))
    G.add_node("B", embedding=np.array([0.0, 1.0], np.float32))
    G.add_edge("A", "B")
    T = 1.0
    vA, vB = math.log(0.8), math.log(0.2)                     # softmax((vA, vB) / 1) = (0.8, 0.2)
    scorer = S.PersonalizedPageRankScorer(alpha=0.5, iterations=200, temperature=T)
    rr = rga.GraphReranker(None, NetworkXGraph(G), scorer=scorer)
    hits = rr.rerank([1.0, 0.0], ["A", "B"], [vA, vB], k=2)
    assert [h.id for h in hits] == ["A", "B"]
    assert hits[0].score == pytest.approx(0.6, abs=1e-12) and hits[1].score == pytest.approx(0.4, abs=1e-12)
    assert hits[0].attention == {"A": pytest.approx(0.6), "B": pytest.approx(0.4)}
    # an isolated candidate C (no edges: its mass jumps back to p): three nodes, p = (.5, .25, .25)
    G.add_node("C", embedding=np.array([1.0, 1.0], np.float32))
    hits = rga.GraphReranker(None, NetworkXGraph(G), scorer=scorer).rerank(
        [1.0, 0.0], ["A", "B", "C"], [math.log(2), 0.0, 0.0], k=3)
    # dense solve of x = alpha M x + (1 - alpha) p, dangling column = p
    p = np.array([0.5, 0.25, 0.25])
    M = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], float)
    M[:, 2] = p
    x = np.linalg.solve(np.eye(3) - 0.5 * M, 0.5 * p)
    assert {h.id: h.score for h in hits} == {"A": pytest.approx(x[0]), "B": pytest.approx(x[1]),
                                           "C": pytest.approx(x[2])}


def _ppr_reference(G, cands, v, hops, alpha, T, direction):
    """Dense numpy PageRank on the walk graph the scorer documents."""
    view = G if direction == "out" else G.reverse(copy=False) if direction == "in" else G.to_undirected(as_view=True)
    dist = nx.multi_source_dijkstra_path_length(view, cands, cutoff=hops)
    nodes = list(dist)
    pos = {u: i for i, u in enumerate(nodes)}
    n = len(nodes)
    A = np.zeros((n, n))
    for u in nodes:
        if dist[u] < hops:
            for w in view.neighbors(u):
                A[pos[u], pos[w]] = 1.0
                if direction == "both":
                    A[pos[w], pos[u]] = 1.0
    p = np.zeros(n)
    e = np.exp((np.asarray(v) - max(v)) / T)
    for c, ec in zip(cands, e / e.sum()):
        p[pos[c]] += ec
    deg = A.sum(1)
    M = np.zeros((n, n))
    for i in range(n):
        M[:, i] = A[i] / deg[i] if deg[i] > 0 else p
    x = np.linalg.solve(np.eye(n) - alpha * M, (1 - alpha) * p)
    return {u: x[pos[u]] for u in nodes}


@pytest.mark.parametrize("direction,hops", [("both", 1), ("both", 2), ("out", 2), ("in", 1)])
def test_ppr_matches_dense_reference(direction, hops):
    X, G, index, graph, rng = _world(n=40, p=0.08, directed=True, seed=5)
    alpha, T = 0.6, 0.3
    scorer = S.PersonalizedPageRankScorer(alpha=alpha, iterations=300, temperature=T, blend=1.0)
    rr = rga.GraphReranker(index, graph, scorer=scorer, candidates=8, hops=hops, direction=direction)
    for q in rng.standard_normal((3, 6)).astype(np.float32):
        hits = rr.search(q, k=8)
        cands = [h.id for h in sorted(hits, key=lambda h: h.vector_rank)]
        ref = _ppr_reference(G, cands, [h.vector_score for h in sorted(hits, key=lambda h: h.vector_rank)],
                             hops, alpha, T, direction)
        for h in hits:
            assert h.score == pytest.approx(ref[h.id], abs=1e-9)
            for j, w in h.attention.items():
                assert w == pytest.approx(ref.get(j, 0.0), abs=1e-9)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_ppr_validation():
    for bad in (dict(alpha=1.0), dict(alpha=-0.1), dict(iterations=-1), dict(temperature=0.0), dict(blend=2.0),
                dict(iterations=10**6)):
        with pytest.raises(InvalidInputError):
            S.PersonalizedPageRankScorer(**bad)


# ------------------------------------------------------------------------------ every scorer
def _all_scorers(d):
    from ruvector_graph_attn.graph import GATConv, GINConv, SAGEConv

    mha = rga.MultiHeadAttention(embed_dim=d, num_heads=2, rng=np.random.default_rng(4))
    return {
        "vector": ("vector", {}),
        "attention": ("attention", {}),
        "hyperbolic": ("hyperbolic", {}),
        "sphere": ("sphere", {}),
        "euclidean": ("euclidean", {}),
        "sparse_topk": ("sparse_topk", {}),
        "ppr": ("ppr", {}),
        "vote": ("vote", {}),
        "multihead": ("multihead", {"layer": mha}),
        "gat": ("gat", {"layer": GATConv(d, d, heads=2, concat=False, rng=np.random.default_rng(1))}),
        "sage": ("sage", {"layer": SAGEConv(d, d, rng=np.random.default_rng(2))}),
        "gin": ("gin", {"layer": GINConv(rga.nn.Linear(d, d, rng=np.random.default_rng(3)), eps=0.2)}),
        "product": (S.GeometricScorer(Product([PoincareBall(), Sphere()], [d // 2, d - d // 2])), {}),
        "sage2": ("sage", {"layer": rga.graph.GraphSequential([SAGEConv(d, d, rng=np.random.default_rng(5)),
                                                               rga.nn.ReLU(),
                                                               SAGEConv(d, d, rng=np.random.default_rng(6))])}),
    }


@pytest.mark.parametrize("name", list(_all_scorers(8)))
def test_batch_equals_single_for_every_scorer(name):
    rng = np.random.default_rng(11)
    n, d = 160, 8
    X = rng.standard_normal((n, d)).astype(np.float32)
    G = nx.gnm_random_graph(n, 700, seed=2)
    for i in range(n):
        G.add_node(i, embedding=X[i])
    index = rga.HNSWIndex(dim=d, space="cosine", M=8, ef_construction=100)
    extra = rng.standard_normal((10, d)).astype(np.float32)      # in the index, not in the graph
    index.add(np.arange(n + 10), np.concatenate([X, extra]))
    scorer, kw = _all_scorers(d)[name]
    Q = np.concatenate([rng.standard_normal((5, d)).astype(np.float32), extra[:2] + 0.01])
    variants = [("both", None), ("out", 3)]
    if name in ("gat", "sage", "gin", "sage2"):
        # a layer's output at a candidate depends on every edge into it that the expansion
        # traversed, so with sampling or one-way edges it depends on the batch (documented)
        variants = [("both", None)]
    for direction, cap in variants:
        rr = rga.GraphReranker(index, NetworkXGraph(G), scorer=scorer, candidates=25, direction=direction,
                               max_neighbors=cap, seed=1, **kw)
        batch = rr.search_batch(Q, k=12)
        ids, scores = rr.rerank_arrays(Q, k=12)
        for b, (q, row) in enumerate(zip(Q, batch)):
            single = rr.search(q, k=12)
            assert [h.id for h in row] == [h.id for h in single]
            np.testing.assert_allclose([h.score for h in row], [h.score for h in single], rtol=1e-5, atol=1e-6)
            for x, y in zip(row, single):
                assert x.attention.keys() == y.attention.keys()
                for key in x.attention:
                    assert x.attention[key] == pytest.approx(y.attention[key], abs=1e-5)
            assert [int(i) for i in ids[b]] == [h.id for h in row]
            if name != "vector":
                assert all(h.context_score is not None for h in row if h.in_graph)
            assert all(h.score == h.vector_score and h.attention == {} for h in row if not h.in_graph)
        assert any(not h.in_graph for row in batch for h in row)


def test_aliases_and_resolution():
    X, G, index, graph, rng = _world()
    for alias, cls in (("vector", S.VectorScorer), ("attention", S.AttentionScorer), ("hyperbolic", S.GeometricScorer),
                       ("sphere", S.GeometricScorer), ("sparse_topk", S.SparseTopKScorer),
                       ("ppr", S.PersonalizedPageRankScorer), ("vote", S.VoteScorer)):
        rr = rga.GraphReranker(index, graph, scorer=alias)
        assert isinstance(rr.scorer, cls) and rr.scorer_name == alias
        assert isinstance(rr.scorer, S.Scorer)
    assert set(rga.rerank.pipeline.SCORERS) >= {"vector", "attention", "hyperbolic", "gat", "sage", "gin", "ppr",
                                                "sphere", "multihead", "sparse_topk", "vote"}
    rr = rga.GraphReranker(index, graph, scorer="sphere", temperature=0.3, blend=0.4)
    assert isinstance(rr.scorer.manifold, Sphere) and rr.scorer.temperature == 0.3 and rr.scorer.blend == 0.4
    with pytest.raises(ConfigError):
        rga.GraphReranker(index, graph, scorer="pagerank")
    with pytest.raises(InvalidInputError):
        S.AttentionScorer(temperature=-1)
    with pytest.raises(InvalidInputError):
        S.SparseTopKScorer(k=0)
    with pytest.raises(ConfigError):
        S.LayerScorer(rga.graph.SAGEConv(6, 6), explain="magic")

    class Deep:
        hops_needed = 3

        def score(self, queries, candidates, subgraph):
            raise AssertionError("not called")

    assert rga.GraphReranker(index, graph, scorer=Deep()).hops == 3
    for alias in ("attention", "ppr", "sparse_topk", "hyperbolic", "vote"):       # any radius, default 1
        assert rga.GraphReranker(index, graph, scorer=alias).hops == 1
        rr0 = rga.GraphReranker(index, graph, scorer=alias, hops=0, candidates=5)
        hits = rr0.search(rng.standard_normal(6).astype(np.float32), k=5)
        assert all(set(h.attention) == {h.id} for h in hits)           # N(c) = {c} at radius 0
    with pytest.raises(ConfigError, match="hops"):
        rga.GraphReranker(index, graph, scorer=Deep(), hops=2)


@pytest.mark.parametrize("manifold", ["ball", "sphere", "product"])
def test_geometric_blocks_of_pairs_give_the_same_scores(monkeypatch, manifold):
    """The points are mapped a block of whole pairs at a time (bounded memory on hubs): any
    block size gives the same scores and weights, down to blocks of one pair."""
    X, G, index, graph, rng = _world()
    m = {"ball": PoincareBall(0.7), "sphere": Sphere(1.0),
         "product": Product([PoincareBall(), Sphere()], [3, 3])}[manifold]
    Q = rng.standard_normal((4, 6)).astype(np.float32)
    rr = rga.GraphReranker(index, graph, scorer=S.GeometricScorer(m, 0.3, 0.7), candidates=20)
    ref = rr.search_batch(Q, k=20)
    for block in (1, 6 * 8 * 5, 6 * 8 * 37):              # bytes: one entry, a few, a few dozen entries
        monkeypatch.setattr(S, "GEOMETRIC_BLOCK_BYTES", block)
        got = rr.search_batch(Q, k=20)
        for a, b in zip(ref, got):
            assert [h.id for h in a] == [h.id for h in b]
            assert [h.score for h in a] == [h.score for h in b]
            assert [h.attention for h in a] == [h.attention for h in b]
