"""Neo4j connector against a real Neo4j server (the session fixture in conftest.py starts one).

Each test uses its own label, so tests do not see each other's nodes.
"""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import Neo4jGraph, Neo4jVectorIndex, NetworkXGraph
from ruvector_graph_attn.connectors.neo4j import TraversalStep
from ruvector_graph_attn.connectors.neo4j._expand import capped_bfs, pair_hash_np
from ruvector_graph_attn.errors import (
    ConnectionFailedError, DimensionMismatchError, GraphSourceError, InvalidInputError, UnknownIdError,
    UnsafeNameError,
)
from ruvector_graph_attn.kernels.rerank import pair_hash

#: (hops, direction, max_neighbors, seed) combinations the expansion equality tests walk
#: (the seed only matters with a cap)
EXPANSION_GRID = [(h, d, c, s) for h, d, c, s in itertools.product((0, 1, 2), ("out", "in", "both"), (None, 0, 2), (0, 9))
                  if not (c is None and s)]


# ----------------------------------------------------------------------------- no server needed


def test_pair_hash_np_equals_numba_kernel():
    rng = np.random.default_rng(3)
    u = rng.integers(-2**40, 2**40, size=200)
    v = rng.integers(0, 2**62, size=200)
    for salt in (0, 1, 12345):
        got = pair_hash_np(salt, u, v)
        want = np.array([pair_hash(np.int64(salt), np.int64(a), np.int64(b)) for a, b in zip(u, v)], dtype=np.uint64)
        np.testing.assert_array_equal(got, want)


def test_capped_bfs_hand_case():
    # 0 -> 1, 0 -> 2, 1 -> 3, 3 -> 0 ; out direction, 2 hops from 0
    pu = np.array([0, 0, 1, 3]); pv = np.array([1, 2, 3, 0])
    f = np.ones(4, bool); b = np.zeros(4, bool)
    keys = np.arange(4); nodes, hop, src, dst, org = capped_bfs(4, pu, pv, f, b, np.array([0]), 2, None, 0, keys, keys)
    assert nodes.tolist() == [0, 1, 2, 3] and hop.tolist() == [0, 1, 1, 2]
    assert sorted(zip(nodes[src].tolist(), nodes[dst].tolist(), nodes[org].tolist())) == [
        (0, 1, 0), (0, 2, 0), (1, 3, 1)]
    # cap 1: node 0 keeps the neighbour with the smaller pair hash
    h = pair_hash_np(7, np.array([0, 0]), np.array([1, 2]))
    keep = 1 if h[0] < h[1] else 2
    nodes, hop, src, dst, org = capped_bfs(4, pu, pv, f, b, np.array([0]), 1, 1, 7, keys, keys)
    assert nodes.tolist() == [0, keep] and list(zip(src.tolist(), dst.tolist())) == [(0, 1)]


def test_unreachable_server_names_uri():
    from ruvector_graph_attn.connectors.neo4j.server import free_port

    port = free_port()
    uri = f"bolt://127.0.0.1:{port}"
    with pytest.raises(ConnectionFailedError) as ei:
        Neo4jGraph(uri, auth=("neo4j", "sekrit-pass-123"), connection_timeout=2.0, timeout=2.0)
    assert uri in str(ei.value)
    assert "sekrit-pass-123" not in str(ei.value) and "sekrit" not in repr(ei.value)


def test_hostile_names_rejected_before_any_query():
    for bad in ["a`) DETACH DELETE n //", "My Label", "Ïtem", "", "1abc", "a-b", "x" * 65, None, 3]:
        with pytest.raises(UnsafeNameError):
            Neo4jGraph("bolt://127.0.0.1:1", label=bad, verify=False)
        with pytest.raises(UnsafeNameError):
            Neo4jGraph("bolt://127.0.0.1:1", embedding_property=bad, verify=False)
        with pytest.raises(UnsafeNameError):
            Neo4jGraph("bolt://127.0.0.1:1", relationship_types=[bad], verify=False)


def test_credentials_not_in_repr_or_errors():
    g = Neo4jGraph("bolt://127.0.0.1:1", auth=("alice", "hunter2-secret"), verify=False)
    assert "hunter2" not in repr(g) and "127.0.0.1:1" in repr(g)
    with pytest.raises(InvalidInputError) as ei:   # the driver quotes the whole URI; we do not
        Neo4jGraph("bolt://alice:hunter2-secret@127.0.0.1:1", verify=False)
    assert "hunter2" not in str(ei.value) and "127.0.0.1:1" in str(ei.value)
    assert "***" in str(ei.value)


