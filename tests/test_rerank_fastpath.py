"""The fused re-ranking path (rerank/fastpath.py) returns what the general path returns: same
ids, ranks, vector ranks, in-graph flags and explanations, scores within float rounding, on
random graphs (directions, caps, radii 0/1, spaces, dtypes, filters, graph candidates,
isolated candidates, ids missing from the graph, integer ids off the dense range, string ids),
and it is only taken where it applies; the result cache still follows graph refreshes."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.rerank import fastpath
from ruvector_graph_attn.rerank.scorers import AttentionScorer, SparseTopKScorer


def _graph(seed, n=160, dim=8, directed=True, id_of=lambda i: i, isolated=10, dtype=np.float32, missing=8):
    """A random graph with self-loops, reciprocal edges, hubs and ``isolated`` nodes without
    edges; the index holds ``missing`` extra vectors whose ids are not graph nodes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + missing, dim)).astype(np.float32)
    G = nx.DiGraph() if directed else nx.Graph()
    for i in range(n):
        G.add_node(id_of(i), embedding=X[i])
    linked = n - isolated
    for i in range(linked):
        deg = int(rng.integers(0, 12)) if i % 17 else 40        # a few hubs above any cap
        for j in rng.choice(linked, deg, replace=False):
            G.add_edge(id_of(i), id_of(int(j)))                  # j == i: a self-loop
    index = rga.HNSWIndex(dim=dim, space="cosine", M=8, ef_construction=100)
    index.add([id_of(i) for i in range(n + missing)], X)
    return X, G, index, NetworkXGraph(G, dtype=dtype)


def _both(make, call):
    """``call(reranker)`` on the fused path and on the general path (fresh re-rankers)."""
    fast = call(make())
    fastpath.ENABLED = False
    try:
        slow = call(make())
    finally:
        fastpath.ENABLED = True
    return fast, slow


def _same(a, b, tol=1e-6):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert [h.id for h in ra] == [h.id for h in rb]
        for x, y in zip(ra, rb):
            assert type(x) is type(y) is rga.RankedNeighbour
            assert (x.rank, x.vector_rank, x.in_graph) == (y.rank, y.vector_rank, y.in_graph)
            assert x.score == pytest.approx(y.score, abs=tol) and x.vector_score == y.vector_score
            assert (x.context_score is None) == (y.context_score is None)
            assert x.context_score is None or x.context_score == pytest.approx(y.context_score, abs=tol)
            assert sorted(x.attention, key=repr) == sorted(y.attention, key=repr)
            for key, w in y.attention.items():
                assert x.attention[key] == pytest.approx(w, abs=tol)
            assert x.to_dict()["attention"] and [k for k, _ in x.to_dict()["attention"]] or not x.attention


def _expand_counter(graph):
    calls = []
    orig = graph.expand

    def counted(*a, **kw):
        calls.append(a)
        return orig(*a, **kw)

    graph.expand = counted   # an instance attribute: the class's expand stays the snapshot one
    return calls


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("directed", [True, False])
@pytest.mark.parametrize("direction", ["out", "in", "both"])
def test_fast_equals_general_search(seed, directed, direction):
    X, G, index, graph = _graph(seed, directed=directed)
    rng = np.random.default_rng(100 + seed)
    Q = rng.normal(size=(7, X.shape[1])).astype(np.float32)
    Q[3] = X[150]                # the best hit is an isolated node
    Q[4] = X[162]                # the best hit is not in the graph
    for kw in ({}, {"max_neighbors": 3, "seed": seed}, {"max_neighbors": 0}, {"hops": 0},
               {"temperature": 0.7, "blend": 0.3}):
        def make():
            return rga.GraphReranker(index, graph, candidates=40, direction=direction, **kw)

        fast, slow = _both(make, lambda r: [r.search(q, 12) for q in Q])
        _same(fast, slow)
        assert any(not h.in_graph for h in fast[4]) and any(h.in_graph and h.id == 150 for h in fast[3])
        fb, sb = _both(make, lambda r: r.search_batch(Q, 12))
        _same(fb, sb)
        _same(fb, fast)


