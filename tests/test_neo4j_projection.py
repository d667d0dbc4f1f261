"""Neo4jProjection against the real Neo4j server (session fixture in conftest.py): the
in-process projection gives the subgraphs server-side expansion gives, and stays fresh."""
from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import Neo4jProjection
from ruvector_graph_attn.errors import InvalidInputError

from test_neo4j import EXPANSION_GRID, assert_same_subgraph, make_graph, random_digraph


def _run(neo4j_server, q, **params):
    from neo4j import GraphDatabase

    with GraphDatabase.driver(neo4j_server[0], auth=neo4j_server[1]) as d:
        return d.execute_query(q, params).records


@pytest.mark.neo4j
def test_projection_equals_server_expansion(neo4j_server, label):
    G = random_digraph()
    for i in G.nodes:
        G.nodes[i]["embedding"] = np.asarray(G.nodes[i]["embedding"], dtype=np.float32)
    g = make_graph(neo4j_server, label, edge_properties=["w"], blob_property="emb_f32")
    g.load_networkx(G, edge_properties=["w"], batch_size=50)
    proj = g.project(pages=3, workers=2)
    assert isinstance(proj, Neo4jProjection) and proj.stats["pages"] == 3
    assert proj.num_nodes == G.number_of_nodes() and proj.stats["relationships"] == G.number_of_edges()
    request = [3, 7, 999, 3, 5, 6]
    for hops, direction, cap, seed in EXPANSION_GRID:
        a = g.expand(request, hops=hops, direction=direction, max_neighbors=cap, seed=seed)
        b = proj.expand(request, hops=hops, direction=direction, max_neighbors=cap, seed=seed)
        assert_same_subgraph(a, b)
        assert b.missing == [999]
    assert_same_subgraph(proj.expand_server([3], hops=2), g.expand([3], hops=2))
    np.testing.assert_array_equal(proj.features([4, 1]), g.features([4, 1]))
    assert proj.contains([1, 999]).tolist() == [True, False]
    # the default direction is the graph's
    assert_same_subgraph(proj.expand([3], hops=2), g.expand([3], hops=2))


@pytest.mark.neo4j
def test_projection_undirected_string_ids_and_lists(neo4j_server, label):
    rng = np.random.default_rng(5)
    G = nx.Graph()
    names = [f"n{i}" for i in range(40)]
    for nm in names:
        G.add_node(nm, embedding=rng.normal(size=4))
    for _ in range(90):
        a, b = rng.choice(40, 2, replace=False)
        G.add_edge(names[a], names[b])
    g = make_graph(neo4j_server, label, undirected=True)     # float lists, no blob
    g.load_networkx(G)
    proj = Neo4jProjection(g, workers=1)
    for hops, cap, seed in ((1, None, 0), (2, None, 0), (1, 1, 0), (2, 2, 3)):
        assert_same_subgraph(g.expand(["n1", "n2", "zz"], hops=hops, max_neighbors=cap, seed=seed),
                             proj.expand(["n1", "n2", "zz"], hops=hops, max_neighbors=cap, seed=seed))


