"""NetworkXGraph: snapshot, expansion semantics (hand-computed), caps, errors."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from ruvector_graph_attn.connectors import GraphSource, NetworkXGraph
from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError, UnknownIdError


def _emb(i, d=3):
    return np.arange(d, dtype=np.float32) + 10 * i


@pytest.fixture
def digraph():
    # 0 -> 1, 0 -> 2, 1 -> 3, 3 -> 0, 2 -> 4, 5 -> 0
    G = nx.DiGraph()
    for i in range(6):
        G.add_node(i, embedding=_emb(i))
    G.add_edges_from([(0, 1), (0, 2), (1, 3), (3, 0), (2, 4), (5, 0)])
    return G


def _named(sg):
    """(node set, hop by node, edge set) in database ids."""
    ids = sg.node_ids
    return (set(ids), {n: int(h) for n, h in zip(ids, sg.hop)},
            {(ids[a], ids[b]) for a, b in sg.edge_index.T.tolist()})


@pytest.mark.parametrize("direction,hops,nodes,hop,edges", [
    ("out", 1, {0, 1, 2}, {0: 0, 1: 1, 2: 1}, {(0, 1), (0, 2)}),
    ("out", 2, {0, 1, 2, 3, 4}, {0: 0, 1: 1, 2: 1, 3: 2, 4: 2}, {(0, 1), (0, 2), (1, 3), (2, 4)}),
    ("in", 1, {0, 3, 5}, {0: 0, 3: 1, 5: 1}, {(3, 0), (5, 0)}),
    ("in", 2, {0, 3, 5, 1}, {0: 0, 3: 1, 5: 1, 1: 2}, {(3, 0), (5, 0), (1, 3)}),
    ("both", 1, {0, 1, 2, 3, 5}, {0: 0, 1: 1, 2: 1, 3: 1, 5: 1}, {(0, 1), (0, 2), (3, 0), (5, 0)}),
    # hop-1 nodes 1, 2, 3, 5 are expanded: 1-3 (1 -> 3) is traversed, 2 -> 4 reaches 4
    ("both", 2, {0, 1, 2, 3, 4, 5}, {0: 0, 1: 1, 2: 1, 3: 1, 5: 1, 4: 2},
     {(0, 1), (0, 2), (3, 0), (5, 0), (1, 3), (2, 4)}),
    ("out", 0, {0}, {0: 0}, set()),
])
def test_directed_expansion_matches_hand_computed(digraph, direction, hops, nodes, hop, edges):
    g = NetworkXGraph(digraph)
    sg = g.expand([0], hops=hops, direction=direction)
    got_nodes, got_hop, got_edges = _named(sg)
    assert got_nodes == nodes
    assert got_hop == hop
    assert got_edges == edges
    assert sg.node_ids[0] == 0 and sg.seeds.tolist() == [0]
    assert sg.num_edges == len(edges)  # each pair once
    np.testing.assert_array_equal(sg.x, np.stack([_emb(n) for n in sg.node_ids]))


def test_last_hop_edges_are_not_included(digraph):
    # out, hops=1 from {0}: nodes 0, 1, 2; edge 1 -> 3 leaves the set and 2 -> 4 too, and there
    # is no edge between 1 and 2, so only the traversed ones appear; from seeds {1, 3}, hop 1:
    # 1 -> 3 (traversed by 1) and 3 -> 0 (traversed by 3); 0 -> 1 is among reached nodes but
    # 0 is a last-hop node, so it is not included (traversed-edge semantics, not induced).
    g = NetworkXGraph(digraph)
    sg = g.expand([1, 3], hops=1, direction="out")
    nodes, hop, edges = _named(sg)
    assert nodes == {0, 1, 3}
    assert hop == {1: 0, 3: 0, 0: 1}
    assert edges == {(1, 3), (3, 0)}


def test_undirected_hops_1_and_2_both_orientations():
    # path a - b - c - d plus a triangle b - c - e
    G = nx.Graph()
    for i, n in enumerate("abcde"):
        G.add_node(n, embedding=_emb(i))
    G.add_edges_from([("a", "b"), ("b", "c"), ("c", "d"), ("b", "e"), ("c", "e")])
    g = NetworkXGraph(G)
    for direction in ("out", "in", "both"):
        sg = g.expand(["a"], hops=1, direction=direction)
        assert _named(sg) == ({"a", "b"}, {"a": 0, "b": 1}, {("a", "b"), ("b", "a")})
    sg = g.expand(["a"], hops=2)
    nodes, hop, edges = _named(sg)
    assert nodes == {"a", "b", "c", "e"}
    assert hop == {"a": 0, "b": 1, "c": 2, "e": 2}
    assert edges == {("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("b", "e"), ("e", "b")}


def test_seeds_missing_and_duplicates(digraph):
    g = NetworkXGraph(digraph)
    sg = g.expand([2, "nope", 0, 2], hops=1)
    assert sg.missing == ["nope"]
    assert [sg.node_ids[s] for s in sg.seeds] == [2, 0]
    assert sg.hop[sg.seeds].tolist() == [0, 0]
    # 2 -> 4 and 0 -> 1, 0 -> 2 (0 -> 2 goes to another seed)
    assert _named(sg)[2] == {(2, 4), (0, 1), (0, 2)}
    np.testing.assert_array_equal(g.contains([0, 5, 7, "x"]), [True, True, False, False])


def test_caps_are_deterministic_and_independent_of_other_seeds():
    G = nx.DiGraph(nx.star_graph(40))  # hub 0 -> 40 leaves (and back)
    G.remove_edges_from([(leaf, 0) for leaf in range(1, 41)])
    for n in G:
        G.nodes[n]["embedding"] = _emb(n)
    G.add_edge(1, 2)
    g = NetworkXGraph(G)
    a = g.expand([0], hops=1, max_neighbors=5, seed=3)
    b = g.expand([0], hops=1, max_neighbors=5, seed=3)
    assert a.node_ids == b.node_ids and a.num_nodes == 6
    # the hub's sample is the same when other seeds are expanded alongside
    c = g.expand([7, 0, 11], hops=1, max_neighbors=5, seed=3)
    hub = c.node_ids.index(0)
    hub_nbrs = {c.node_ids[j] for i, j in c.edge_index.T.tolist() if i == hub}
    assert hub_nbrs == set(a.node_ids[1:])
    # other seeds give other samples (5 of 40: all equal would be a broken hash)
    samples = {tuple(sorted(g.expand([0], hops=1, max_neighbors=5, seed=s).node_ids)) for s in range(6)}
    assert len(samples) > 1
    # a cap above the degree keeps everything; cap 0 keeps nothing
    assert g.expand([1], hops=1, max_neighbors=10, direction="both").num_nodes == 3
    assert g.expand([0], hops=1, max_neighbors=0).node_ids == [0]


def test_features_and_string_ids():
    G = nx.Graph()
    G.add_node("x", embedding=[1.0, 2.0])
    G.add_node(("t", 1), embedding=[3.0, 4.0])
    G.add_edge("x", ("t", 1))
    g = NetworkXGraph(G)
    assert isinstance(g, GraphSource)
    assert g.dim == 2
    np.testing.assert_array_equal(g.features([("t", 1), "x"]), [[3, 4], [1, 2]])
    assert g.features(["x"]).dtype == np.float32
    with pytest.raises(UnknownIdError, match="'y'"):
        g.features(["x", "y"])
    g64 = NetworkXGraph(G, dtype=np.float64)
    assert g64.features(["x"]).dtype == np.float64


def test_missing_or_wrong_features_name_the_node():
    G = nx.Graph()
    G.add_node("good", embedding=[1.0, 2.0])
    G.add_node("bad-node")
    with pytest.raises(InvalidInputError, match="bad-node"):
        NetworkXGraph(G).dim
    G.nodes["bad-node"]["embedding"] = [1.0, 2.0, 3.0]
    with pytest.raises(DimensionMismatchError, match="bad-node"):
        NetworkXGraph(G).expand(["good"])
    G.nodes["bad-node"]["embedding"] = [1.0, float("nan")]
    with pytest.raises(InvalidInputError, match="bad-node"):
        NetworkXGraph(G).features(["good"])


def test_snapshot_refresh_rules(digraph):
    g = NetworkXGraph(digraph)
    assert g.expand([4], hops=1).num_nodes == 1
    digraph.add_node(9, embedding=_emb(9))      # node count changed: picked up automatically
    digraph.add_edge(4, 9)
    assert set(g.expand([4], hops=1).node_ids) == {4, 9}
    digraph.add_edge(4, 5)                      # edge-only edit: needs refresh()
    assert set(g.expand([4], hops=1).node_ids) == {4, 9}
    g.refresh()
    assert set(g.expand([4], hops=1).node_ids) == {4, 9, 5}


def test_edge_features_follow_edges():
    G = nx.DiGraph()
    for i in range(3):
        G.add_node(i, embedding=_emb(i))
    G.add_edge(0, 1, w=1.5, v=[1.0, 0.0])
    G.add_edge(2, 0, w=2.5, v=[0.0, 1.0])
    g = NetworkXGraph(G, edge_feature_keys=("w", "v"))
    sg = g.expand([0], hops=1, direction="both")
    ea = {(sg.node_ids[a], sg.node_ids[b]): row.tolist() for (a, b), row in zip(sg.edge_index.T.tolist(), sg.edge_attr)}
    assert ea == {(0, 1): [1.5, 1.0, 0.0], (2, 0): [2.5, 0.0, 1.0]}
    G.add_edge(1, 2)
    with pytest.raises(InvalidInputError, match=r"edge \(1, 2\)"):
        NetworkXGraph(G, edge_feature_keys=("w",)).dim


def test_multigraph_collapses_parallel_edges():
    G = nx.MultiDiGraph()
    for i in range(2):
        G.add_node(i, embedding=_emb(i))
    G.add_edge(0, 1)
    G.add_edge(0, 1)
    g = NetworkXGraph(G)
    assert g.num_edges == 1
    assert g.expand([0]).num_edges == 1


def test_invalid_arguments(digraph):
    g = NetworkXGraph(digraph)
    with pytest.raises(InvalidInputError):
        g.expand([], hops=1)
    with pytest.raises(InvalidInputError):
        g.expand([0], direction="sideways")
    with pytest.raises(InvalidInputError):
        g.expand([0], hops=-1)
    with pytest.raises(InvalidInputError):
        g.expand([0], max_neighbors=-2)
    with pytest.raises(InvalidInputError):
        g.expand("0")
    with pytest.raises(InvalidInputError):
        NetworkXGraph({"not": "a graph"})
    with pytest.raises(InvalidInputError):
        NetworkXGraph(digraph, dtype=np.int32)


def test_large_random_graph_matches_networkx_bfs():
    rng = np.random.default_rng(0)
    G = nx.gnp_random_graph(300, 0.02, seed=1, directed=True)
    for n in G:
        G.nodes[n]["embedding"] = rng.standard_normal(4)
    g = NetworkXGraph(G)
    seeds = [3, 17, 150]
    for direction, H in (("out", 2), ("in", 2), ("both", 2)):
        view = G if direction == "out" else G.reverse(copy=False) if direction == "in" else G.to_undirected(as_view=True)
        expect = {}
        for s in seeds:
            for n, d in nx.single_source_shortest_path_length(view, s, cutoff=H).items():
                expect[n] = min(d, expect.get(n, H + 1))
        sg = g.expand(seeds, hops=H, direction=direction)
        assert dict(zip(sg.node_ids, sg.hop.tolist())) == expect


@pytest.mark.parametrize("string_ids", [False, True])
def test_capped_sample_matches_the_neo4j_connector_rule(string_ids):
    """Both connectors must keep the same neighbours under a cap (same hash on id keys)."""
    capped_bfs = pytest.importorskip("ruvector_graph_attn.connectors.neo4j._expand").capped_bfs
    id_keys = pytest.importorskip("ruvector_graph_attn.connectors.neo4j._expand").id_keys
    rng = np.random.default_rng(2)
    D = nx.gnp_random_graph(80, 0.15, seed=7, directed=True)
    G = nx.relabel_nodes(D, {i: f"n{i}" for i in D}) if string_ids else D
    for n in G:
        G.nodes[n]["embedding"] = rng.standard_normal(3)
    g = NetworkXGraph(G)
    nodes = list(G.nodes())
    pos = {n: i for i, n in enumerate(nodes)}
    pu = np.array([pos[u] for u, _ in G.edges()], np.int64)
    pv = np.array([pos[v] for _, v in G.edges()], np.int64)
    ids_arr = np.array(nodes, dtype=object).astype(str) if string_ids else np.array(nodes, np.int64)
    keys = id_keys(ids_arr)
    seeds = [nodes[3], nodes[40]]
    got = g.expand(seeds, hops=2, direction="out", max_neighbors=3, seed=5)
    ref_nodes, ref_hop, src, dst, org = capped_bfs(len(nodes), pu, pv, np.ones(pu.size, bool), np.zeros(pu.size, bool),
                                                   np.array([pos[s] for s in seeds], np.int64), 2, 3, 5, keys,
                                                   np.arange(len(nodes)))
    assert set(got.node_ids) == {nodes[i] for i in ref_nodes}
    assert dict(zip(got.node_ids, got.hop.tolist())) == {nodes[i]: int(h) for i, h in zip(ref_nodes, ref_hop)}
    ref_edges = {(nodes[ref_nodes[a]], nodes[ref_nodes[b]]) for a, b in zip(src, dst)}
    assert {(got.node_ids[a], got.node_ids[b]) for a, b in got.edge_index.T.tolist()} == ref_edges


def test_expand_node_ids_keep_their_python_type():
    # plain int ids come from the snapshot's int64 array; numpy-integer ids keep their own type
    for make, kind in ((int, int), (np.int64, np.int64)):
        G = nx.Graph()
        for i in range(6):
            G.add_node(make(i * 7), embedding=np.full(3, i + 1.0, np.float32))
        G.add_edges_from([(make(0), make(7)), (make(7), make(14)), (make(21), make(35))])
        sg = NetworkXGraph(G).expand([make(7), make(35)], hops=1, direction="both")
        assert sorted(int(i) for i in sg.node_ids) == [0, 7, 14, 21, 35]
        assert all(type(i) is kind for i in sg.node_ids)
        assert sg.x[sg.node_ids.index(make(14))].tolist() == [3.0, 3.0, 3.0]
