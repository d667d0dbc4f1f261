"""Graph re-ranking in LangChain: a retriever, and a re-ranker for another retriever's documents.

1. ``LangChainGraphRetriever``: text in, ``Document`` s out, re-ranked over the knowledge graph, with
   the score, the vector score and the attention explanation in ``metadata``.
2. ``LangChainGraphReranker`` inside ``ContextualCompressionRetriever``: an ordinary vector store
   retriever finds passages; the graph re-ranks them by the node id in their metadata. A passage
   without a node id (a web snippet) is kept, after the re-ranked ones.

Needs: pip install 'ruvector-graph-attn[langchain]' (sentence-transformers for a real embedder).
Run: python examples/langchain_graph_rerank.py
"""
from _kb import build, embed_one
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.integrations import LangChainGraphReranker, LangChainGraphRetriever

G, ids, X, model, desc = build()
print(f"embedder: {desc}; {G.number_of_nodes()} passages, {G.number_of_edges()} links")
index = rga.HNSWIndex(dim=X.shape[1], space="cosine")
index.add(ids, X)
rr = rga.GraphReranker(index, NetworkXGraph(G), candidates=10)

question = "how does graph re-ranking use attention over neighbours?"


# 1. our retriever, through LangChain's own entry point
retriever = LangChainGraphRetriever(reranker=rr, embedder=model, k=4)
docs = retriever.invoke(question)
print(f"\nLangChainGraphRetriever.invoke({question!r}):")
for d in docs:
    m = d.metadata
    why = ", ".join(f"{k} {w:.2f}" for k, w in m["attention"][:3])
    print(f"  {m['node_id']:<13} score {m['score']:.4f}  vector {m['vector_score']:.4f} (was #{m['vector_rank']})"
          f"  attention: {why}")
want = [h.id for h in rr.search(embed_one(model, question), k=4)]
print(f"retriever ranking equals GraphReranker.search: {[d.metadata['node_id'] for d in docs] == want}")


# 2. re-rank what an ordinary vector store retriever returned
class ModelEmbeddings(Embeddings):
    def embed_documents(self, texts):
        return [embed_one(model, t).tolist() for t in texts]

    def embed_query(self, text):
        return embed_one(model, text).tolist()


store = InMemoryVectorStore(embedding=ModelEmbeddings())
store.add_documents([Document(page_content=G.nodes[i]["text"], metadata={"node_id": i}) for i in ids])
store.add_documents([Document(page_content="A blog post: attention over graph neighbours helps re-ranking.",
                              metadata={"source": "web"})])
base = store.as_retriever(search_kwargs={"k": 8})
pipeline = ContextualCompressionRetriever(base_compressor=LangChainGraphReranker(reranker=rr, embedder=model),
                                          base_retriever=base)
before = base.invoke(question)
after = pipeline.invoke(question)
print("\nvector store order:  " + ", ".join(str(d.metadata.get("node_id", "<web>")) for d in before))
print("graph re-ranked:     " + ", ".join(str(d.metadata.get("node_id", "<web>")) for d in after))
with_id = [d.metadata["node_id"] for d in before if "node_id" in d.metadata]
expected = [h.id for h in rr.rerank(embed_one(model, question), with_id, k=len(with_id))]
print(f"compression ranking equals GraphReranker.rerank: {[d.metadata.get('node_id') for d in after][:len(expected)] == expected}")
web = [d for d in before if "node_id" not in d.metadata]
print(f"document without node id kept last: {bool(web) and after[-1].page_content == web[0].page_content}")