def test_fast_path_skips_expansion_and_general_path_expands():
    X, G, index, graph = _graph(3)
    q = np.random.default_rng(0).normal(size=X.shape[1]).astype(np.float32)
    calls = _expand_counter(graph)
    rr = rga.GraphReranker(index, graph, candidates=30)
    rr.search(q, 5)              # the first call samples the graph once for the "auto" defaults
    assert len(calls) == 1 and rr.auto_statistics is not None
    rr.search(q + 0.5, 5)        # graph candidates included, no expansion
    assert len(calls) == 1
    fixed = {"temperature": 0.2, "blend": 0.8, "graph_candidates": 0}   # no statistics sample
    for make in (lambda: rga.GraphReranker(index, graph, candidates=30, hops=2, **fixed),
                 lambda: rga.GraphReranker(index, graph, candidates=30, scorer=SparseTopKScorer(3), **fixed),
                 lambda: rga.GraphReranker(index, graph, candidates=30, scorer=type("Sub", (AttentionScorer,), {})(),
                                           **fixed),
                 lambda: rga.GraphReranker(index, graph, candidates=30, scorer="hyperbolic", **fixed)):
        n = len(calls)
        make().search(q, 5)
        assert len(calls) == n + 1


class _OwnExpand(NetworkXGraph):
    def expand(self, ids, hops=1, direction="out", max_neighbors=None, seed=0):
        sg = super().expand(ids, hops=hops, direction=direction, max_neighbors=max_neighbors, seed=seed)
        self.seen = getattr(self, "seen", 0) + 1
        return sg


def test_subclass_overriding_expand_takes_the_general_path():
    X, G, index, _ = _graph(4)
    graph = _OwnExpand(G)
    q = X[5] + 0.1
    rga.GraphReranker(index, graph, candidates=30, temperature=0.2, blend=0.8, graph_candidates=0).search(q, 5)
    assert graph.seen == 1
    assert fastpath.snapshot_of(graph) is None


@pytest.mark.parametrize("space", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float32), (np.float32, np.float64)])
def test_spaces_and_dtypes(space, dtypes):
    qtype, xtype = dtypes
    X, G, _, graph = _graph(5, dtype=xtype)
    index = rga.HNSWIndex(dim=X.shape[1], space=space, M=8, ef_construction=100)
    index.add(np.arange(X.shape[0]), X)
    Q = np.random.default_rng(6).normal(size=(5, X.shape[1])).astype(qtype)
    fast, slow = _both(lambda: rga.GraphReranker(index, graph, candidates=35, direction="both"),
                       lambda r: r.search_batch(Q, 10))
    _same(fast, slow, tol=1e-5 if space == "l2" else 1e-6)


@pytest.mark.parametrize("gc", [0, 4])
@pytest.mark.parametrize("directed", [True, False])
@pytest.mark.parametrize("gcd", ["out", "in", "both"])
def test_filters_and_graph_candidates(gc, directed, gcd):
    X, G, index, graph = _graph(7, directed=directed)
    rng = np.random.default_rng(8)
    Q = rng.normal(size=(4, X.shape[1])).astype(np.float32)
    allow = set(rng.choice(X.shape[0], 120, replace=False).tolist())
    for flt, cap in ((None, None), (None, 2), (allow, None), (lambda i: i % 3 != 0, 3), ({1, 2, 3}, None)):
        def make():
            return rga.GraphReranker(index, graph, candidates=30, graph_candidates=gc, direction="both",
                                     graph_candidate_direction=gcd, max_neighbors=cap)

        fast, slow = _both(make, lambda r: r.search_batch(Q, 15, filter=flt))
        _same(fast, slow)
        if flt is not None:
            ok = flt if callable(flt) else flt.__contains__
            assert all(ok(h.id) for row in fast for h in row)
        fa, sa = _both(make, lambda r: r.rerank_arrays(Q, 15, filter=flt))
        assert np.array_equal(fa[0], sa[0]) and np.allclose(fa[1], sa[1], atol=1e-6)
        if gc and flt is None and cap is None:   # graph candidates did join (past column 30)
            assert any(h.vector_rank >= 30 for row in fast for h in row)
    if gc:
        rr = rga.GraphReranker(index, graph, candidates=30, graph_candidates=gc)
        rr.search(Q[1], 5)               # the one sample of the graph for the "auto" defaults
        calls = _expand_counter(graph)
        rr.search(Q[0], 5)
        assert calls == []


def test_rerank_ids_unknown_duplicates_and_other_id_kinds():
    big = 10 ** 12
    for id_of in (lambda i: i, lambda i: big + 7 * i, lambda i: -i - 1, lambda i: f"n{i}"):
        X, G, index, graph = _graph(9, id_of=id_of)
        q = np.random.default_rng(10).normal(size=X.shape[1]).astype(np.float32)
        ids = [id_of(i) for i in (3, 150, 151, 40, 8, 77)] + ["zz" if isinstance(id_of(0), str) else -999]
        scores = np.linspace(0.9, 0.3, len(ids))
        fast, slow = _both(lambda: rga.GraphReranker(index, graph),
                           lambda r: [r.rerank(q, ids, scores, k=7), r.rerank(q, ids[:-1], k=4),
                                      r.rerank(q, [], k=3)])
        _same(fast, slow)
        assert [h.in_graph for h in fast[0] if h.id == ids[-1]] == [False]
        fast, slow = _both(lambda: rga.GraphReranker(index, graph, candidates=25), lambda r: [r.search(q, 9)])
        _same(fast, slow)
        for mode in (True, False):
            fastpath.ENABLED = mode
            try:
                with pytest.raises(InvalidInputError):
                    rga.GraphReranker(index, graph).rerank(q, [ids[0], ids[0]])
            finally:
                fastpath.ENABLED = True


