"""Zero-shot defaults chosen per graph (rerank/auto.py), the attention context "mean", the
Poincare-position scorer, the generated taxonomy and the standard-library class hierarchy."""
import math
import sys

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import ConfigError, InvalidInputError
from ruvector_graph_attn.rerank import auto
from ruvector_graph_attn.rerank.auto import auto_parameters, graph_statistics
from ruvector_graph_attn.rerank.hierarchy import PoincareScorer, poincare_distance
from ruvector_graph_attn.rerank.scorers import DEFAULT_BLEND, DEFAULT_TEMPERATURE, AttentionScorer


def _circle_graph(n=40, extra_edges=()):
    """n unit vectors at angles 2 pi k / n; ring edges k - k+1 (every degree 2)."""
    ang = 2 * np.pi * np.arange(n) / n
    X = np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float64)
    G = nx.Graph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(n))
    G.add_edges_from((k, (k + 1) % n) for k in range(n))
    G.add_edges_from(extra_edges)
    index = rga.HNSWIndex(dim=2, space="cosine", M=8, ef_construction=50, max_elements=n)
    index.add(np.arange(n), X.astype(np.float32))
    return X, NetworkXGraph(G), index


# ---------------------------------------------------------------------------- the auto rule
def test_statistics_of_a_ring_regular_degrees_and_known_homophily():
    n = 40
    X, graph, index = _circle_graph(n)
    st = graph_statistics(graph, np.arange(n), "both", seed=0)
    assert st["sampled"] == n
    assert st["degree_mean"] == pytest.approx(2.0) and st["degree_cv"] == pytest.approx(0.0)
    # neighbours are 9 degrees apart: cosine cos(2 pi / n) on every edge
    assert st["edge_cosine"] == pytest.approx(math.cos(2 * math.pi / n), abs=1e-9)
    r = st["random_cosine"]
    assert abs(r) < 0.5
    assert st["homophily"] == pytest.approx((st["edge_cosine"] - r) / (1 - r))
    assert auto_parameters(st) == (0.2, 0.9)
    rr = rga.GraphReranker(index, graph)
    assert rr.auto_statistics is None                       # chosen lazily, at the first call
    rr.search(X[3], k=3)
    assert (rr.temperature, rr.blend) == (0.2, 0.9)
    assert (rr.scorer.temperature, rr.scorer.blend) == (0.2, 0.9)
    assert rr.auto_statistics["degree_cv"] == pytest.approx(0.0)


def test_statistics_of_a_star_heavy_tailed_degrees():
    # node 0 is a hub joined to every other node (besides the ring): degrees n+1 and 3
    n = 40
    X, graph, index = _circle_graph(n, extra_edges=[(0, k) for k in range(2, n - 1)])
    st = graph_statistics(graph, np.arange(n), "both")
    # by hand: the hub has its 2 ring neighbours and n - 3 spokes; nodes 2..n-2 have 3, nodes 1 and n-1 have 2
    deg = np.array([2 + (n - 3)] + [2 + (1 if 2 <= k <= n - 2 else 0) for k in range(1, n)], float)
    assert st["degree_mean"] == pytest.approx(deg.mean())
    assert st["degree_cv"] == pytest.approx(deg.std() / deg.mean())
    assert st["degree_cv"] > 1.0                                      # one hub among 40 is heavy-tailed
    assert auto_parameters(st) == (0.1, 0.9)
    # a forest of stars: 4 hubs with 9 leaves each -> degrees 9 (x4) and 1 (x36): cv = 1.2
    G = nx.Graph()
    for h in range(4):
        G.add_node(h * 10, embedding=np.array([1.0, h], np.float32))
        for j in range(1, 10):
            G.add_node(h * 10 + j, embedding=np.array([1.0, h + 0.1 * j], np.float32))
            G.add_edge(h * 10, h * 10 + j)
    st = graph_statistics(NetworkXGraph(G), np.arange(40), "both")
    d = np.array([9] * 4 + [1] * 36, float)
    assert st["degree_cv"] == pytest.approx(d.std() / d.mean()) and st["degree_cv"] > 1.0
    assert auto_parameters(st) == (0.1, 0.9)


