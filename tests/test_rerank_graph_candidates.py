"""GraphReranker(graph_candidates=m): graph neighbours of the top vector hits join the candidates."""
import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.rerank.scorers import Scores


class ByIdScorer:
    """Ranks candidates by id, larger first: shows which ids reached the candidate set."""

    hops_needed = 0
    uses_graph = False

    def score(self, queries, candidates, subgraph):
        return Scores(candidates.ids.astype(np.float64))


def _setup():
    # 10 items on an arc; item 9 is far from the query but a dependency (out-neighbour) of item 0
    ang = np.r_[np.linspace(0.0, 0.8, 9), 3.0]
    X = np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float32)
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(10))
    G.add_edges_from([(0, 9), (7, 8), (1, 6)])
    index = rga.HNSWIndex(dim=2, space="cosine", M=8, ef_construction=50, max_elements=10)
    index.add(np.arange(10), X)
    return index, NetworkXGraph(G), X


def test_neighbours_of_top_hits_join_the_candidates():
    index, graph, X = _setup()
    q = np.array([1.0, 0.0], np.float32)
    plain = rga.GraphReranker(index, graph, scorer=ByIdScorer(), candidates=3)
    assert [h.id for h in plain.search(q, k=3)] == [2, 1, 0]
    rr = rga.GraphReranker(index, graph, scorer=ByIdScorer(), candidates=3, graph_candidates=1, direction="out")
    hits = rr.search(q, k=3)
    assert [h.id for h in hits] == [9, 2, 1]
    # its vector score is its own cosine with the query
    assert hits[0].vector_score == pytest.approx(float(np.cos(3.0)), abs=1e-6)
    assert rr.rerank_arrays(q[None], k=3)[0][0].tolist() == [9, 2, 1]
    # the top 2 hits (0, 1) bring 9 and 6; 7's neighbour 8 is not reached
    r2 = rga.GraphReranker(index, graph, scorer=ByIdScorer(), candidates=3, graph_candidates=2, direction="out")
    assert [h.id for h in r2.search(q, k=3)] == [9, 6, 2]
    # direction "in": 0 and 1 have no in-neighbours
    rin = rga.GraphReranker(index, graph, scorer=ByIdScorer(), candidates=3, graph_candidates=2,
                            graph_candidate_direction="in")
    assert [h.id for h in rin.search(q, k=3)] == [2, 1, 0]
    # a filter also holds for the added candidates
    assert [h.id for h in rr.search(q, k=3, filter=[0, 1, 2, 3])] == [2, 1, 0]
    # a graph scorer ranks the added candidate too (it is in the graph)
    ra = rga.GraphReranker(index, graph, scorer="attention", candidates=3, graph_candidates=1)
    got = ra.search(q, k=3)
    assert len(got) == 3 and set(h.id for h in got) <= {0, 1, 2, 9} and all(h.in_graph for h in got)


def test_bad_options():
    index, graph, _ = _setup()
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, graph, graph_candidates=-1)
    with pytest.raises(InvalidInputError):
        rga.GraphReranker(index, graph, graph_candidates=1, graph_candidate_direction="sideways")
