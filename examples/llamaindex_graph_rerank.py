"""Graph re-ranking in LlamaIndex: a retriever, and a node postprocessor in a query engine.

1. ``LlamaIndexGraphRetriever.retrieve(question)`` -> ``NodeWithScore`` re-ranked over the graph.
2. ``LlamaIndexGraphReranker`` as a node postprocessor of a ``RetrieverQueryEngine`` over an ordinary
   ``VectorStoreIndex``: the vector retriever finds passages, the graph re-ranks them (using the
   query embedding the vector retriever already computed, ``QueryBundle.embedding``).

The engine's LLM here is LlamaIndex's ``MockLLM`` (no network in this example); any LlamaIndex LLM
goes in its place.

Needs: pip install 'ruvector-graph-attn[llamaindex]' (sentence-transformers for a real embedder).
Run: python examples/llamaindex_graph_rerank.py
"""
from _kb import build, embed_one
from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import TextNode

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.integrations import LlamaIndexGraphReranker, LlamaIndexGraphRetriever

G, ids, X, model, desc = build()
print(f"embedder: {desc}; {G.number_of_nodes()} passages, {G.number_of_edges()} links")
index = rga.HNSWIndex(dim=X.shape[1], space="cosine")
index.add(ids, X)
rr = rga.GraphReranker(index, NetworkXGraph(G), candidates=10)
question = "which database answers nearest neighbour queries with a vector index?"


# 1. our retriever
retriever = LlamaIndexGraphRetriever(rr, embedder=model, k=4)
nodes = retriever.retrieve(question)
print(f"\nLlamaIndexGraphRetriever.retrieve({question!r}):")
for n in nodes:
    m = n.node.metadata
    print(f"  {m['node_id']:<13} score {n.score:.4f}  vector {m['vector_score']:.4f} (was #{m['vector_rank']})")
want = [h.id for h in rr.search(embed_one(model, question), k=4)]
print(f"retriever ranking equals GraphReranker.search: {[n.node.metadata['node_id'] for n in nodes] == want}")


# 2. postprocessor in a query engine over a plain vector index
class ModelEmbedding(BaseEmbedding):
    def _get_query_embedding(self, query):
        return embed_one(model, query).tolist()

    async def _aget_query_embedding(self, query):
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text):
        return embed_one(model, text).tolist()


docs = [TextNode(id_=f"doc-{i}", text=G.nodes[i]["text"], metadata={"node_id": i},
                 excluded_embed_metadata_keys=["node_id"]) for i in ids]
vindex = VectorStoreIndex(docs, embed_model=ModelEmbedding(model_name="example"))
base = vindex.as_retriever(similarity_top_k=8)
engine = RetrieverQueryEngine.from_args(base, llm=MockLLM(),
                                        node_postprocessors=[LlamaIndexGraphReranker(reranker=rr, top_n=4)])
response = engine.query(question)
before = [n.node.metadata["node_id"] for n in base.retrieve(question)]
after = [n.node.metadata["node_id"] for n in response.source_nodes]
print("\nvector index order: " + ", ".join(before))
print("graph re-ranked:    " + ", ".join(after))
expected = [h.id for h in rr.rerank(embed_one(model, question), before, k=len(before))][:4]
print(f"postprocessor ranking equals GraphReranker.rerank: {after == expected}")
for n in response.source_nodes[:2]:
    print(f"  {n.node.metadata['node_id']}: re-ranked {n.score:.4f}, vector retriever {n.node.metadata['retriever_score']:.4f}")