def test_auto_without_statistics_and_explicit_values():
    assert auto_parameters(None) == (auto.AUTO_TEMPERATURE_HEAVY_TAILED, auto.AUTO_BLEND) == (0.1, 0.9)
    X, graph, index = _circle_graph()
    # explicit numbers are used as given, never replaced
    rr = rga.GraphReranker(index, graph, temperature=0.7, blend=0.3)
    rr.search(X[0], k=3)
    assert (rr.scorer.temperature, rr.scorer.blend) == (0.7, 0.3) and rr.auto_statistics is None
    # only the free one is chosen
    rr = rga.GraphReranker(index, graph, temperature=0.7)
    rr.search(X[0], k=3)
    assert (rr.scorer.temperature, rr.scorer.blend) == (0.7, 0.9)
    # other scorers keep the package constants and get no graph candidates
    for name in ("hyperbolic", "sparse_topk", "vector"):
        r = rga.GraphReranker(index, graph, scorer=name)
        assert (r.temperature, r.blend, r.graph_candidates) == (DEFAULT_TEMPERATURE, DEFAULT_BLEND, 0)
    assert rga.GraphReranker(index, graph).graph_candidates == auto.AUTO_GRAPH_CANDIDATES == 5
    assert rga.GraphReranker(index, graph, graph_candidates=0).graph_candidates == 0
    # no index to sample from (rerank only): the fallback values
    rr = rga.GraphReranker(None, graph)
    rr.rerank(X[0], [0, 1, 2], k=2)
    assert (rr.scorer.temperature, rr.scorer.blend) == (0.1, 0.9) and rr.auto_statistics is None
    with pytest.raises(ConfigError):
        rga.GraphReranker(index, graph, temperature="hot")
    with pytest.raises(ConfigError):
        rga.GraphReranker(index, graph, graph_candidates="many")


def test_auto_is_chosen_again_when_the_graph_changes():
    n = 40
    X, graph, index = _circle_graph(n)
    rr = rga.GraphReranker(index, graph)
    rr.search(X[0], k=3)
    assert rr.scorer.temperature == 0.2
    G = graph.G
    G.add_edges_from((0, k) for k in range(2, n - 1))        # a hub: heavy-tailed degrees
    graph.refresh()
    rr.search(X[0], k=3)
    assert rr.auto_statistics["degree_cv"] > 1.0 and rr.scorer.temperature == 0.1


# ---------------------------------------------------------------------------- attention context
def test_attention_context_mean_by_hand():
    # q = (1, 0); candidate A = (1, 0), its one neighbour B = (0, 1); T = 1, blend 0.5
    G = nx.Graph()
    G.add_node("A", embedding=np.array([1.0, 0.0]))
    G.add_node("B", embedding=np.array([0.0, 3.0]))        # norm 3: cosine ignores it
    G.add_edge("A", "B")
    graph = NetworkXGraph(G)
    q = np.array([1.0, 0.0])
    aA, aB = math.e / (math.e + 1), 1 / (math.e + 1)          # softmax of the cosines (1, 0) / T
    mean = rga.GraphReranker(None, graph, scorer=AttentionScorer(1.0, 0.5, context="mean"))
    pooled = rga.GraphReranker(None, graph, scorer=AttentionScorer(1.0, 0.5))
    hm = mean.rerank(q, ["A"], [0.2], k=1)[0]
    hp = pooled.rerank(q, ["A"], [0.2], k=1)[0]
    assert hm.context_score == pytest.approx(aA * 1.0 + aB * 0.0)
    assert hm.score == pytest.approx(0.5 * 0.2 + 0.5 * aA)
    assert hp.context_score == pytest.approx(aA / math.hypot(aA, aB))
    assert hm.attention == pytest.approx({"A": aA, "B": aB})
    # l2 space: ctx = sum_j a_j (-|q - x_j|^2) with a = softmax(-|q - x|^2 / T): A 0, B 10
    idx = rga.HNSWIndex(dim=2, space="l2", M=8, ef_construction=50, max_elements=2)
    idx.add(["A", "B"], np.array([[1.0, 0.0], [0.0, 3.0]], np.float32))
    r2 = rga.GraphReranker(idx, graph, scorer=AttentionScorer(1.0, 1.0, context="mean"))
    w = np.exp([0.0, -10.0]) / np.exp([0.0, -10.0]).sum()
    h = r2.rerank(q, ["A"], [0.0], k=1)[0]
    assert h.context_score == pytest.approx(w[1] * -10.0)
    with pytest.raises(ConfigError):
        AttentionScorer(context="max")