@pytest.mark.neo4j
def test_projection_incremental_sync_and_staleness(neo4j_server, label):
    G = random_digraph(n=30, m=80, dim=4, seed=3)
    g = make_graph(neo4j_server, label, edge_properties=["w"])
    g.load_networkx(G, edge_properties=["w"])
    L = f"`{label}`"
    _run(neo4j_server, f"MATCH (n:{L}) SET n.chg = 0")
    _run(neo4j_server, f"MATCH (:{L})-[r]->(:{L}) SET r.chg = 0")
    proj = g.project(change_property="chg")
    assert proj.sync() == "current"
    # a new node, a new relationship to it, a changed feature and a changed edge property
    _run(neo4j_server, f"CREATE (n:{L} {{id: 100, embedding: [1.0, 2.0, 3.0, 4.0], chg: 5}})")
    _run(neo4j_server, f"MATCH (a:{L} {{id: 1}}), (b:{L} {{id: 100}}) CREATE (a)-[:LINKS {{w: 0.25, chg: 5}}]->(b)")
    _run(neo4j_server, f"MATCH (n:{L} {{id: 2}}) SET n.embedding = [9.0, 9.0, 9.0, 9.0], n.chg = 6")
    u, v = next(iter(G.edges()))
    _run(neo4j_server, f"MATCH (:{L} {{id: $u}})-[r]->(:{L} {{id: $v}}) SET r.w = 7.5, r.chg = 6", u=u, v=v)
    assert proj.expand([100]).missing == [100]               # not seen before the sync
    assert proj.sync() == "incremental"
    for ids, hops in (([1, 100], 1), ([2, u], 2), ([100], 2)):
        for direction in ("out", "in", "both"):
            assert_same_subgraph(g.expand(ids, hops=hops, direction=direction),
                                 proj.expand(ids, hops=hops, direction=direction))
    np.testing.assert_array_equal(proj.features([2, 100]), [[9.0] * 4, [1.0, 2.0, 3.0, 4.0]])
    assert proj.sync() == "current"                            # equal stamps are re-read: idempotent
    assert proj.num_nodes == 31
    # a deletion leaves no stamp: the counts differ and sync falls back to a full refresh
    _run(neo4j_server, f"MATCH (:{L} {{id: 1}})-[r]->(:{L} {{id: 100}}) DELETE r")
    assert proj.sync() == "refresh"
    assert_same_subgraph(g.expand([1, 100], hops=1), proj.expand([1, 100], hops=1))
    # max_staleness: a call on an old projection syncs first
    fresh = g.project(change_property="chg", max_staleness=3.0)
    _run(neo4j_server, f"MATCH (n:{L} {{id: 3}}) SET n.embedding = [0.5, 0.5, 0.5, 0.5], n.chg = 9")
    age = fresh.age
    before = fresh.features([3])[0]
    if age < 2.5:  # still fresh, so not synced (a very slow machine may be past max_staleness already)
        np.testing.assert_array_equal(before, G.nodes[3]["embedding"].astype(np.float32))
    time.sleep(max(0.0, 3.1 - fresh.age))
    np.testing.assert_array_equal(fresh.features([3])[0], [0.5] * 4)
    assert fresh.age < 3.0
    # without a change property sync is a full refresh
    assert g.project().sync() == "refresh"


def _search_data(rng, n: int, dim: int, m: int):
    """Random features (a NetworkX DiGraph with nodes added in id order, ``m`` random edges)
    and a cosine HNSW index over them."""
    X = rng.normal(size=(n, dim)).astype(np.float32)
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(n))
    for _ in range(m):
        a, b = rng.integers(0, n, 2)
        G.add_edge(int(a), int(b))
    idx = rga.HNSWIndex(dim=dim, space="cosine")
    idx.add(np.arange(n), X)
    return X, G, idx


@pytest.mark.neo4j
def test_reranker_on_projection_equals_server_path(neo4j_server, label):
    rng = np.random.default_rng(21)
    n, dim = 120, 16
    X, G, idx = _search_data(rng, n, dim, 400)
    g = make_graph(neo4j_server, label)
    g.load_networkx(G)
    Q = rng.normal(size=(3, dim)).astype(np.float32)
    server = rga.GraphReranker(index=idx, graph=g, hops=2, candidates=20, max_neighbors=4)
    local = rga.GraphReranker(index=idx, graph=g.project(), hops=2, candidates=20, max_neighbors=4)
    for a_list, b_list in zip(server.search_batch(Q, k=8), local.search_batch(Q, k=8)):
        assert [h.id for h in a_list] == [h.id for h in b_list]
        np.testing.assert_allclose([h.score for h in a_list], [h.score for h in b_list], atol=1e-6)


