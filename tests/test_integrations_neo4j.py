"""neo4j-graphrag adapter against the real Neo4j test server: candidates from our HNSW index or from
Neo4j's vector index, expansion in Neo4j, a ``retrieval_query`` Cypher tail, a ``result_formatter``,
and the retriever inside ``neo4j_graphrag.generation.GraphRAG`` with a recording LLM."""
from __future__ import annotations

import uuid

import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import Neo4jGraph, Neo4jVectorIndex

from _require import import_or_unavailable
from _text_graph import QUERIES, corpus
from test_integrations import _qvec, _Recorder, _same_hits

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def loaded(neo4j_server):
    import_or_unavailable("neo4j_graphrag", "neo4j-graphrag")
    uri, auth, _ = neo4j_server
    texts, G, X, emb = corpus()
    label = "RgaInteg" + uuid.uuid4().hex[:10]
    g = Neo4jGraph(uri, auth=auth, label=label, undirected=True)
    g.load_networkx(G)
    rows = [{"id": i, "text": G.nodes[i]["text"], "topic": G.nodes[i]["topic"]} for i in G]
    g.write_tx(lambda tx: tx.run(f"UNWIND $rows AS r MATCH (n:`{label}` {{id: r.id}}) "
                                 f"SET n.text = r.text, n.topic = r.topic", rows=rows).consume(), "texts")
    vindex = Neo4jVectorIndex.create(g, name=f"v_{label}", space="cosine")
    hnsw = rga.HNSWIndex(dim=X.shape[1], space="cosine", M=16, ef_construction=200)
    hnsw.add(list(G), X)
    try:
        yield texts, G, X, emb, g, {"hnsw": hnsw, "neo4j": vindex}
    finally:
        vindex.drop()
        g.write_tx(lambda tx: tx.run(f"MATCH (n:`{label}`) DETACH DELETE n").consume(), "cleanup")
        for rec in g.read("SHOW CONSTRAINTS YIELD name, labelsOrTypes WHERE $l IN labelsOrTypes RETURN name",
                          {"l": label}):
            g.write_tx(lambda tx, nm=rec["name"]: tx.run(f"DROP CONSTRAINT `{nm}`").consume(), "cleanup")
        g.close()


@pytest.mark.parametrize("source", ["hnsw", "neo4j"])
def test_graphrag_retriever_neo4j_without_tail(loaded, source):
    from ruvector_graph_attn.integrations import GraphRAGRetriever

    texts, G, X, emb, g, indexes = loaded
    rr = rga.GraphReranker(indexes[source], g, candidates=12)
    ret = GraphRAGRetriever(rr, embedder=emb)
    assert ret.driver is g.driver                                   # taken from the Neo4jGraph
    for q in QUERIES[:2]:
        res = ret.search(query_text=q, top_k=5)
        hits = rr.search(_qvec(emb, q), k=5)
        _same_hits([it.metadata for it in res.items], hits, id_key="id")
        assert [it.content for it in res.items] == [texts[h.id] for h in hits]   # the node's text property
    assert ret.index_name == (f"v_{g.label}" if source == "neo4j" else None)