# ----------------------------------------------------------------------------- fixtures (server)


def make_graph(neo4j_server, label, **kw):
    uri, auth, _ = neo4j_server
    return Neo4jGraph(uri, auth=auth, label=label, **kw)


def total_nodes(neo4j_server) -> int:
    from neo4j import GraphDatabase

    uri, auth, _ = neo4j_server
    with GraphDatabase.driver(uri, auth=auth) as d:
        return d.execute_query("MATCH (n) RETURN count(n) AS c").records[0]["c"]


def canon(sg):
    hops = dict(zip(sg.node_ids, sg.hop.tolist()))
    edges = {}
    for e, (s, t) in enumerate(sg.edge_index.T.tolist()):
        key = (sg.node_ids[s], sg.node_ids[t])
        assert key not in edges, f"duplicate edge {key}"
        attr = None if sg.edge_attr is None else tuple(np.round(sg.edge_attr[e].astype(np.float64), 6))
        o = int(sg.edge_origin[e])
        edges[key] = (attr, None if o < 0 else sg.node_ids[o])
    feats = {i: sg.x[k] for k, i in enumerate(sg.node_ids)}
    return hops, edges, feats, [sg.node_ids[i] for i in sg.seeds], list(sg.missing)


def assert_same_subgraph(a, b):
    ha, ea, fa, sa, ma = canon(a)
    hb, eb, fb, sb, mb = canon(b)
    assert ha == hb
    assert ea == eb
    assert sa == sb and ma == mb
    for i in fa:
        np.testing.assert_array_equal(fa[i], fb[i])
    assert a.x.dtype == b.x.dtype


def random_digraph(n=80, m=260, dim=8, seed=1):
    rng = np.random.default_rng(seed)
    G = nx.DiGraph()
    G.add_nodes_from(range(n))               # positions == ids (see docs/neo4j.md on caps)
    for i in range(n):
        G.nodes[i]["embedding"] = rng.normal(size=dim)
    while G.number_of_edges() < m:
        u, v = rng.integers(0, n, 2)
        G.add_edge(int(u), int(v), w=float(rng.normal()))
    G.add_edge(5, 5, w=0.5)                  # a self-loop
    G.add_edge(6, 7, w=1.0); G.add_edge(7, 6, w=-1.0)   # reciprocal pair
    return G


# ----------------------------------------------------------------------------- expansion
@pytest.mark.neo4j
def test_expand_equals_networkx(neo4j_server, label):
    G = random_digraph()
    g = make_graph(neo4j_server, label, edge_properties=["w"])
    g.load_networkx(G, edge_properties=["w"], batch_size=50)
    ref = NetworkXGraph(G, edge_feature_keys=["w"])
    assert g.dim == 8 and g.count() == G.number_of_nodes()
    request = [3, 7, 999, 3, 5, 6]
    for hops, direction, cap, seed in EXPANSION_GRID:
        a = ref.expand(request, hops=hops, direction=direction, max_neighbors=cap, seed=seed)
        b = g.expand(request, hops=hops, direction=direction, max_neighbors=cap, seed=seed)
        assert_same_subgraph(a, b)
        # documented row order: seeds in request order, then by hop, then by id
        assert b.node_ids[:3] == [3, 7, 5] and b.missing == [999]
        rest = list(zip(b.hop[len(b.seeds):].tolist(), b.node_ids[len(b.seeds):]))
        assert rest == sorted(rest)
    # integer ids in any insertion order: samples still agree (both hash the ids themselves)
    H = nx.DiGraph()
    perm = np.random.default_rng(0).permutation(G.number_of_nodes())
    H.add_nodes_from((int(p) + 1000, G.nodes[int(p)]) for p in perm)
    H.add_edges_from((u + 1000, v + 1000, d) for u, v, d in G.edges(data=True))
    label2 = label + "b"
    try:
        h = make_graph(neo4j_server, label2, edge_properties=["w"])
        h.load_networkx(H, edge_properties=["w"])
        href = NetworkXGraph(H, edge_feature_keys=["w"])
        for direction in ("out", "both"):
            assert_same_subgraph(href.expand([1003, 1007], hops=2, direction=direction, max_neighbors=2, seed=4),
                                 h.expand([1003, 1007], hops=2, direction=direction, max_neighbors=2, seed=4))
    finally:
        from neo4j import GraphDatabase

        with GraphDatabase.driver(neo4j_server[0], auth=neo4j_server[1]) as d:
            d.execute_query(f"MATCH (n:`{label2}`) DETACH DELETE n")
    # the cap really cut something at hops=2
    full = g.expand([3, 7], hops=2, direction="both")
    capped = g.expand([3, 7], hops=2, direction="both", max_neighbors=2)
    assert capped.num_nodes < full.num_nodes


