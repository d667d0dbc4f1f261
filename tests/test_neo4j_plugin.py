"""The Neo4j plugin (connectors/neo4j/plugin): procedures rga.search / rga.rerank run over Bolt on
the real test server (which loads the plugin jar from its plugin directory) and call a real
service subprocess; ids, ranks and scores equal the Python API."""
from __future__ import annotations

import uuid

import pytest

from _require import import_or_unavailable
from _service import ds, ref, start_service, svc  # noqa: F401  (ds, ref, svc: shared fixtures)

import_or_unavailable("fastapi")
import_or_unavailable("uvicorn")

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def db(neo4j_server, ref):
    """A driver and a fresh label holding the dataset's graph (ids and embeddings)."""
    from neo4j import GraphDatabase

    from ruvector_graph_attn.connectors import Neo4jGraph

    uri, auth, _ = neo4j_server
    label = "P" + uuid.uuid4().hex[:10]
    g = Neo4jGraph(uri, auth=auth, label=label)
    g.load_networkx(ref.graph.G)
    g.close()
    drv = GraphDatabase.driver(uri, auth=auth)
    yield drv, label
    drv.execute_query(f"MATCH (n:`{label}`) DETACH DELETE n")
    drv.close()


def opts(svc, label, **kw):
    return {"url": svc.url, "token": svc.token, "label": label, **kw}


def test_procedures_are_registered(db):
    drv, _ = db
    recs = drv.execute_query("SHOW PROCEDURES YIELD name WHERE name STARTS WITH 'rga.' RETURN name ORDER BY name").records
    assert [r["name"] for r in recs] == ["rga.rerank", "rga.search"]


@pytest.mark.parametrize("scorer", ["attention", "gat", "vote"])
def test_search_equals_python_api(db, svc, ref, ds, scorer):
    import ruvector_graph_attn as rga

    drv, label = db
    q = ds.queries[3].tolist()
    recs = drv.execute_query(
        "CALL rga.search($v, 8, $o) YIELD node, id, score, vectorScore, rank, attention "
        "RETURN node.id AS nid, id, score, vectorScore, rank, attention",
        v=q, o=opts(svc, label, scorer=scorer)).records
    rr = rga.GraphReranker(ref.index, ref.graph, scorer=scorer, layer=ref.layers.get(scorer))
    want = rr.search(q, 8)
    assert [r["nid"] for r in recs] == [h.id for h in want]          # the rows carry the graph's nodes
    assert [r["id"] for r in recs] == [h.id for h in want]
    assert [r["rank"] for r in recs] == [h.rank for h in want]
    assert [r["score"] for r in recs] == [h.score for h in want]     # exact: JSON doubles round-trip
    assert [r["vectorScore"] for r in recs] == [h.vector_score for h in want]
    top = recs[0]["attention"]
    assert [(a["id"], a["weight"]) for a in top] == sorted(want[0].attention.items(), key=lambda kv: -kv[1])


def test_service_errors_become_cypher_errors(db, svc, ds):
    from neo4j.exceptions import ClientError

    drv, label = db
    with pytest.raises(ClientError) as ei:
        drv.execute_query("CALL rga.search($v, 5, $o) YIELD node RETURN node", v=[0.1, 0.2], o=opts(svc, label))
    assert "DimensionMismatchError" in ei.value.message and "expected 16, got 2" in ei.value.message
    with pytest.raises(ClientError) as ei:
        drv.execute_query("CALL rga.search($v, 5, $o) YIELD node RETURN node", v=ds.queries[0].tolist(),
                          o=dict(opts(svc, label), token="wrong-token-wrong-token"))
    assert "401 AuthenticationError" in ei.value.message
    with pytest.raises(ClientError) as ei:
        drv.execute_query("CALL rga.search($v, 5, {}) YIELD node RETURN node", v=ds.queries[0].tolist())
    assert "no rga service URL" in ei.value.message
    # the service and the database keep working
    recs = drv.execute_query("CALL rga.search($v, 3, $o) YIELD id RETURN id", v=ds.queries[0].tolist(),
                             o=opts(svc, label)).records
    assert len(recs) == 3


