"""Attention-guided traversal and re-ranked search on a graph stored in Neo4j.

Needs a Neo4j 5.x server: set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD if auth is on), or
start a throwaway local one with ``ruvector_graph_attn.connectors.neo4j.server.Neo4jServer``
(Java 17+ and Maven). The example writes a 7-node graph under a fresh label and deletes it
afterwards.

Each traversal step fetches the neighbours of the current path ends in one Cypher query, scores
them with ``softmax(<q, x_v> / sqrt(D))`` and keeps the top-k; a path's score is the product of
its step weights.

Run: NEO4J_URI=bolt://localhost:7687 NEO4J_PASSWORD=... python examples/neo4j_traversal.py
"""
import numpy as np

import ruvector_graph_attn as rga
from _neo4j_env import drop_label, graph_from_env
from ruvector_graph_attn.connectors.neo4j import TraversalStep

g, label = graph_from_env()
emb = {1: [1.0, 0.0], 2: [1.0, 0.0], 3: [0.0, 1.0], 4: [-1.0, 0.0], 5: [2.0, 0.0], 6: [0.0, 2.0], 7: [1.0, 1.0]}
ids = list(emb)
try:
    g.load_arrays(ids, np.array([emb[i] for i in ids]),
                  edges=[(1, 2), (1, 3), (1, 4), (2, 5), (2, 6), (2, 1), (3, 7)], rel_type="CITES")
    print(f"loaded {g.count()} nodes under label {label} at {g.uri}")

    q = np.array([1.0, 0.0])
    paths = g.traverse([1], [TraversalStep(["CITES"], "out", 2), TraversalStep(["CITES"], "out", 1)], query=q)
    for p in paths:
        print(f"path {' -> '.join(str(n) for n in p.nodes)}: score {p.score:.6f}, "
              f"step weights {', '.join(f'{w:.6f}' for w in p.weights)}")

    sg = g.expand([1], hops=1)
    print(f"1-hop expansion of node 1 (both directions): nodes {sorted(sg.node_ids)}")

    index = rga.HNSWIndex(dim=2, space="cosine", seed=0)
    index.add(ids, np.array([emb[i] for i in ids], dtype=np.float32))
    hits = rga.GraphReranker(index, g, candidates=7).search(q, k=3)
    print("re-ranked search for (1, 0), HNSW candidates + Neo4j expansion: "
          + "; ".join(f"{h.id} score {h.score:.4f}" for h in hits))
finally:
    drop_label(g, label)
