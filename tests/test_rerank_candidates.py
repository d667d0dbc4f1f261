"""GraphReranker with candidates from anywhere: rerank / rerank_batch, search filters, text
queries through an embedder, and a scorer written here against the Scorer protocol."""
from __future__ import annotations

import hashlib

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import (
    ConfigError, DimensionMismatchError, InvalidInputError, UnknownIdError,
)
from ruvector_graph_attn.rerank.scorers import Candidates, Scores

N, D = 150, 8


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N, D)).astype(np.float32)
    G = nx.gnm_random_graph(N, 600, seed=3)
    for i in range(N):
        G.add_node(i, embedding=X[i])
    index = rga.HNSWIndex(dim=D, space="cosine", M=8, ef_construction=100)
    index.add(np.arange(N), X)
    Q = rng.standard_normal((5, D)).astype(np.float32)
    return X, index, NetworkXGraph(G), Q


def _same(a, b, exact=True):
    assert [h.id for h in a] == [h.id for h in b]
    if exact:
        assert [h.score for h in a] == [h.score for h in b]
        assert [h.attention for h in a] == [h.attention for h in b]
    else:
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-5, atol=1e-6)
        for x, y in zip(a, b):
            assert x.attention.keys() == y.attention.keys()
            np.testing.assert_allclose([x.attention[k] for k in x.attention], [y.attention[k] for k in x.attention],
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scorer", ["attention", "vector", "hyperbolic", "ppr", "sparse_topk", "vote"])
def test_rerank_with_the_candidates_search_found_equals_search(world, scorer):
    X, index, graph, Q = world
    # graph_candidates=0: search must score exactly the candidates handed to rerank (with the
    # default graph candidates, search scores more candidates than the 30 hits it returns)
    rr = rga.GraphReranker(index, graph, scorer=scorer, candidates=30, graph_candidates=0)
    for q in Q:
        hits = rr.search(q, k=30)
        by_vector = sorted(hits, key=lambda h: h.vector_rank)
        ids = [h.id for h in by_vector]
        scores = [h.vector_score for h in by_vector]
        _same(rr.rerank(q, ids, scores, k=30), hits)
        # without scores: computed from the graph features (same vectors, float64 maths)
        _same(rr.rerank(q, ids, k=30), hits, exact=False)
        # a shuffled candidate order gives the same ranking up to ties
        perm = np.random.default_rng(0).permutation(len(ids))
        again = rr.rerank(q, [ids[i] for i in perm], [scores[i] for i in perm], k=30)
        np.testing.assert_allclose(sorted(h.score for h in again), sorted(h.score for h in hits), rtol=1e-6)
    # batch with ragged lists == single calls
    lists = [[h.id for h in rr.search(q, k=30)][: 10 + 4 * b] for b, q in enumerate(Q)]
    batch = rr.rerank_batch(Q, lists, k=12)
    for q, ids, row in zip(Q, lists, batch):
        assert len(row) == min(12, len(ids))
        assert {h.id for h in row} <= set(ids)
        _same(row, rr.rerank(q, ids, k=12), exact=False)


def test_rerank_scores_from_features_by_hand():
    # q = (1, 0); A at 0 degrees, B at 90 degrees, edge A-B; blend 0 -> score = cosine
    G = nx.Graph()
    G.add_node("A", embedding=np.array([2.0, 0.0], np.float32))
    G.add_node("B", embedding=np.array([0.0, 3.0], np.float32))
    G.add_node("C", embedding=np.array([1.0, 1.0], np.float32))
    G.add_edge("A", "B")
    rr = rga.GraphReranker(None, NetworkXGraph(G), blend=0.0)
    with pytest.raises(InvalidInputError, match="no index"):
        rr.search([1.0, 0.0])
    hits = rr.rerank([1.0, 0.0], ["B", "C", "A"], k=3)
    assert [h.id for h in hits] == ["A", "C", "B"]
    np.testing.assert_allclose([h.score for h in hits], [1.0, np.sqrt(0.5), 0.0], atol=1e-6)
    assert [h.vector_rank for h in hits] == [2, 1, 0]
    # given scores win over features
    hits = rr.rerank([1.0, 0.0], ["B", "C", "A"], [0.9, 0.5, 0.1], k=2)
    assert [h.id for h in hits] == ["B", "C"] and hits[0].score == pytest.approx(0.9)
    # l2 space: -||q - x||^2
    idx = rga.HNSWIndex(dim=2, space="l2")
    idx.add(["A", "B", "C"], np.array([[2, 0], [0, 3], [1, 1]], np.float32))
    rr2 = rga.GraphReranker(idx, NetworkXGraph(G), blend=0.0)
    hits = rr2.rerank([1.0, 0.0], ["A", "B", "C"], k=3)
    assert {h.id: h.score for h in hits} == {"A": pytest.approx(-1.0), "B": pytest.approx(-10.0),
                                           "C": pytest.approx(-1.0)}


def test_rerank_unknown_ids_policy_and_validation(world):
    X, index, graph, Q = world
    rr = rga.GraphReranker(index, graph, candidates=20)
    q = Q[0]
    # with scores: kept, flagged, scored by their given score
    hits = rr.rerank(q, [1, 2, 9999], [0.1, 0.2, 0.95], k=3)
    assert hits[0].id == 9999 and not hits[0].in_graph and hits[0].score == pytest.approx(0.95)
    assert hits[0].attention == {} and hits[0].context_score is None
    # without scores: a typed error naming the id
    with pytest.raises(UnknownIdError, match="9999"):
        rr.rerank(q, [1, 2, 9999])
    with pytest.raises(InvalidInputError, match="more than once"):
        rr.rerank(q, [1, 2, 1])
    with pytest.raises(DimensionMismatchError):
        rr.rerank(q, [1, 2], [0.5])
    with pytest.raises(InvalidInputError):
        rr.rerank(q, [1, 2], [0.5, np.nan])
    with pytest.raises(InvalidInputError):
        rr.rerank(q, "12")
    with pytest.raises(InvalidInputError):
        rr.rerank(q, [1, 2.5])
    with pytest.raises(InvalidInputError):
        rr.rerank(q, [1, "a"])
    with pytest.raises(DimensionMismatchError):
        rr.rerank_batch(Q, [[1, 2]])
    with pytest.raises(DimensionMismatchError):
        rr.rerank(np.ones(D + 1, np.float32), [1, 2])
    assert rr.rerank(q, [], k=5) == []
    assert rr.rerank_batch(Q[:2], [[], [3]], k=5)[0] == []
    # numpy ids work and come back as Python ints
    hits = rr.rerank(q, np.array([5, 6, 7]), k=3)
    assert sorted(h.id for h in hits) == [5, 6, 7] and all(type(h.id) is int for h in hits)


def test_search_filter_allow_list_and_predicate(world):
    X, index, graph, Q = world
    for scorer in ("attention", "vector", "ppr"):
        rr = rga.GraphReranker(index, graph, scorer=scorer, candidates=40)
        allow = set(range(0, N, 3))
        for q in Q:
            hits = rr.search(q, k=10, filter=allow)
            assert len(hits) == 10 and all(h.id in allow for h in hits)
            # the same as re-ranking the allowed candidates: attention still reads the whole graph
            hits_p = rr.search(q, k=10, filter=lambda i: i % 3 == 0)
            assert [h.id for h in hits_p] == [h.id for h in hits]
            some_neighbour_outside = any(k not in allow for h in hits for k in h.attention)
            if scorer == "attention":
                assert some_neighbour_outside
        batch = rr.search_batch(Q, k=10, filter=allow)
        for q, row in zip(Q, batch):
            _same(row, rr.search(q, k=10, filter=allow), exact=False)
        # fewer allowed ids than k
        hits = rr.search(Q[0], k=10, filter=[4, 8, 10_000])
        assert sorted(h.id for h in hits) == [4, 8]
        assert rr.search(Q[0], k=10, filter=[]) == []
    ids, scores = rga.GraphReranker(index, graph, candidates=40).rerank_arrays(Q, k=5, filter=allow)
    assert all(int(i) in allow for i in ids.reshape(-1))
    with pytest.raises(InvalidInputError):
        rr.search(Q[0], filter=3)


class _IgnoringIndex:
    """An index that ignores the filter: the reranker must still honour it."""

    def __init__(self, index):
        self._index, self.dim, self.space = index, index.dim, index.space

    def search(self, Q, k, ef=None, filter=None):
        return self._index.search(Q, k, ef=ef)

    def to_similarity(self, d):
        return self._index.to_similarity(d)


def test_filter_is_honoured_even_when_the_index_ignores_it(world):
    X, index, graph, Q = world
    rr = rga.GraphReranker(_IgnoringIndex(index), graph, candidates=40)
    for q in Q:
        hits = rr.search(q, k=40, filter=lambda i: i % 2 == 0)
        assert hits and all(h.id % 2 == 0 for h in hits)
        assert [h.rank for h in hits] == list(range(len(hits)))


def _hash_embedder(texts):
    """Deterministic text -> vector: sha256 bytes as numbers (the same text, the same vector)."""
    out = []
    for t in texts:
        h = hashlib.sha256(t.encode()).digest()
        out.append([b / 255.0 - 0.5 for b in h[:D]])
    return np.asarray(out, np.float32)


class _GraphRagStyle:
    """neo4j-graphrag's Embedder interface: embed_query(text) -> list[float]."""

    def __init__(self):
        self.calls = 0

    def embed_query(self, text):
        self.calls += 1
        return _hash_embedder([text])[0].tolist()


def test_embedder_hook_text_queries(world):
    X, index, graph, Q = world
    texts = ["graph attention", "vector search", "re-ranking"]
    for emb in (_hash_embedder, _GraphRagStyle()):
        V = _hash_embedder(texts)
        rr = rga.GraphReranker(index, graph, candidates=30, embedder=emb)
        E = rr.embed(texts)
        np.testing.assert_allclose(E, V, rtol=1e-6)
        assert E.dtype == (np.float32 if emb is _hash_embedder else np.float64)   # as any query array
        V = E
        _same(rr.search(texts[0], k=8), rr.search(V[0], k=8))
        for row, v in zip(rr.search_batch(texts, k=8), V):
            _same(row, rr.search(v, k=8), exact=False)
        ids = [h.id for h in rr.search(V[1], k=20)]
        _same(rr.rerank(texts[1], ids, k=8), rr.rerank(V[1], ids, k=8))
        for row, v in zip(rr.rerank_batch(texts, [ids] * 3, k=5), V):
            _same(row, rr.rerank(v, ids, k=5), exact=False)
    with pytest.raises(InvalidInputError, match="embedder"):
        rga.GraphReranker(index, graph).search("no embedder here")
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, graph, embedder=42)