# ---------------------------------------------------------------------------- the default on a taxonomy
def test_default_beats_naive_and_vector_on_a_small_generated_taxonomy():
    from ruvector_graph_attn.bench.rerank_defaults import hierarchy_bench
    from ruvector_graph_attn.rerank.synthetic import taxonomy_graph

    d = taxonomy_graph(n=3000, dim=32, roots=10, seed=1)
    b = hierarchy_bench("taxonomy", d.x, d.edges, 0.1, 0, 0, 150)
    vec = b.metrics("test", [r[:10] for r in b.rank("test", 100, scorer="vector", graph_candidates=0)])["ndcg@10"]
    naive = b.metrics("test", b.naive("test", 100))["ndcg@10"]
    old = b.metrics("test", b.rank("test", 100, temperature=0.2, blend=0.8, graph_candidates=0))["ndcg@10"]
    new = b.metrics("test", b.rank("test", 100))["ndcg@10"]
    assert new > 1.2 * naive and new > 1.2 * vec and new > old, (vec, naive, old, new)


def test_trained_rows_on_a_small_generated_taxonomy():
    """bench rerank-defaults --trained: the trained rows of bench rerank-real on a parent-
    retrieval benchmark; the layer trained on the other nodes' parent edges beats vector-only
    on held-out children (graph candidates bring in the parents the vector search missed)."""
    from types import SimpleNamespace

    from ruvector_graph_attn.bench.rerank_defaults import hierarchy_bench, trained_bench_rows
    from ruvector_graph_attn.rerank.synthetic import taxonomy_graph

    d = taxonomy_graph(n=2000, dim=32, roots=8, seed=2)
    b = hierarchy_bench("taxonomy", d.x, d.edges, 0.1, 0, 0, 100, n_cand=50)
    # training pairs never include a held-out node's parent edge
    assert not np.isin(b.ei[0], b.held).any() and b.held.size > 0
    args = SimpleNamespace(candidates=50, seed=0, train_queries=1000, train_epochs=3)
    rows = {}
    trained_bench_rows(b, args, lambda m, p, ranked, extra=None: rows.update({m: (b.metrics("test", ranked),
                                                                                 extra)}))
    vec = b.metrics("test", [r[:10] for r in b.rank("test", 50, scorer="vector", graph_candidates=0)])["ndcg@10"]
    hard = rows["DirGNN trained, hard negatives + graph_candidates=10"][0]["ndcg@10"]
    assert hard > 1.15 * vec, (hard, vec)       # measured: 0.267 vs 0.204
    ens = rows["ensemble: trained layer + attention + graph_candidates=10"]
    assert ens[1]["tune_ndcg@10"] >= rows["attention alone (the ensemble's other part) + graph_candidates=10"][1][
        "tune_ndcg@10"]
    # the vote with a trained query map: what the children nearest the query point at
    vote = rows["vote, trained query map (VoteTrainer)"][0]["ndcg@10"]
    assert vote > 2.0 * vec, (vote, vec)        # measured: 0.505 vs 0.204
    assert len(rows) == 4 + 4 + 1