def test_rerank_vector_index_hits_in_one_statement(db, svc, ref, ds):
    """Neo4j's own vector-index hits re-ranked with the graph in one Cypher statement; equal to
    GraphReranker.rerank on the same candidates and scores."""
    drv, label = db
    idx = f"v_{label}"
    drv.execute_query(f"CREATE VECTOR INDEX {idx} IF NOT EXISTS FOR (n:`{label}`) ON n.embedding OPTIONS "
                      "{indexConfig: {`vector.dimensions`: 16, `vector.similarity_function`: 'cosine'}}")
    drv.execute_query("CALL db.awaitIndexes(300)")
    q = ds.queries[6].tolist()
    rows = drv.execute_query(
        "CALL db.index.vector.queryNodes($idx, 25, $v) YIELD node, score "
        "WITH collect(node) AS cands, collect(score) AS scores, collect(node.id) AS ids "
        "CALL rga.rerank($v, cands, 8, {url: $url, token: $token, label: $label, scores: scores}) "
        "YIELD node, id, score, vectorScore, rank "
        "RETURN ids, scores, node.id AS nid, id, score AS s, vectorScore, rank",
        idx=idx, v=q, url=svc.url, token=svc.token, label=label).records
    assert len(rows) == 8
    cand_ids = rows[0]["ids"]
    cand_scores = rows[0]["scores"]
    assert len(cand_ids) == 25
    want = ref.default.rerank(q, cand_ids, candidate_scores=cand_scores, k=8)
    assert [r["nid"] for r in rows] == [h.id for h in want]
    assert [r["rank"] for r in rows] == list(range(8))
    assert [r["s"] for r in rows] == [h.score for h in want]
    assert [r["vectorScore"] for r in rows] == [h.vector_score for h in want]
    assert [r["nid"] for r in rows] != cand_ids[:8], "the graph changed the vector index's order"


def test_rerank_with_ids_and_errors(db, svc, ref, ds):
    from neo4j.exceptions import ClientError

    drv, label = db
    q = ds.queries[7].tolist()
    ids = [5, 77, 123, 300, 450, 599]
    recs = drv.execute_query("CALL rga.rerank($v, $ids, 4, $o) YIELD node, id, score, rank "
                             "RETURN node.id AS nid, id, score, rank", v=q, ids=ids, o=opts(svc, label)).records
    want = ref.default.rerank(q, ids, k=4)
    assert [(r["nid"], r["id"], r["score"], r["rank"]) for r in recs] == [(h.id, h.id, h.score, h.rank) for h in want]
    with pytest.raises(ClientError) as ei:
        drv.execute_query("CALL rga.rerank($v, [1, 2, 987654], 4, $o) YIELD id RETURN id", v=q, o=opts(svc, label))
    assert "UnknownIdError" in ei.value.message and "987654" in ei.value.message
    with pytest.raises(ClientError) as ei:
        drv.execute_query("CALL rga.rerank($v, [true], 4, $o) YIELD id RETURN id", v=q, o=opts(svc, label))
    assert "candidates must be nodes, integers or strings" in ei.value.message
    with pytest.raises(ClientError) as ei:
        drv.execute_query("CALL rga.rerank($v, [1.5], 4, $o) YIELD id RETURN id", v=q, o=opts(svc, label))
    assert "422 InvalidInputError" in ei.value.message


@pytest.mark.slow
def test_url_and_token_from_the_server_environment(svc, ref, ds, monkeypatch):
    """Without url/token in the options the procedures use RGA_SERVICE_URL / RGA_SERVICE_TOKEN of
    the Neo4j process (a second server of this test's own, started with them)."""
    from neo4j import GraphDatabase

    from ruvector_graph_attn.connectors import Neo4jGraph
    from ruvector_graph_attn.connectors.neo4j.server import Neo4jServer, Neo4jServerError

    monkeypatch.setenv("RGA_SERVICE_URL", svc.url)
    monkeypatch.setenv("RGA_SERVICE_TOKEN", svc.token)
    srv = Neo4jServer(heap="512m", pagecache="32m")
    try:
        srv.start()
    except Neo4jServerError as exc:
        from _require import unavailable
        unavailable("a second Neo4j test server", str(exc))
    try:
        g = Neo4jGraph(srv.uri, auth=srv.auth, label="Item")
        g.load_networkx(ref.graph.G)
        g.close()
        q = ds.queries[0].tolist()
        with GraphDatabase.driver(srv.uri, auth=srv.auth) as d:
            recs = d.execute_query("CALL rga.search($v, 5) YIELD node, score RETURN node.id AS id, score", v=q).records
        want = ref.default.search(q, 5)
        assert [(r["id"], r["score"]) for r in recs] == [(h.id, h.score) for h in want]
    finally:
        srv.stop()