def test_rerank_batch_ragged_rows_match():
    X, G, index, graph = _graph(11)
    Q = np.random.default_rng(12).normal(size=(3, X.shape[1])).astype(np.float32)
    rows = [[1, 2, 3, 155, 159], [7], [9, 8, 40, 41, 42, 43, 44, 45]]
    fast, slow = _both(lambda: rga.GraphReranker(index, graph, max_neighbors=2),
                       lambda r: r.rerank_batch(Q, rows, k=6))
    _same(fast, slow)
    assert [len(r) for r in fast] == [5, 1, 6]


def test_cache_follows_refresh_on_the_fast_path():
    X, G, index, graph = _graph(13)
    q = X[20] + 0.05
    rr = rga.GraphReranker(index, graph, candidates=30, cache=64)
    first = rr.search(q, 8)
    assert rr.search(q, 8) == first and rr.cache_info().hits == 1
    # change features and edges, refresh: new snapshot, cache emptied, norms recomputed
    rng = np.random.default_rng(14)
    for node in list(G.nodes)[:80]:
        G.nodes[node]["embedding"] = rng.normal(size=X.shape[1]).astype(np.float32)
    G.add_edge(first[0].id, 155)
    graph.refresh()
    after = rr.search(q, 8)
    fastpath.ENABLED = False
    try:
        expect = rga.GraphReranker(index, graph, candidates=30).search(q, 8)
    finally:
        fastpath.ENABLED = True
    _same([after], [expect])
    assert after != first
    by_id = {h.id: h for h in after}
    assert first[0].id not in by_id or 155 in by_id[first[0].id].attention


def test_search_hand_computed():
    """One candidate with two neighbours, cosine, against the equations of AttentionScorer."""
    X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.2]], np.float32)
    G = nx.DiGraph()
    for i, x in enumerate(X):
        G.add_node(i, embedding=x)
    G.add_edges_from([(0, 1), (2, 0), (3, 3)])
    graph = NetworkXGraph(G)
    rr = rga.GraphReranker(None, graph, temperature=0.5, blend=0.4, direction="both")
    q = np.array([0.8, 0.6])
    hits = {h.id: h for h in rr.rerank(q, [0, 3], [0.8, -0.6], k=2)}
    u = X / np.linalg.norm(X, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q)
    s = u[[0, 1, 2]] @ qn
    a = np.exp(s / 0.5) / np.exp(s / 0.5).sum()
    h = a @ u[[0, 1, 2]]
    ctx = h @ qn / np.linalg.norm(h)
    assert hits[0].score == pytest.approx(0.6 * 0.8 + 0.4 * ctx, abs=1e-6)
    assert hits[0].attention == pytest.approx({0: a[0], 1: a[1], 2: a[2]}, abs=1e-6)
    # node 3 only has a self-loop: its neighbourhood is itself, context = its own cosine
    assert hits[3].attention == pytest.approx({3: 1.0})
    assert hits[3].score == pytest.approx(0.6 * -0.6 + 0.4 * float(u[3] @ qn), abs=1e-6)


@pytest.mark.neo4j
def test_projection_fused_equals_server_general_path(neo4j_server, label):
    """A Neo4jProjection takes the fused path (no expand call); the Neo4jGraph itself the
    general one over Bolt: same hits, graph candidates included."""
    from test_neo4j import make_graph

    X, G, index, _ = _graph(15, n=120, isolated=6, missing=5)
    g = make_graph(neo4j_server, label)
    g.load_networkx(G)
    proj = g.project()
    assert fastpath.snapshot_of(proj) is not None and fastpath.snapshot_of(g) is None
    calls = _expand_counter(proj)
    Q = np.random.default_rng(16).normal(size=(4, X.shape[1])).astype(np.float32)
    fixed = {"temperature": 0.2, "blend": 0.8}     # no graph sample for the "auto" defaults
    for kw in ({"direction": "both", **fixed}, {"direction": "out", "max_neighbors": 3, "graph_candidates": 3, **fixed}):
        server = rga.GraphReranker(index, g, candidates=25, **kw).search_batch(Q, 10)
        local = rga.GraphReranker(index, proj, candidates=25, **kw).search_batch(Q, 10)
        _same(local, server)
    assert calls == []
