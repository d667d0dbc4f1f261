"""Graph re-ranked retrieval inside neo4j-graphrag's ``GraphRAG`` pipeline.

With NEO4J_URI set (and NEO4J_USER / NEO4J_PASSWORD if auth is on) the knowledge base is written to
Neo4j under a fresh label (deleted afterwards): candidates come from a Neo4j vector index, the graph
is expanded in Neo4j, and a ``retrieval_query`` Cypher tail adds each passage's linked topics to the
LLM context. Without NEO4J_URI the same retriever runs in process (HNSW + NetworkX).

The LLM is a stand-in written here (it answers with the first context line and records the prompt):
this example runs offline. Any neo4j-graphrag LLM (OpenAILLM, OllamaLLM, ...) goes in its place.

Needs: pip install 'ruvector-graph-attn[graphrag]' (sentence-transformers for a real embedder).
Run: [NEO4J_URI=bolt://localhost:7687 NEO4J_PASSWORD=...] python examples/graphrag_neo4j.py
"""
import os
import uuid

from _kb import build, embed_one
from neo4j_graphrag.generation import GraphRAG
from neo4j_graphrag.llm import LLMInterfaceV2
from neo4j_graphrag.llm.types import LLMResponse

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import Neo4jGraph, Neo4jVectorIndex, NetworkXGraph
from ruvector_graph_attn.integrations import GraphRAGRetriever


class FirstLineLLM(LLMInterfaceV2):
    """Offline stand-in: answers with the first line of the context it was given."""

    def __init__(self):
        super().__init__(model_name="first-line")
        self.prompts = []

    def invoke(self, input, response_format=None, **kwargs):
        prompt = input[-1]["content"]                      # the user message: question + context
        self.prompts.append(prompt)
        context = prompt.split("Context:")[-1].strip().splitlines()
        return LLMResponse(content=context[0] if context else "no context")

    async def ainvoke(self, input, response_format=None, **kwargs):
        return self.invoke(input, response_format, **kwargs)


G, ids, X, model, desc = build()
print(f"embedder: {desc}; {G.number_of_nodes()} passages, {G.number_of_edges()} links")
question = "how does GraphRAG use the links of a knowledge graph?"
qv = embed_one(model, question)

uri = os.environ.get("NEO4J_URI")
cleanup = None
if uri:
    password = os.environ.get("NEO4J_PASSWORD")
    auth = (os.environ.get("NEO4J_USER", "neo4j"), password) if password is not None else None
    label = "RgaExample" + uuid.uuid4().hex[:8]
    graph = Neo4jGraph(uri, auth=auth, label=label, undirected=True)

    def cleanup():
        graph.write_tx(lambda tx: tx.run(f"MATCH (n:`{label}`) DETACH DELETE n").consume(), "example cleanup")
        graph.write_tx(lambda tx: tx.run(f"DROP INDEX `v_{label}` IF EXISTS").consume(), "example cleanup")
        for rec in graph.read("SHOW CONSTRAINTS YIELD name, labelsOrTypes WHERE $l IN labelsOrTypes RETURN name",
                              {"l": label}):
            graph.write_tx(lambda tx, nm=rec["name"]: tx.run(f"DROP CONSTRAINT `{nm}`").consume(), "example cleanup")
        graph.close()
else:
    graph = NetworkXGraph(G)

try:
    if uri:
        graph.load_networkx(G)
        rows = [{"id": i, "text": G.nodes[i]["text"]} for i in ids]
        graph.write_tx(lambda tx: tx.run(f"UNWIND $rows AS r MATCH (n:`{label}` {{id: r.id}}) SET n.text = r.text",
                                         rows=rows).consume(), "example texts")
        index = Neo4jVectorIndex.create(graph, name=f"v_{label}", space="cosine")
        print(f"Neo4j: {graph.count()} nodes under label {label}; candidates from vector index {index.name}")
        # the Cypher tail sees `node`, `score` (re-ranked) and `rga` (the hit's metadata), in re-ranked order
        tail = ("OPTIONAL MATCH (node)--(nb) WITH node, score, rga, collect(nb.id) AS links "
                "RETURN node.text + ' [links: ' + reduce(s = '', x IN links | s + CASE s WHEN '' THEN '' "
                "ELSE ', ' END + x) + ']' AS text, score, rga ORDER BY score DESC")
        retriever = GraphRAGRetriever(rga.GraphReranker(index, graph, candidates=10), embedder=model,
                                      retrieval_query=tail)
    else:
        print("in process (set NEO4J_URI to run against Neo4j): HNSW candidates, NetworkX graph")
        index = rga.HNSWIndex(dim=X.shape[1], space="cosine")
        index.add(ids, X)
        retriever = GraphRAGRetriever(rga.GraphReranker(index, graph, candidates=10), embedder=model)

    llm = FirstLineLLM()
    rag = GraphRAG(retriever=retriever, llm=llm)
    result = rag.search(query_text=question, retriever_config={"top_k": 4}, return_context=True)
    print(f"\nquestion: {question}\nanswer:   {result.answer}")
    print("context items (re-ranked):")
    for item in result.retriever_result.items:
        m = item.metadata
        print(f"  {m['id']:<13} score {m['score']:.4f}  vector {m['vector_score']:.4f} (was #{m['vector_rank']})  "
              f"{item.content[:70]}")
    got = [it.metadata["id"] for it in result.retriever_result.items]
    want = [h.id for h in retriever.reranker.search(qv, k=4)]
    print(f"context order equals GraphReranker.search: {got == want}")
    print(f"the LLM received {len(llm.prompts)} prompt(s) with every item: "
          f"{all(it.content in llm.prompts[0] for it in result.retriever_result.items)}")
finally:
    if cleanup is not None:
        cleanup()