def test_bench_vote_rows_end_to_end(capsys):
    """bench rerank-defaults on two small generated benchmarks with --trained --skip-dirgnn: the
    vote rows (zero-shot, tuned, trained), their candidate-set recall, the ratio columns."""
    import json

    from ruvector_graph_attn.bench import rerank_defaults as RD

    args = RD.build_parser().parse_args(
        ["--benchmarks", "latent", "taxonomy", "--taxonomy-n", "3000", "--latent-n", "3000",
         "--max-tune-queries", "100", "--max-test-queries", "150", "--candidates", "50", "--trained",
         "--skip-dirgnn", "--train-queries", "1000", "--train-epochs", "2", "--json"])
    assert RD.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    by = {}
    for r in out["rows"]:
        by.setdefault(r["benchmark"], {})[r["method"]] = r
    for name, rows in by.items():
        vec, naive = rows["HNSW vector-only"], rows["naive: cos + 0.5 * mean neighbour cos"]
        for r in rows.values():
            assert r["ndcg_vs_vector"] == pytest.approx(r["ndcg@10"] / vec["ndcg@10"])
            assert r["ndcg_vs_naive"] == pytest.approx(r["ndcg@10"] / naive["ndcg@10"])
        # the vote's candidates are the index hits plus what the voters reach: never fewer, recall never lower
        for m in ("vote (alias defaults)", "vote (tuned)"):
            assert rows[m]["cand_size"] >= 50 and rows[m]["cand_recall"] >= vec["cand_recall"] - 1e-12
        assert not any("DirGNN" in m for m in rows)
    tax, lat = by["taxonomy"], by["latent"]
    # parent retrieval: the siblings' out-edges point at the parent (measured 0.641 vs 0.317)
    assert tax["vote (alias defaults, direction=out)"]["ndcg@10"] > 1.6 * tax["HNSW vector-only"]["ndcg@10"]
    assert tax["vote (alias defaults)"]["params"].endswith("both")
    assert tax["vote (tuned)"]["ndcg@10"] > 1.6 * tax["HNSW vector-only"]["ndcg@10"]
    assert "tune_ndcg@10" in tax["vote (tuned)"]
    assert tax["vote, trained query map (VoteTrainer)"]["ndcg@10"] > 1.6 * tax["HNSW vector-only"]["ndcg@10"]
    assert "1000 pairs / 1000 queries" in tax["vote, trained query map (VoteTrainer)"]["params"]
    # fresh queries without a held-out node: no "out" row, nothing trained
    assert "vote (alias defaults, direction=out)" not in lat
    assert not any("trained" in m for m in lat)


def test_taxonomy_graph_shape():
    from ruvector_graph_attn.rerank.synthetic import taxonomy_graph

    d = taxonomy_graph(n=2000, dim=16, roots=5, seed=3)
    again = taxonomy_graph(n=2000, dim=16, roots=5, seed=3)
    assert np.array_equal(d.x, again.x) and np.array_equal(d.parent, again.parent)
    assert (d.parent[:5] == -1).all() and (d.parent[5:] < np.arange(5, 2000)).all()
    assert np.array_equal(d.edges, np.stack([np.arange(5, 2000), d.parent[5:]]))
    assert np.allclose(np.linalg.norm(d.x, axis=1), 1.0, atol=1e-5)
    assert (d.depth[5:] == d.depth[d.parent[5:]] + 1).all()
    cos_edge = (d.x[d.edges[0]] * d.x[d.edges[1]]).sum(1).mean()
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2000, (2, 5000))
    assert cos_edge > (d.x[a] * d.x[b]).sum(1).mean() + 0.2      # children near their parent
    children = np.bincount(d.edges[1], minlength=2000)
    assert children.max() > 20 * max(np.median(children), 1)     # a few broad categories
    with pytest.raises(InvalidInputError):
        taxonomy_graph(n=5, roots=5)


