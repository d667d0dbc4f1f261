"""Re-ranked vector search over a NetworkX graph, with the attention weights that explain it.

Items have a hidden ("latent") position; their embeddings are noisy views of it, and the graph
links latent neighbours. A query's relevant items are its 10 latent nearest neighbours. HNSW
alone sees only the noisy embeddings; the re-ranker also attends over each candidate's graph
neighbours, which averages the noise away.

Run: python examples/rerank_networkx.py
"""
import networkx as nx
import numpy as np

import ruvector_graph_attn as rga

rng = np.random.default_rng(0)
n, latent_dim, dim, k = 2000, 4, 32, 10

# latent positions on 5 topics, embeddings = random projection + noise
centres = rng.standard_normal((5, latent_dim)) * 2.0
z = centres[rng.integers(0, 5, n)] + 0.6 * rng.standard_normal((n, latent_dim))
proj = np.linalg.qr(rng.standard_normal((dim, latent_dim)))[0].T          # [latent_dim, dim], orthonormal rows
x = (z @ proj + 0.25 * rng.standard_normal((n, dim))).astype(np.float32)

# graph: every item links to 5 of its 15 latent nearest neighbours
d2 = (z ** 2).sum(1)[:, None] - 2 * z @ z.T + (z ** 2).sum(1)[None, :]
np.fill_diagonal(d2, np.inf)
near = np.argsort(d2, axis=1)[:, :15]
G = nx.Graph()
for i in range(n):
    G.add_node(i, embedding=x[i])
    G.add_edges_from((i, int(j)) for j in rng.choice(near[i], 5, replace=False))

index = rga.HNSWIndex(dim=dim, space="cosine", seed=0, num_threads=1)
index.add(np.arange(n), x)
graph = rga.connectors.NetworkXGraph(G, feature_key="embedding")
reranker = rga.GraphReranker(index, graph, scorer="attention", hops=1, candidates=100)
baseline = rga.GraphReranker(index, graph, scorer="vector", candidates=100)

# 100 fresh queries and their ground truth (latent nearest neighbours)
zq = centres[rng.integers(0, 5, 100)] + 0.6 * rng.standard_normal((100, latent_dim))
Q = (zq @ proj + 0.25 * rng.standard_normal((100, dim))).astype(np.float32)
dq = (zq ** 2).sum(1)[:, None] - 2 * zq @ z.T + (z ** 2).sum(1)[None, :]
relevant = np.argsort(dq, axis=1)[:, :k]

re_hits = reranker.search_batch(Q, k=k)
ve_hits = baseline.search_batch(Q, k=k)


def recall(hits):
    return np.mean([len({h.id for h in hs} & set(r.tolist())) / k for hs, r in zip(hits, relevant)])


print(f"recall@{k} over 100 queries: vector-only {recall(ve_hits):.3f}, re-ranked {recall(re_hits):.3f}")

print("query 0, re-ranked top 5 (id, score, vector score, was rank, top attention weights):")
for h in re_hits[0][:5]:
    why = ", ".join(f"{nid}: {w:.2f}" for nid, w in h.top_attention(3))
    mark = "*" if h.id in relevant[0] else " "
    print(f"  {mark} {h.id:5d}  {h.score:.3f}  {h.vector_score:.3f}  was {h.vector_rank + 1:3d}  [{why}]")
top = re_hits[0][0]
print(f"attention weights of the first hit sum to {sum(top.attention.values()):.6f} over "
      f"{len(top.attention)} nodes (the hit and its neighbours: {G.degree(top.id) + 1})")
single = reranker.search(Q[0], k=k)
print(f"search(q) equals search_batch(Q)[0]: {[h.id for h in single] == [h.id for h in re_hits[0]]}")