@pytest.mark.parametrize("bad,err", [
    (lambda texts: np.ones((len(texts), D + 2)), DimensionMismatchError),         # wrong dimension
    (lambda texts: np.ones((len(texts) + 1, D)), DimensionMismatchError),         # wrong count
    (lambda texts: np.ones(D), DimensionMismatchError),                           # not [n, D]
    (lambda texts: np.full((len(texts), D), np.nan), InvalidInputError),          # NaN
    (lambda texts: [["a"] * D for _ in texts], InvalidInputError),                # not numbers
    (lambda texts: 1 / 0, InvalidInputError),                                     # raises
])
def test_bad_embedder_outputs_raise_typed_errors(world, bad, err):
    X, index, graph, Q = world
    rr = rga.GraphReranker(index, graph, embedder=bad)
    with pytest.raises(err):
        rr.search("text", k=3)
    with pytest.raises(err):
        rr.rerank_batch(["a", "b"], [[1, 2], [3]], k=3)


class MeanNeighbourScorer:
    """A user scorer: score = mean over the candidate's 1-hop neighbourhood (itself included) of
    <q, x_j>, explained by uniform weights; uses only the public protocol."""

    hops_needed = 1

    def score(self, queries, candidates: Candidates, subgraph) -> Scores:
        nb = candidates.neighbourhoods(subgraph)
        pair_of, mem = nb.entries()
        dots = np.einsum("ij,ij->i", queries[candidates.pair_query[pair_of]], subgraph.x[mem])
        sums = np.bincount(pair_of, weights=dots, minlength=candidates.num_pairs)
        cnt = np.bincount(pair_of, minlength=candidates.num_pairs)
        s = sums / cnt
        expl = rga.scorers.AttentionExplanation(subgraph.node_ids, candidates.pair_index, candidates.ids.shape[1],
                                                nb.entry_ptr, 1.0 / cnt[pair_of], entry_node=mem)
        return Scores(candidates.to_matrix(s), candidates.to_matrix(s, fill=np.nan), expl)


