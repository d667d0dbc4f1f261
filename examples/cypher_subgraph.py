"""A subgraph chosen by your own Cypher query, scored with a graph layer and pooled to one vector.

Neo4jGraph.subgraph_from_cypher runs a read-only Cypher query, takes every node it returns
(nodes, ids, paths), fetches their features and the relationships among them (induced=True),
and returns the same Subgraph the re-ranker uses. Here: the 2-hop citation paths out of one
paper, run through a GATConv and pooled with a gated attention readout.

Needs a Neo4j 5.x server: set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD if auth is on). The
example writes a 6-node graph under a fresh label and deletes it afterwards.

Run: NEO4J_URI=bolt://localhost:7687 NEO4J_PASSWORD=... python examples/cypher_subgraph.py
"""
import numpy as np

import ruvector_graph_attn as rga
from _neo4j_env import drop_label, graph_from_env

g, label = graph_from_env(relationship_types=["CITES"])
emb = {1: [1.0, 0.0, 0.0], 2: [0.0, 1.0, 0.0], 3: [0.0, 0.0, 1.0], 4: [1.0, 1.0, 0.0], 5: [0.5, 0.5, 0.5],
       6: [9.0, 9.0, 9.0]}
ids = list(emb)
try:
    g.load_arrays(ids, np.array([emb[i] for i in ids]),
                  edges=[(1, 2), (1, 3), (2, 4), (3, 4), (4, 5), (5, 6)], rel_type="CITES")
    cypher = (f"MATCH p = (a:`{label}` {{id: $start}})-[:CITES*1..2]->(b:`{label}`) RETURN p")
    sg = g.subgraph_from_cypher(cypher, {"start": 1})
    edges = sorted(zip([sg.node_ids[i] for i in sg.edge_index[0]], [sg.node_ids[i] for i in sg.edge_index[1]]))
    print(f"Cypher returned nodes {sorted(sg.node_ids)} with edges {edges}")

    gat = rga.graph.GATConv(3, 4, heads=2, rng=0)
    gat.eval()
    h, (ei, alpha) = gat(sg.x, sg.edge_index, return_attention_weights=True)
    into4 = [(sg.node_ids[s], round(float(a), 4)) for s, t, a in zip(ei[0], ei[1], alpha[:, 0])
             if sg.node_ids[t] == 4]
    print(f"GAT output {tuple(h.shape)}; attention into node 4 (head 0): {sorted(into4)}, "
          f"sum {sum(a for _, a in into4):.4f}")

    pool = rga.graph.readout.AttentionalAggregation(rga.nn.Linear(8, 1, rng=1))
    pooled, weights = pool(h)
    w = weights.reshape(-1)
    print(f"attention-pooled subgraph embedding {tuple(pooled.shape)}: weights sum to {w.sum():.4f}, "
          f"equals weights @ h: {np.allclose(pooled[0], w @ h, atol=1e-5)}")
finally:
    drop_label(g, label)