@pytest.mark.neo4j
def test_reranked_search_on_projection_equals_in_process_networkx(neo4j_server, label):
    """Same ids and bit-identical scores and explanations as the NetworkX path (nodes added in
    id order: the projection's snapshot is then the NetworkX one, whatever the page split),
    single and batched, 1 and 2 hops, with and without the result cache; and the same ids
    as server-side expansion."""
    rng = np.random.default_rng(4)
    n, dim = 300, 16
    X, G, idx = _search_data(rng, n, dim, 1500)
    g = make_graph(neo4j_server, label, blob_property="emb_f32")
    order = rng.permutation(n)                          # inserted into Neo4j in shuffled order
    g.load_arrays(order, X[order], edges=np.array(list(G.edges()), dtype=np.int64), batch_size=70)
    Q = rng.normal(size=(6, dim)).astype(np.float32)
    ref = rga.connectors.NetworkXGraph(G)
    for pages in (1, 5):
        proj = g.project(pages=pages, workers=2)
        assert proj.node_ids(np.arange(n)) == list(range(n))     # id order, not page order
        for hops, cache in ((1, None), (2, True)):
            cfg = dict(hops=hops, candidates=40, cache=cache)
            a = rga.GraphReranker(index=idx, graph=ref, **cfg)
            b = rga.GraphReranker(index=idx, graph=proj, **cfg)
            for _ in range(2):                                    # the second round hits the cache
                got = [b.search(q, k=10) for q in Q] + b.search_batch(Q, k=10)
                want = [a.search(q, k=10) for q in Q] + a.search_batch(Q, k=10)
                for x_hits, y_hits in zip(want, got):
                    assert [h.to_dict() for h in x_hits] == [h.to_dict() for h in y_hits]
            if cache:
                assert b.cache_info().hits == a.cache_info().hits >= 2 * len(Q)   # it has a version
        server = rga.GraphReranker(index=idx, graph=g, hops=1, candidates=40)
        local = rga.GraphReranker(index=idx, graph=proj, hops=1, candidates=40)
        for x_hits, y_hits in zip(server.search_batch(Q, k=10), local.search_batch(Q, k=10)):
            assert [h.id for h in x_hits] == [h.id for h in y_hits]
            np.testing.assert_allclose([h.score for h in x_hits], [h.score for h in y_hits], atol=1e-6)


@pytest.mark.neo4j
def test_projection_hot_path_does_no_server_io_and_syncs_in_the_background(neo4j_server, label):
    G = random_digraph(n=30, m=80, dim=4, seed=8)
    g = make_graph(neo4j_server, label)
    g.load_networkx(G)
    L = f"`{label}`"
    _run(neo4j_server, f"MATCH (n:{L}) SET n.chg = 0")
    _run(neo4j_server, f"MATCH (:{L})-[r]->(:{L}) SET r.chg = 0")
    # a background thread keeps it fresh: no call is made while the change arrives
    proj = g.project(change_property="chg", max_staleness=4.0, sync_interval=0.3)
    first = proj.sync_count
    _run(neo4j_server, f"MATCH (n:{L} {{id: 4}}) SET n.embedding = [2.0, 2.0, 2.0, 2.0], n.chg = 1")
    deadline = time.monotonic() + 20
    while proj.sync_count < first + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proj.sync_count >= first + 2 and proj.last_sync_error is None
    v = proj.version
    np.testing.assert_array_equal(proj.features([4])[0], [2.0] * 4)
    assert proj.version == v                                   # nothing changed since
    # calls on a fresh projection never talk to the server: they work with its driver closed
    quiet = make_graph(neo4j_server, label).project(max_staleness=3600.0)
    quiet.source.driver.close()
    sg = quiet.expand([1, 2], hops=2)
    assert set(sg.node_ids) >= {1, 2} and quiet.contains([1, 999]).tolist() == [True, False]
    np.testing.assert_array_equal(quiet.features([3])[0], np.asarray(G.nodes[3]["embedding"], np.float32))
    proj.close()
    assert proj._syncer is None or not proj._syncer.is_alive()


def test_projection_rejects_bad_arguments():
    with pytest.raises(InvalidInputError):
        Neo4jProjection(object())
    g = rga.connectors.Neo4jGraph("bolt://127.0.0.1:1", verify=False)
    for kw in (dict(workers=0), dict(pages=-1), dict(max_staleness=float("nan")), dict(sync_overlap=-1),
               dict(page_size=True), dict(sync_interval=0), dict(max_staleness=1.0, sync_interval=2.0)):
        with pytest.raises(InvalidInputError):
            Neo4jProjection(g, load=False, **kw)
    with pytest.raises(rga.errors.UnsafeNameError):
        Neo4jProjection(g, load=False, change_property="a`) DETACH DELETE n //")