# ---------------------------------------------------------------------------- Poincare positions
def test_poincare_scorer_by_hand():
    # a root near the origin, two children further out in different directions, and a grandchild
    pos = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.8, 0.1]])
    ids = ["root", "a", "b", "a1"]
    d = poincare_distance(pos[:, None], pos[None])
    assert d[0, 1] == pytest.approx(math.acosh(1 + 2 * 0.25 / 0.75))
    sc = PoincareScorer(ids, pos, "ancestor", anchors=1, temperature=1.0, alpha=2.0, blend=1.0)
    # the best vector hit is a1 (the anchor); every candidate is scored by -d(a1, c) - 2 max(0, |c| - |a1|)
    X = {i: np.array([1.0, 0.1 * k]) for k, i in enumerate(ids)}
    G = nx.Graph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in ids)
    rr = rga.GraphReranker(None, NetworkXGraph(G), scorer=sc)
    v = [0.1, 0.2, 0.3, 0.9]
    hits = rr.rerank(np.array([1.0, 0.0]), ids, v, k=4)
    got = {h.id: h.score for h in hits}
    assert got["a"] == pytest.approx(-d[3, 1]) and got["root"] == pytest.approx(-d[3, 0])
    assert got["b"] == pytest.approx(-d[3, 2])
    # the anchor itself has no other anchor: the row's smallest context
    assert got["a1"] == pytest.approx(min(-d[3, 0], -d[3, 1], -d[3, 2]))
    assert [h.id for h in hits][0] == "a"                        # the parent of the best hit ranks first
    # "descendant": a candidate closer to the origin than the anchor is penalised
    sd = PoincareScorer(ids, pos, "descendant", anchors=1, temperature=1.0, alpha=2.0, blend=0.5)
    h = {x.id: x.score for x in rga.GraphReranker(None, NetworkXGraph(G), scorer=sd).rerank(
        np.array([1.0, 0.0]), ids, v, k=4)}
    n = np.linalg.norm(pos, axis=1)
    assert h["root"] == pytest.approx(0.5 * 0.1 + 0.5 * (-d[3, 0] - 2 * (n[3] - n[0])))
    # base=: the base scorer's score replaces v_c (VectorScorer: the same scores; attention: its own)
    from ruvector_graph_attn.rerank.scorers import VectorScorer

    sv = PoincareScorer(ids, pos, "descendant", anchors=1, temperature=1.0, alpha=2.0, blend=0.5, base=VectorScorer())
    assert not sv.uses_graph and sv.hops_needed == 0
    h2 = {x.id: x.score for x in rga.GraphReranker(None, NetworkXGraph(G), scorer=sv).rerank(
        np.array([1.0, 0.0]), ids, v, k=4)}
    assert h2 == pytest.approx(h)
    att = AttentionScorer(0.5, 0.5)
    sa = PoincareScorer(ids, pos, "descendant", anchors=1, temperature=1.0, alpha=2.0, blend=0.5, base=att)
    assert sa.uses_graph
    ha = {x.id: x.score for x in rga.GraphReranker(None, NetworkXGraph(G), scorer=sa).rerank(
        np.array([1.0, 0.0]), ids, v, k=4)}
    hb = {x.id: x.score for x in rga.GraphReranker(None, NetworkXGraph(G), scorer=att).rerank(
        np.array([1.0, 0.0]), ids, v, k=4)}
    for i in ids:
        assert ha[i] == pytest.approx(h[i] + 0.5 * (hb[i] - v[ids.index(i)]))
    with pytest.raises(InvalidInputError):
        PoincareScorer(ids, pos * 3, "ancestor")
    with pytest.raises(ConfigError):
        PoincareScorer(ids, pos, "sibling")


# ---------------------------------------------------------------------------- class hierarchy
class Base:
    """Alpha thing.

    More text."""


class Mixin:
    """A mixin."""


class Child(Base):
    pass


class Both(Child, Mixin):
    """   Two bases here.   """


def test_class_hierarchy_on_a_fixture():
    from ruvector_graph_attn.datasets.pyclasses import class_hierarchy

    h = class_hierarchy([Both, Base, Child, Mixin, object, Base])
    m = __name__
    assert h.names == [f"{m}.Base", f"{m}.Both", f"{m}.Child", f"{m}.Mixin"]
    # Child's own docstring is empty: its text is its name, not Base's inherited docstring
    assert h.texts == ["Base: Alpha thing.", "Both: Two bases here.", "Child", "Mixin: A mixin."]
    assert h.edge_index.tolist() == [[1, 1, 2], [2, 3, 0]]     # Both -> Child, Both -> Mixin, Child -> Base
    assert [p.tolist() for p in h.parents()] == [[], [2, 3], [0], []]
    assert len(h.fingerprint()) == 64
    with pytest.raises(InvalidInputError):
        class_hierarchy([Base, 3])


@pytest.mark.slow
def test_stdlib_class_hierarchy_known_edges():
    from ruvector_graph_attn.datasets.pyclasses import stdlib_class_hierarchy

    h = stdlib_class_hierarchy(sys.executable)
    pos = {n: i for i, n in enumerate(h.names)}
    edges = set(map(tuple, h.edge_index.T.tolist()))
    assert (pos["builtins.KeyError"], pos["builtins.LookupError"]) in edges
    assert (pos["json.decoder.JSONDecodeError"], pos["builtins.ValueError"]) in edges
    assert h.texts[pos["json.decoder.JSONDecodeError"]].startswith("JSONDecodeError: Subclass of ValueError")
    assert "builtins.object" not in pos and not any(n.startswith("encodings.cp") for n in h.names)
    assert h.names == sorted(h.names) and h.num_nodes > 1000