@pytest.mark.neo4j
def test_blob_property_reads_equal_list_reads(neo4j_server, label):
    G = random_digraph(n=50, m=150, dim=6, seed=8)
    for i in G.nodes:
        G.nodes[i]["embedding"] = np.asarray(G.nodes[i]["embedding"], dtype=np.float32)
    gb = make_graph(neo4j_server, label, blob_property="emb_f32")
    gb.load_networkx(G)
    gl = make_graph(neo4j_server, label)
    ref = NetworkXGraph(G)
    for hops, cap in ((1, None), (2, 3)):
        a = ref.expand([1, 2, 3], hops=hops, max_neighbors=cap, direction="both")
        assert_same_subgraph(a, gb.expand([1, 2, 3], hops=hops, max_neighbors=cap, direction="both"))
        assert_same_subgraph(a, gl.expand([1, 2, 3], hops=hops, max_neighbors=cap, direction="both"))
    blob = gb.read(f"MATCH (n:`{label}` {{id: 4}}) RETURN n.emb_f32 AS b")[0]["b"]
    assert isinstance(blob, bytes) and len(blob) == 6 * 4
    np.testing.assert_array_equal(np.frombuffer(blob, "<f4"), G.nodes[4]["embedding"])
    new = np.arange(12, dtype=np.float32).reshape(2, 6)
    gb.write_embeddings([4, 5], new)                      # updates list and blob together
    np.testing.assert_array_equal(gb.features([5, 4]), new[::-1])
    np.testing.assert_array_equal(gl.features([5, 4]), new[::-1])
    gl.load_arrays([777], np.full((1, 6), 2.5))          # no blob written: reads fall back to the list
    np.testing.assert_array_equal(gb.features([777, 4]), [[2.5] * 6, new[0]])
    paths = gb.traverse([1], [TraversalStep(None, "both", 2)], query=np.ones(6))
    assert paths == gl.traverse([1], [TraversalStep(None, "both", 2)], query=np.ones(6))
    with pytest.raises(InvalidInputError):
        make_graph(neo4j_server, label, blob_property="embedding")


@pytest.mark.neo4j
def test_expand_undirected_and_string_ids(neo4j_server, label):
    rng = np.random.default_rng(5)
    G = nx.Graph()
    names = [f"n{i}" for i in range(40)]
    for nm in names:
        G.add_node(nm, embedding=rng.normal(size=4).astype(np.float32))
    for _ in range(90):
        a, b = rng.choice(40, 2, replace=False)
        G.add_edge(names[a], names[b])
    g = make_graph(neo4j_server, label, undirected=True)
    g.load_networkx(G)
    ref = NetworkXGraph(G)
    for hops in (1, 2):
        assert_same_subgraph(ref.expand(["n1", "n2", "zz"], hops=hops, direction="both"),
                             g.expand(["n1", "n2", "zz"], hops=hops, direction="both"))
        for cap, seed in ((1, 0), (2, 3)):   # both connectors hash BLAKE2b keys of string ids
            assert_same_subgraph(ref.expand(["n1", "n2"], hops=hops, max_neighbors=cap, seed=seed),
                                 g.expand(["n1", "n2"], hops=hops, max_neighbors=cap, seed=seed))
    a = g.expand(["n1"], hops=1, max_neighbors=2, seed=3)
    assert a.num_nodes == min(3, 1 + G.degree("n1"))


