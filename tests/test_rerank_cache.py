"""GraphReranker(cache=...): cached == uncached, never stale after index add/delete or graph
refresh, key sensitivity, copies safe from mutation, LRU eviction, concurrent use."""
from __future__ import annotations

import threading

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.rerank.cache import ResultCache, fingerprint


def _data(n=200, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    G = nx.Graph()
    for i in range(n):
        G.add_node(i, embedding=X[i])
    for i in range(n):
        for j in rng.choice(n, 3, replace=False):
            if int(j) != i:
                G.add_edge(i, int(j))
    index = rga.HNSWIndex(dim=dim, space="cosine", M=8, ef_construction=100)
    index.add(np.arange(n), X)
    return X, G, index, NetworkXGraph(G)


def _plain(rows):
    return [[(h.id, h.score, h.vector_score, h.rank, h.vector_rank, h.in_graph, h.context_score,
              sorted(h.attention.items())) for h in row] for row in rows]


def _close(a, b):
    """Ids, ranks and explanations identical; floats within float32 rounding (a batch of other
    size may differ in the last bit: the scoring kernel's summation order)."""
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert [h.id for h in ra] == [h.id for h in rb]
        for x, y in zip(ra, rb):
            assert (x.rank, x.vector_rank, x.in_graph) == (y.rank, y.vector_rank, y.in_graph)
            assert (x.score, x.vector_score) == pytest.approx((y.score, y.vector_score), abs=1e-6)
            assert (x.context_score is None) == (y.context_score is None)
            assert x.context_score is None or x.context_score == pytest.approx(y.context_score, abs=1e-6)
            assert sorted(x.attention) == sorted(y.attention)
            assert [x.attention[k] for k in sorted(x.attention)] == \
                pytest.approx([y.attention[k] for k in sorted(x.attention)], abs=1e-6)


def _fresh(index, graph, **kw):
    return rga.GraphReranker(index, graph, candidates=30, **kw)


def test_cached_equals_uncached_and_counts():
    X, G, index, graph = _data()
    rng = np.random.default_rng(1)
    Q = rng.normal(size=(6, X.shape[1])).astype(np.float32)
    rr = _fresh(index, graph, cache=64)
    ref = _fresh(index, graph)
    want = _plain(ref.search_batch(Q, k=5))
    assert _plain(rr.search_batch(Q, k=5)) == want            # 6 misses
    _close([rr.search(q, k=5) for q in Q], ref.search_batch(Q, k=5))     # 6 hits
    assert _plain(rr.search_batch(Q[::-1], k=5)) == want[::-1]  # 6 hits
    info = rr.cache_info()
    assert (info.hits, info.misses, info.size) == (12, 6, 6)
    assert info.hit_rate == pytest.approx(12 / 18)
    assert rr.last_timings["expand"] == 0.0 and "cache" in rr.last_timings
    # a batch mixing known and new queries computes only the new ones, in the right places
    Q2 = np.concatenate([Q[:2], rng.normal(size=(2, X.shape[1])).astype(np.float32)])
    _close(rr.search_batch(Q2, k=5), ref.search_batch(Q2, k=5))
    info = rr.cache_info()
    assert (info.hits, info.misses, info.size) == (14, 8, 8)
    # rerank: keyed on ids and scores too
    ids = [int(i) for i in rng.choice(len(X), 12, replace=False)]
    sc = rng.uniform(size=12)
    for _ in range(2):
        assert _plain([rr.rerank(Q[0], ids, sc, k=4)]) == _plain([ref.rerank(Q[0], ids, sc, k=4)])
        assert _plain([rr.rerank(Q[0], ids, k=4)]) == _plain([ref.rerank(Q[0], ids, k=4)])
    assert rr.cache_info().hits == 16 and rr.cache_info().misses == 10
    sc2 = sc.copy()
    sc2[3] += 1e-9
    rr.rerank(Q[0], ids, sc2, k=4)
    rr.rerank(Q[0], ids[::-1], sc[::-1], k=4)
    assert rr.cache_info().misses == 12


def test_never_stale_after_index_add_and_delete():
    X, G, index, graph = _data()
    rr = _fresh(index, graph, cache=True)
    q = X[5] + 0.01
    first = rr.search(q, k=3)
    assert first[0].id == 5
    v0 = index.version
    # a new node right at the query: the top hit must change
    new = q * 1.0
    G.add_node(999, embedding=new.astype(np.float32))
    G.add_edge(999, 5)
    index.add([999], new.reshape(1, -1))
    assert index.version != v0
    hits = rr.search(q, k=3)
    assert hits[0].id == 999
    assert _plain([hits]) == _plain([_fresh(index, graph).search(q, k=3)])
    index.delete([999])
    hits = rr.search(q, k=3)
    assert 999 not in [h.id for h in hits]
    assert _plain([hits]) == _plain([_fresh(index, graph).search(q, k=3)])
    assert rr.cache_info().hits == 0 and rr.cache_info().size == 1  # emptied on each change


def test_never_stale_after_graph_refresh():
    X, G, index, graph = _data()
    rr = _fresh(index, graph, cache=True, temperature=0.05)
    q = X[7]
    before = rr.search(q, k=5)
    assert _plain([rr.search(q, k=5)]) == _plain([before])
    assert rr.cache_info().hits == 1
    # rewire the top hit's neighbourhood to far-away nodes and refresh the snapshot
    top = before[0].id
    far = np.argsort(X @ q)[:3]
    for nb in list(G.neighbors(top)):
        G.remove_edge(top, nb)
    for f in far:
        G.add_edge(top, int(f))
    v0 = graph.version
    graph.refresh()
    assert graph.version != v0
    after = rr.search(q, k=5)
    want = _fresh(index, graph, temperature=0.05).search(q, k=5)
    assert _plain([after]) == _plain([want])
    assert _plain([after]) != _plain([before])
    # a node added without refresh: the snapshot (and the version) change on the next call
    v1 = graph.version
    G.add_node(5000, embedding=X[0])
    assert graph.version != v1
    assert rr.cache_info().hits == 1


def test_key_sensitivity():
    X, G, index, graph = _data()
    rr = _fresh(index, graph, cache=100)
    q = X[11] + 0.1
    rr.search(q, k=5)
    rr.search(q, k=6)                                    # other k
    rr.search(q, k=5, filter=list(range(0, 200, 2)))     # a filter
    rr.search(q, k=5, filter=list(range(0, 200, 3)))     # another filter
    rr.search(q.astype(np.float64), k=5)                 # other dtype, same values
    q2 = q.copy()
    q2[0] = np.nextafter(q2[0], np.float32(10))
    rr.search(q2, k=5)                                   # one ulp away
    assert rr.cache_info().misses == 6 and rr.cache_info().hits == 0
    rr.search(q, k=5, filter=set(range(0, 200, 2)))      # the same allow-list as a set: hit
    assert rr.cache_info().hits == 1
    # a scorer parameter changed in place, or another scorer: misses, answers as a fresh reranker
    rr.scorer.temperature = 0.01
    got = rr.search(q, k=5)
    assert rr.cache_info().hits == 1
    assert _plain([got]) == _plain([_fresh(index, graph, temperature=0.01).search(q, k=5)])
    rr.scorer = rga.scorers.PersonalizedPageRankScorer() if hasattr(rga, "scorers") else rr.scorer
    rr.search(q, k=5)
    assert rr.cache_info().hits == 1
    rr.hops = 2
    got = rr.search(q, k=5)
    assert rr.cache_info().hits == 1
    # predicate filters cannot be compared: bypassed, never cached
    rr.search(q, k=5, filter=lambda i: i % 2 == 0)
    rr.search(q, k=5, filter=lambda i: i % 2 == 0)
    info = rr.cache_info()
    assert info.bypassed == 2 and info.hits == 1


def test_results_safe_from_caller_mutation():
    X, G, index, graph = _data()
    rr = _fresh(index, graph, cache=8)
    q = X[3]
    want = _plain([rr.search(q, k=5)])
    got = rr.search(q, k=5)
    got[0].attention.clear()
    got[1].attention[12345] = 9.0
    got.reverse()
    got.append("junk")
    assert _plain([rr.search(q, k=5)]) == want
    assert rr.cache_info().hits == 2


def test_lru_eviction_and_clear():
    X, G, index, graph = _data()
    rr = _fresh(index, graph, cache=2)
    a, b, c = X[1], X[2], X[3]
    rr.search(a)
    rr.search(b)
    rr.search(a)          # hit; b is now least recently used
    rr.search(c)          # evicts b
    rr.search(a)          # hit
    rr.search(b)          # miss
    info = rr.cache_info()
    assert (info.hits, info.misses, info.size, info.maxsize) == (2, 4, 2, 2)
    rr.clear_cache()
    assert rr.cache_info().size == 0 and rr.cache_info().hits == 0


def test_bad_cache_argument():
    X, G, index, graph = _data(n=30)
    for bad in (0, -3, "big", 1.5):
        with pytest.raises(InvalidInputError):
            _fresh(index, graph, cache=bad)
    assert _fresh(index, graph).cache_info() is None
    shared = ResultCache(10)
    assert _fresh(index, graph, cache=shared).cache is shared


def test_fingerprint_sees_weights():
    class S:
        def __init__(self):
            self.w = np.zeros((3, 3))
            self.t = 1.0
    s = S()
    f0 = fingerprint(s)
    s.w[1, 2] = 1e-12
    assert fingerprint(s) != f0
    s.w[1, 2] = 0.0
    assert fingerprint(s) == f0
    s.t = 2.0
    assert fingerprint(s) != f0


def test_fingerprint_sees_nested_layer_weights_and_the_cache_follows_them():
    """A direction-aware wrapper keeps its convolutions' weights several levels down: an
    in-place update anywhere in it, in a scorer or an ensemble, changes the fingerprint and
    empties the cache (no stale re-ranking after retraining in place)."""
    layer = rga.graph.DirGNNConv(rga.graph.SAGEConv(4, 4)).residual_init(in_scale=0.5)
    scorer = rga.scorers.LayerScorer(layer, blend=1.0)
    ens = rga.scorers.EnsembleScorer([scorer, rga.scorers.AttentionScorer(0.2, 0.8)], [0.5, 0.5])
    f_s, f_e = fingerprint(scorer), fingerprint(ens)
    w = layer.conv_in.lin_l.weight.data
    w[0, 1] += 1e-6
    assert fingerprint(scorer) != f_s and fingerprint(ens) != f_e
    w[0, 1] -= 1e-6
    layer.alpha = 0.25                       # a plain field of the wrapper
    assert fingerprint(scorer) != f_s

    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 4)).astype(np.float32)
    G = nx.DiGraph()
    for i, x in enumerate(X):
        G.add_node(i, embedding=x)
    G.add_edges_from((i, (i * 7 + 3) % 30) for i in range(30))
    index = rga.HNSWIndex(dim=4, space="cosine", max_elements=30)
    index.add(np.arange(30), X)
    layer.alpha = 0.5
    rr = rga.GraphReranker(index, NetworkXGraph(G), scorer=scorer, candidates=20, cache=16)
    q = X[4] + 0.1
    first = rr.search(q, 5)
    layer.conv_out.lin_l.weight.data[:] = rng.normal(size=(4, 4))
    after = rr.search(q, 5)
    fresh = rga.GraphReranker(index, NetworkXGraph(G), scorer=scorer, candidates=20).search(q, 5)
    assert [(h.id, round(h.score, 6)) for h in after] == [(h.id, round(h.score, 6)) for h in fresh]
    assert [h.score for h in after] != [h.score for h in first]


def test_concurrent_threads_with_index_changes():
    X, G, index, graph = _data(n=150)
    rr = _fresh(index, graph, cache=32)
    rng = np.random.default_rng(5)
    Q = rng.normal(size=(12, X.shape[1])).astype(np.float32)
    ref = _fresh(index, graph)
    want = _plain([ref.search(q, k=4) for q in Q])
    errors: list = []

    def work(seed):
        r = np.random.default_rng(seed)
        try:
            for _ in range(60):
                i = int(r.integers(0, len(Q)))
                if _plain([rr.search(Q[i], k=4)]) != [want[i]]:
                    errors.append(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = rr.cache_info()
    assert info.hits + info.misses == 360
    assert info.hits >= 360 - 6 * 12 and info.size <= 12
    # concurrent searches while the index changes: every answer matches the index state the
    # search ran under (before or after the change), never a mix kept in the cache
    extra = Q[0] * 1.0
    index.add([777], extra.reshape(1, -1))
    G.add_node(777, embedding=extra)
    graph.refresh()
    assert _plain([rr.search(Q[0], k=4)]) == _plain([_fresh(index, graph).search(Q[0], k=4)])
    assert rr.search(Q[0], k=4)[0].id == 777
