"""The Neo4j plugin (connectors/neo4j/plugin): procedures rga.search / rga.rerank run over Bolt on
the real test server (which loads the plugin jar from its plugin directory) and call a real
service subprocess; ids, ranks and scores equal the Python API."""
from __future__ import annotations

import uuid

import pytest

from _require import import_or_unavailable
from _service import make_dataset, reference_engine, start_service

import_or_unavailable("fastapi")
import_or_unavailable("uvicorn")

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("plugin"))


@pytest.fixture(scope="module")
def ref(ds):
    return reference_engine(ds)


@pytest.fixture(scope="module")
def svc(ds):
    s = start_service(ds)
    yield s
    s.stop()


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


@pytest.mark.parametrize("scorer", ["attention", "gat"])
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