@pytest.mark.neo4j
def test_expand_hand_case_and_relationship_types(neo4j_server, label):
    g = make_graph(neo4j_server, label)
    x = np.eye(4, dtype=np.float32)
    g.load_arrays([10, 20, 30, 40], x, edges=[(10, 20), (20, 30)], rel_type="A")
    g.load_arrays([10, 20, 30, 40], x, edges=[(10, 40)], rel_type="B")
    sg = g.expand([10], hops=2, direction="out")
    assert sg.node_ids == [10, 20, 40, 30] and sg.hop.tolist() == [0, 1, 1, 2]
    got = {(sg.node_ids[s], sg.node_ids[t]) for s, t in sg.edge_index.T.tolist()}
    assert got == {(10, 20), (10, 40), (20, 30)}
    np.testing.assert_array_equal(sg.x, x[[0, 1, 3, 2]])
    ga = make_graph(neo4j_server, label, relationship_types=["A"])
    sa = ga.expand([30], hops=2, direction="in")
    assert sa.node_ids == [30, 20, 10] and sa.hop.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(ga.features([40, 10]), x[[3, 0]])
    assert ga.contains([10, 99, 40]).tolist() == [True, False, True]
    with pytest.raises(UnknownIdError):
        ga.features([10, 77])
    with pytest.raises(InvalidInputError):
        ga.expand([], hops=1)
    with pytest.raises(InvalidInputError):
        ga.expand([10], hops=-1)
    with pytest.raises(InvalidInputError):
        ga.expand([10], hops=1, direction="sideways")
    with pytest.raises(InvalidInputError):
        ga.expand([10], hops=1, max_neighbors=-2)
    only_missing = ga.expand([5, 6], hops=1)
    assert only_missing.num_nodes == 0 and only_missing.missing == [5, 6]


