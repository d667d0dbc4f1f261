"""EnsembleScorer: a weighted sum of scorers, against a hand-computed case and side by side
with its parts run alone."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import ConfigError, InvalidInputError

S = rga.scorers


def _u(deg):
    r = math.radians(deg)
    return np.array([math.cos(r), math.sin(r)], np.float64)


def _path_graph():
    # q = (1, 0); A at 0, B at 50, C at 80 degrees; path A - B - C
    G = nx.Graph()
    for name, deg in (("A", 0), ("B", 50), ("C", 80)):
        G.add_node(name, embedding=_u(deg))
    G.add_edges_from([("A", "B"), ("B", "C")])
    return G


def test_hand_case_vector_plus_attention_context():
    G = _path_graph()
    T = 0.5
    ens = S.EnsembleScorer([S.VectorScorer(), S.AttentionScorer(T, 1.0)], [1.0, 3.0])   # -> 0.25 / 0.75
    np.testing.assert_allclose(ens.weights, [0.25, 0.75])
    assert ens.hops_needed == 0 and ens.uses_graph
    rr = rga.GraphReranker(None, NetworkXGraph(G), scorer=ens)
    hits = {h.id: h for h in rr.rerank([1.0, 0.0], ["A", "B", "C"], candidate_scores=[1.0, 0.2, 0.9], k=3)}
    q = np.array([1.0, 0.0])
    deg = {"A": 0, "B": 50, "C": 80}
    nbhd = {"A": ["A", "B"], "B": ["B", "A", "C"], "C": ["C", "B"]}
    own = {"A": 1.0, "B": 0.2, "C": 0.9}
    for c, members in nbhd.items():
        X = np.stack([_u(deg[m]) for m in members])
        a = np.exp(X @ q / T)
        a /= a.sum()
        h = a @ X                          # h = sum_j a_j x_j
        ctx = float(q @ h) / np.linalg.norm(h)   # cosine: sim(q, h)
        assert hits[c].score == pytest.approx(0.25 * own[c] + 0.75 * ctx, abs=1e-6)
    # the context is the weighted mean of the parts' contexts; VectorScorer has none -> NaN
    assert hits["A"].context_score is None or math.isnan(hits["A"].context_score)


def test_weighted_sum_of_parts_run_alone_with_a_trained_layer():
    rng = np.random.default_rng(5)
    n, d = 40, 8
    X = rng.standard_normal((n, d))
    G = nx.gnp_random_graph(n, 0.1, seed=2, directed=True)
    for i in range(n):
        G.add_node(i, embedding=X[i])
    index = rga.HNSWIndex(dim=d, space="cosine", M=8, ef_construction=100)
    index.add(np.arange(n), X)
    graph = NetworkXGraph(G)
    layer = rga.graph.DirGNNConv(rga.graph.SAGEConv(d, d), alpha=0.5).residual_init(0.5, 0.3)
    part_a = S.LayerScorer(layer, 0.7)
    part_b = S.AttentionScorer(0.1, 0.6)
    Q = rng.standard_normal((5, d))
    kw = dict(candidates=15, graph_candidates=0, direction="both")

    def scores(scorer):
        rr = rga.GraphReranker(index, graph, scorer=scorer, **kw)
        out = {}
        for b, row in enumerate(rr.search_batch(Q, k=15)):
            out.update({(b, h.id): h.score for h in row})
        return out

    sa, sb = scores(part_a), scores(part_b)
    se = scores(S.EnsembleScorer([part_a, part_b], [0.3, 0.7]))
    assert se.keys() == sa.keys() == sb.keys()
    for key in se:
        assert se[key] == pytest.approx(0.3 * sa[key] + 0.7 * sb[key], abs=1e-9)
    # a weight of 0 leaves exactly the other part
    s1 = scores(S.EnsembleScorer([part_a, part_b], [1.0, 0.0]))
    for key in s1:
        assert s1[key] == pytest.approx(sa[key], abs=1e-12)
    # hops: the largest part's (the one-layer model reads 1 hop, attention 0)
    assert S.EnsembleScorer([S.AttentionScorer(), S.LayerScorer(layer, 0.5)]).hops_needed == 1


@pytest.mark.parametrize("scorers, weights, err", [
    ([], None, ConfigError),
    ("attention", None, ConfigError),
    ([object()], None, ConfigError),
    ([S.VectorScorer(), S.AttentionScorer()], [1.0], InvalidInputError),
    ([S.VectorScorer(), S.AttentionScorer()], [1.0, -0.5], InvalidInputError),
    ([S.VectorScorer(), S.AttentionScorer()], [0.0, 0.0], InvalidInputError),
    ([S.VectorScorer(), S.AttentionScorer()], [1.0, float("nan")], InvalidInputError),
    ([S.VectorScorer(), S.AttentionScorer()], ["a", "b"], InvalidInputError),
])
def test_bad_configuration_is_a_typed_error(scorers, weights, err):
    with pytest.raises(err):
        S.EnsembleScorer(scorers, weights)
