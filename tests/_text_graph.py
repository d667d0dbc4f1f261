"""A small text corpus with a citation-like graph for the framework adapter tests: 48 documents in
6 topics (each text: 4 words of its topic, 2 words of others), embedded by the deterministic
HashingEmbedder, linked mostly within their topic."""
from __future__ import annotations

import networkx as nx
import numpy as np

TOPICS = {
    "graph": ["graph", "node", "edge", "neighbour", "walk", "degree", "cluster", "path"],
    "vector": ["vector", "embedding", "hnsw", "cosine", "index", "nearest", "search", "ann"],
    "neo4j": ["neo4j", "cypher", "bolt", "database", "label", "property", "query", "transaction"],
    "attention": ["attention", "softmax", "head", "transformer", "key", "value", "weight", "score"],
    "training": ["training", "loss", "gradient", "adam", "epoch", "batch", "optimizer", "checkpoint"],
    "rag": ["retrieval", "generation", "llm", "context", "prompt", "answer", "document", "chunk"],
}
DIM = 64


def corpus(seed: int = 7):
    """``(texts: dict id -> text, G: nx.Graph with 'embedding' and 'text', X [48, DIM], embedder)``."""
    from ruvector_graph_attn.integrations import HashingEmbedder

    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    texts, topic_of = {}, {}
    for i in range(48):
        t = names[i % len(names)]
        own = rng.choice(TOPICS[t], size=4, replace=False).tolist()
        others = [rng.choice(TOPICS[names[j]]) for j in rng.choice([k for k in range(6) if names[k] != t], 2)]
        texts[i] = " ".join(own + list(others))
        topic_of[i] = t
    emb = HashingEmbedder(DIM)
    ids = list(texts)
    X = emb([texts[i] for i in ids])
    G = nx.Graph()
    for i in ids:
        G.add_node(i, embedding=X[i], text=texts[i], topic=topic_of[i])
    for i in ids:
        same = [j for j in ids if j != i and topic_of[j] == topic_of[i]]
        for j in rng.choice(same, size=2, replace=False):
            G.add_edge(i, int(j))
        if rng.random() < 0.3:
            j = int(rng.integers(0, 48))
            if j != i:
                G.add_edge(i, j)
    return texts, G, X, emb


def reranker(G, X, candidates: int = 12, **kw):
    import ruvector_graph_attn as rga
    from ruvector_graph_attn.connectors import NetworkXGraph

    index = rga.HNSWIndex(dim=X.shape[1], space="cosine", M=16, ef_construction=200)
    index.add(list(range(X.shape[0])), X)
    return rga.GraphReranker(index, NetworkXGraph(G), candidates=candidates, **kw)


QUERIES = ["graph attention over neighbour nodes", "cypher query on the neo4j database",
           "retrieval augmented generation with llm context", "hnsw vector index search"]