# ----------------------------------------------------------------------------- vector index
def brute(X, Q, k, space):
    if space == "cosine":
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        d = 1.0 - Qn @ Xn.T
    else:
        d = ((Q[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


@pytest.mark.neo4j
@pytest.mark.parametrize("space", ["cosine", "l2"])
def test_vector_index_equals_brute_force(neo4j_server, label, space):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(150, 16))
    ids = np.arange(1000, 1150)
    g = make_graph(neo4j_server, label)
    g.load_arrays(ids, X)
    idx = Neo4jVectorIndex.create(g, name=f"v_{label}", space=space)
    Q = rng.normal(size=(5, 16))
    got_ids, got_d = idx.search(Q, k=10)
    want, want_d = brute(X, Q, 10, space)
    assert got_ids.shape == (5, 10) and got_d.dtype == np.float32 and got_ids.dtype == np.int64
    np.testing.assert_array_equal(got_ids, ids[want])
    np.testing.assert_allclose(got_d, want_d, rtol=2e-5, atol=2e-5)
    one_ids, one_d = idx.search(Q[0], k=3)
    assert one_ids.shape == (3,) and one_ids.tolist() == ids[want[0, :3]].tolist()
    # allow-list filter: exact over the allowed ids
    allow = ids[::3].tolist()
    f_ids, f_d = idx.search(Q, k=4, filter=allow)
    w2, wd2 = brute(X[::3], Q, 4, space)
    np.testing.assert_array_equal(f_ids, ids[::3][w2])
    np.testing.assert_allclose(f_d, wd2, rtol=2e-5, atol=2e-5)
    # predicate filter: post-filtered index hits
    p_ids, _ = idx.search(Q, k=4, filter=lambda i: i % 2 == 1)
    w3, _ = brute(X[1::2], Q, 4, space)
    np.testing.assert_array_equal(p_ids, ids[1::2][w3])
    assert np.allclose(idx.to_similarity(got_d), (1 - want_d) if space == "cosine" else -want_d, atol=3e-5)
    # create again is a no-op; a conflicting dimension is an error
    Neo4jVectorIndex.create(g, name=f"v_{label}", space=space)
    with pytest.raises(DimensionMismatchError):
        Neo4jVectorIndex.create(g, name=f"v_{label}", dim=17, space=space)
    with pytest.raises(DimensionMismatchError):
        idx.search(np.ones(15), k=2)
    with pytest.raises(InvalidInputError):
        idx.search(np.full(16, np.nan), k=2)
    idx.drop()


@pytest.mark.neo4j
@pytest.mark.parametrize("scorer", ["attention", "vote"])
def test_reranker_on_neo4j_equals_networkx_pipeline(neo4j_server, label, scorer):
    rng = np.random.default_rng(21)
    n, dim = 120, 16
    X = rng.normal(size=(n, dim)).astype(np.float32)
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    for i in range(n):
        G.nodes[i]["embedding"] = X[i]
    for _ in range(400):
        u, v = rng.integers(0, n, 2)
        G.add_edge(int(u), int(v))
    g = make_graph(neo4j_server, label)
    g.load_networkx(G)
    nidx = Neo4jVectorIndex.create(g, name=f"v_{label}", space="cosine")
    hidx = rga.HNSWIndex(dim=dim, space="cosine")
    hidx.add(np.arange(n), X)
    Q = rng.normal(size=(3, dim)).astype(np.float32)
    # explicit temperature / blend: "auto" samples the index's ids, which the Neo4j vector index
    # does not list (it then uses the fallback values); graph candidates stay at their default
    if scorer == "attention":
        kw = dict(hops=2, candidates=20, max_neighbors=4, temperature=0.2, blend=0.9)
    else:   # the neighbour vote: its voters' out-neighbours are graph candidates (as many as voters)
        kw = dict(scorer="vote", candidates=20, max_neighbors=4, direction="out", temperature=0.2)
    ref = rga.GraphReranker(index=hidx, graph=NetworkXGraph(G), **kw)
    neo = rga.GraphReranker(index=nidx, graph=g, **kw)
    mixed = rga.GraphReranker(index=hidx, graph=g, **kw)
    assert ref.graph_candidates == neo.graph_candidates == (5 if scorer == "attention" else 20)
    for a_list, b_list, c_list in zip(ref.search_batch(Q, k=8), neo.search_batch(Q, k=8), mixed.search_batch(Q, k=8)):
        assert [h.id for h in a_list] == [h.id for h in b_list] == [h.id for h in c_list]
        np.testing.assert_allclose([h.score for h in a_list], [h.score for h in b_list], atol=1e-5)
        np.testing.assert_allclose([h.score for h in a_list], [h.score for h in c_list], atol=1e-6)
        for ha, hb in zip(a_list, b_list):
            assert set(ha.attention) == set(hb.attention)


# ----------------------------------------------------------------------------- traversal
@pytest.mark.neo4j
def test_subgraph_from_cypher(neo4j_server, label):
    g = make_graph(neo4j_server, label)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    g.load_arrays([1, 2, 3, 4], x, edges=[(1, 2), (2, 3), (3, 4), (4, 1)])
    L = f"`{label}`"
    sg = g.subgraph_from_cypher(f"MATCH (n:{L}) WHERE n.id IN $ids RETURN n.id AS id ORDER BY id", {"ids": [3, 1, 2, 9]})
    assert sg.node_ids == [1, 2, 3]
    assert {(sg.node_ids[s], sg.node_ids[t]) for s, t in sg.edge_index.T.tolist()} == {(1, 2), (2, 3)}
    np.testing.assert_array_equal(sg.x, x[:3])
    sp = g.subgraph_from_cypher(f"MATCH p = (a:{L} {{id: $s}})-[*2]->(b:{L}) RETURN p", {"s": 1}, induced=False)
    assert sp.node_ids == [1, 2, 3]
    assert {(sp.node_ids[s], sp.node_ids[t]) for s, t in sp.edge_index.T.tolist()} == {(1, 2), (2, 3)}
    sm = g.subgraph_from_cypher("RETURN [4, 77] AS ids")
    assert sm.node_ids == [4] and sm.missing == [77]
    before = total_nodes(neo4j_server)
    for bad in (f"MATCH (n:{L}) DETACH DELETE n", f"CREATE (n:{L} {{id: 99}}) RETURN n.id",
                f"MATCH (n:{L}) SET n.hacked = true RETURN n.id"):
        with pytest.raises(GraphSourceError):
            g.subgraph_from_cypher(bad)
    assert total_nodes(neo4j_server) == before
    assert g.read(f"MATCH (n:{L}) WHERE n.hacked IS NOT NULL RETURN count(n) AS c")[0]["c"] == 0


# ----------------------------------------------------------------------------- write-back
@pytest.mark.neo4j
def test_write_back_round_trips_and_is_idempotent(neo4j_server, label):
    g = make_graph(neo4j_server, label)
    rng = np.random.default_rng(2)
    ids = list(range(50))
    g.load_arrays(ids, rng.normal(size=(50, 4)))
    new = rng.normal(size=(50, 6)).astype(np.float32)
    calls = []
    assert g.write_embeddings(ids, new, property="emb2", batch_size=7, progress=lambda d, t: calls.append((d, t))) == 50
    assert calls[-1] == (50, 50) and len(calls) == 8
    g2 = make_graph(neo4j_server, label, embedding_property="emb2")
    np.testing.assert_array_equal(g2.features(ids), new)          # float32 -> float64 -> float32 exactly
    g.write_embeddings(ids, new, property="emb2", batch_size=7)   # rerun: same state
    np.testing.assert_array_equal(g2.features(ids[::-1]), new[::-1])
    # unknown id: nothing written at all
    with pytest.raises(UnknownIdError) as ei:
        g.write_embeddings([1, 2, 999], np.ones((3, 6)), property="emb3", batch_size=2)
    assert ei.value.ids == [999]
    L = f"`{label}`"
    assert g.read(f"MATCH (n:{L}) WHERE n.emb3 IS NOT NULL RETURN count(n) AS c")[0]["c"] == 0
    # scores from RankedNeighbour lists
    hits = [rga.RankedNeighbour(id=3, score=0.5, vector_score=0.1, rank=0),
            rga.RankedNeighbour(id=4, score=0.25, vector_score=0.2, rank=1)]
    assert g.write_scores([hits, hits[:1]], property="s") == 2
    got = {r["i"]: r["s"] for r in g.read(f"MATCH (n:{L}) WHERE n.s IS NOT NULL RETURN n.id AS i, n.s AS s")}
    assert got == {3: 0.5, 4: 0.25}
    with pytest.raises(InvalidInputError):
        g.write_scores([(3, 0.5), (3, 0.7)])
    # similarity relationships: MERGE, rerun updates in place
    assert g.write_similarity({1: [(2, 0.9), (3, 0.8)], 2: hits}, rel_type="SIM", score_property="w") == 4
    g.write_similarity({1: [(2, 0.95), (3, 0.8)], 2: hits}, rel_type="SIM", score_property="w")
    rels = g.read(f"MATCH (a:{L})-[r:SIM]->(b:{L}) RETURN a.id AS a, b.id AS b, r.w AS w ORDER BY a, b")
    assert [(r["a"], r["b"], r["w"]) for r in rels] == [(1, 2, 0.95), (1, 3, 0.8), (2, 3, 0.5), (2, 4, 0.25)]
    with pytest.raises(UnknownIdError) as ei:
        g.write_similarity([(1, 5, 0.1), (1, 888, 0.2)], rel_type="SIM2")
    assert ei.value.ids == [888]
    assert g.read(f"MATCH (:{L})-[r:SIM2]->() RETURN count(r) AS c")[0]["c"] == 0


@pytest.mark.neo4j
def test_hostile_values_and_names_leave_database_unchanged(neo4j_server, label):
    g = make_graph(neo4j_server, label)
    g.load_arrays(["a", "b"], np.ones((2, 3)), edges=[("a", "b")])
    before = total_nodes(neo4j_server)
    evil = "x'}) DETACH DELETE n //"
    assert g.contains([evil, "a"]).tolist() == [False, True]
    with pytest.raises(UnknownIdError):
        g.features([evil])
    sg = g.expand([evil, "a`) DETACH DELETE n //"], hops=2)
    assert sg.num_nodes == 0 and len(sg.missing) == 2
    for bad in ["a`) DETACH DELETE n //", "has space", "ünï", "x`"]:
        with pytest.raises(UnsafeNameError):
            g.write_embeddings(["a"], np.ones((1, 3)), property=bad)
        with pytest.raises(UnsafeNameError):
            g.write_similarity([("a", "b", 1.0)], rel_type=bad)
        with pytest.raises(UnsafeNameError):
            g.write_scores({"a": 1.0}, property=bad)
        with pytest.raises(UnsafeNameError):
            g.traverse(["a"], [TraversalStep([bad])])
    g.write_scores({"a": 1.0}, property="ok_name")
    assert total_nodes(neo4j_server) == before
    assert g.features(["a", "b"]).shape == (2, 3)


@pytest.mark.neo4j
def test_wrong_password_is_connection_error_without_secret(neo4j_server):
    uri, auth, srv = neo4j_server
    if auth is None:
        pytest.skip("server without auth")
    with pytest.raises(ConnectionFailedError) as ei:
        Neo4jGraph(uri, auth=(auth[0], "wrong-password-xyz"))
    assert uri in str(ei.value) and "wrong-password-xyz" not in str(ei.value)
    g = Neo4jGraph(uri, auth=auth)
    assert auth[1] not in repr(g)
    if srv is not None:
        assert auth[1] not in repr(srv)