def test_user_defined_scorer(world):
    X, index, graph, Q = world
    user = MeanNeighbourScorer()
    assert isinstance(user, rga.scorers.Scorer)
    rr = rga.GraphReranker(index, graph, scorer=user, candidates=25)
    assert rr.hops == 1 and rr.scorer is user
    G = graph.G
    for q in Q[:3]:
        hits = rr.search(q, k=25)
        for h in hits:
            members = [h.id] + list(G.neighbors(h.id))
            expect = float(np.mean(X[members] @ q))
            assert h.score == pytest.approx(expect, rel=1e-5, abs=1e-5)
            assert h.context_score == pytest.approx(expect, rel=1e-5, abs=1e-5)
            assert set(h.attention) == set(members)
            assert sum(h.attention.values()) == pytest.approx(1.0)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    batch = rr.search_batch(Q, k=10)
    for q, row in zip(Q, batch):
        _same(row, rr.search(q, k=10), exact=False)

    class BadShape:
        hops_needed = 0

        def score(self, queries, candidates, subgraph):
            return Scores(np.zeros(3))

    with pytest.raises(InvalidInputError, match="shape"):
        rga.GraphReranker(index, graph, scorer=BadShape()).search(Q[0])

    class NotAScorer:
        pass

    with pytest.raises(ConfigError):
        rga.GraphReranker(index, graph, scorer=NotAScorer())