def test_graphrag_retriever_with_retrieval_query_and_formatter(loaded):
    from neo4j_graphrag.generation import GraphRAG
    from neo4j_graphrag.types import RetrieverResultItem

    from ruvector_graph_attn.integrations import GraphRAGRetriever

    texts, G, X, emb, g, indexes = loaded
    rr = rga.GraphReranker(indexes["neo4j"], g, candidates=12)
    tail = ("MATCH (node)-[:LINKS]-(nb) "
            "WITH node, score, rga, count(DISTINCT nb) AS degree "
            "RETURN node.text AS text, node.topic AS topic, degree, score, rga ORDER BY score DESC")
    ret = GraphRAGRetriever(rr, embedder=emb, retrieval_query=tail)
    q = QUERIES[0]
    hits = rr.search(_qvec(emb, q), k=6)
    res = ret.search(query_text=q, top_k=6)
    _same_hits([it.metadata for it in res.items], hits, id_key="id")
    assert [it.content for it in res.items] == [texts[h.id] for h in hits]
    raw = ret.get_search_results(query_text=q, top_k=6)
    assert [r["degree"] for r in raw.records] == [G.degree(h.id) for h in hits]
    assert [r["topic"] for r in raw.records] == [G.nodes[h.id]["topic"] for h in hits]
    assert [m["id"] for m in raw.metadata["rga_hits"]] == [h.id for h in hits]

    # query_params reach the tail; a tail that drops rga still has the hits in the result metadata
    tail2 = "WITH node, score WHERE node.topic = $topic RETURN node.text AS text, score ORDER BY score DESC"
    ret2 = GraphRAGRetriever(rr, embedder=emb, retrieval_query=tail2)
    res2 = ret2.search(query_text=q, top_k=6, query_params={"topic": "graph"})
    want = [h for h in hits if G.nodes[h.id]["topic"] == "graph"]
    assert want and [it.content for it in res2.items] == [texts[h.id] for h in want]
    assert all(it.metadata is None for it in res2.items)
    assert [m["id"] for m in res2.metadata["rga_hits"]] == [h.id for h in hits]
    with pytest.raises(rga.InvalidInputError, match="reserved"):
        ret2.search(query_text=q, query_params={"rga_hits": []})

    # a custom result_formatter, inside GraphRAG with a recording LLM
    def fmt(record):
        return RetrieverResultItem(content=f"{record['text']} (links: {record['degree']})",
                                   metadata={"node": record["rga"]["id"], "why": record["rga"]["attention"][:2]})

    ret3 = GraphRAGRetriever(rr, embedder=emb, retrieval_query=tail, result_formatter=fmt)
    llm = _Recorder.make()
    out = GraphRAG(retriever=ret3, llm=llm).search(query_text=q, retriever_config={"top_k": 6}, return_context=True)
    assert out.answer == "fixed answer" and len(llm.prompts) == 1
    lines = [f"{texts[h.id]} (links: {G.degree(h.id)})" for h in hits]
    assert "\n".join(lines) in llm.prompts[0]                        # the whole context, in re-ranked order
    assert [it.metadata["node"] for it in out.retriever_result.items] == [h.id for h in hits]


def test_graphrag_retriever_neo4j_errors(loaded):
    from ruvector_graph_attn.integrations import GraphRAGRetriever

    texts, G, X, emb, g, indexes = loaded
    rr = rga.GraphReranker(indexes["hnsw"], g, candidates=12)
    with pytest.raises(rga.InvalidInputError):
        GraphRAGRetriever(rr, embedder=emb, retrieval_query="   ")
    with pytest.raises(rga.InvalidInputError):
        GraphRAGRetriever(rr, embedder=emb, driver="bolt://x")
    with pytest.raises(rga.UnsafeNameError):
        GraphRAGRetriever(rr, embedder=emb, retrieval_query="RETURN node", label="a`) DETACH DELETE n //")
    bad = GraphRAGRetriever(rr, embedder=emb, retrieval_query="RETURN nosuchvariable")
    with pytest.raises(rga.GraphSourceError, match="retrieval_query.*Neo.ClientError.Statement"):
        bad.search(query_text="graph")


def test_graphrag_retriever_metadata_filters(loaded):
    """neo4j-graphrag ``filters`` select the allowed nodes in Neo4j; only they are re-ranked and returned."""
    from ruvector_graph_attn.integrations import GraphRAGRetriever

    texts, G, X, emb, g, indexes = loaded
    rr = rga.GraphReranker(indexes["hnsw"], g, candidates=12)
    ret = GraphRAGRetriever(rr, embedder=emb)
    q = QUERIES[1]
    allowed = [i for i in G if G.nodes[i]["topic"] in ("neo4j", "rag")]
    res = ret.search(query_text=q, top_k=5, filters={"topic": {"$in": ["neo4j", "rag"]}})
    hits = rr.search(_qvec(emb, q), k=5, filter=allowed)
    assert len(hits) == 5
    _same_hits([it.metadata for it in res.items], hits, id_key="id")
    assert all(G.nodes[it.metadata["id"]]["topic"] in ("neo4j", "rag") for it in res.items)
    # the graph still contributes: attention reaches neighbours outside the filter
    assert any(G.nodes[n]["topic"] not in ("neo4j", "rag") for it in res.items for n, _ in it.metadata["attention"])
    assert ret.search(query_text=q, top_k=5, filters={"topic": "no such topic"}).items == []
    with pytest.raises(rga.InvalidInputError, match="bad filters"):
        ret.search(query_text=q, filters={"topic": {"$nosuchop": 1}})
    with pytest.raises(rga.InvalidInputError):
        ret.search(query_text=q, filters={})
