"""Writes the JS client tests' fixture into a folder: an index directory, an edge list, and
expected.json with the Python API's answers for the calls the tests make (the service must
give the same). Usage: python fixture.py OUT_DIR"""
import json
import sys
from pathlib import Path

import numpy as np

import ruvector_graph_attn as rga
from ruvector_graph_attn.commands.serve import build_parser, load_engine
from ruvector_graph_attn.rerank.synthetic import latent_citation_graph

out = Path(sys.argv[1])
data = latent_citation_graph(n=400, dim=12, latent_dim=4, n_topics=5, degree=6, seed=5)
index = rga.HNSWIndex(dim=12, num_threads=1)
index.add(np.arange(data.n), data.x)
index.save(out / "index")
(out / "graph.edgelist").write_text("".join(f"{s} {t}\n" for s, t in data.edges.T.tolist()))
eng = load_engine(build_parser().parse_args(["--index", str(out / "index"), "--graph", str(out / "graph.edgelist")]))
rr = eng.default
Q, _, _ = data.queries(3, 5, seed=2)
Q = [[float(v) for v in q] for q in Q.astype(np.float32)]
cand = [int(i) for i in index.search(np.asarray(Q[1], np.float32), 20)[0]][::-1]
scores = [1.0 - 0.02 * i for i in range(len(cand))]
vec = rga.GraphReranker(index, eng.graph, scorer="vector")
expected = {
    "queries": Q,
    "search": [h.to_dict() for h in rr.search(Q[0], 5)],
    "search_filter": [h.to_dict() for h in rr.search(Q[0], 5, filter=list(range(0, 400, 2)))],
    "batch_vector": [[h.to_dict() for h in hits] for hits in vec.search_batch(Q, 4)],
    "rerank": {"ids": cand, "scores": scores, "hits": [h.to_dict() for h in rr.rerank(Q[1], cand, candidate_scores=scores, k=5)]},
    "embed": [float(v) for v in rr.embed_subgraph([1, 2, 3], method="attention", query=Q[2]).tolist()],
    "vectors": [[float(v) for v in row] for row in index.get([4, 9]).astype(np.float64)],
}
paths = eng.graph.traverse([7], [{"direction": "out", "top_k": 2}, {"direction": "out", "top_k": 2}], query=Q[2])
expected["traverse"] = [{"nodes": [int(n) for n in p.nodes], "weights": [float(w) for w in p.weights],
                         "score": float(p.score), "rank": int(p.rank)} for p in paths]
(out / "expected.json").write_text(json.dumps(expected))
