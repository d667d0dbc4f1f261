"""Re-ranking quality: recall@10, MRR@10 and nDCG@10 of every scorer against a ground truth
that no scorer defines.

Dataset: the latent-space citation graph of ``ruvector_graph_attn.rerank.synthetic``
(topics as a Gaussian mixture in an 8-d latent space, observed through a random projection to
``--dim`` dimensions plus isotropic noise; citations drawn from latent nearest neighbours with
probability ``--homophily``, otherwise at random). A query is a fresh latent point observed
the same way; its relevant items are its 10 nearest items **in latent space**. The
embeddings are a noisy view of that geometry and the graph is a second, independent noisy
view: re-ranking can only help by combining them.

Protocol: two disjoint query sets drawn with different seeds. Every tunable parameter
(temperature and blend of the attention scorers -- "attention", "hyperbolic", sphere, sparse
top-k (and its k), multi-head (query scale); alpha, temperature and blend of personalised
PageRank; blend and the self/neighbour mix of the propagation layers) is chosen by nDCG@10 on the **tuning** split; all figures are
reported on the **test** split. The GNN scorers use fixed propagation weights (identity
projections: SAGE ``h = a * mean_j x_j + (1 - a) * x``, GIN ``(1 + eps) x + sum_j x_j``,
GAT with zero attention vectors = uniform weights over neighbours and self), because a
trained layer needs training data this zero-shot protocol does not give them; they show
what plain propagation does, not what a trained layer can do. The multi-head scorer likewise
uses identity projections (4 heads, each attending within its own block of coordinates).
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import numpy as np

from .common import print_table

K = 10


def build_parser(prog: str = "rerank_quality") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="items (nodes)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--noise", type=float, default=0.2, help="embedding noise per dimension")
    p.add_argument("--homophily", type=float, default=0.9)
    p.add_argument("--degree", type=int, default=10)
    p.add_argument("--tune-queries", type=int, default=300)
    p.add_argument("--test-queries", type=int, default=1000)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small grid and sizes (smoke test)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def metrics(ranked: np.ndarray, relevant: np.ndarray, k: int = K) -> dict:
    """Mean recall@k, MRR@k and nDCG@k (binary relevance: the ``relevant`` sets)."""
    from ..rerank.metrics import ranking_metrics

    return ranking_metrics(np.asarray(ranked), list(relevant), k)


def propagation_layer(kind: str, dim: int, mix: float) -> Any:
    """A graph layer with fixed, non-random propagation weights (see module docstring)."""
    from ..graph import GINConv, SAGEConv
    from ..nn import Linear

    eye = np.eye(dim, dtype=np.float32)
    if kind == "sage":
        layer = SAGEConv(dim, dim, aggr="mean")
        layer.load_state_dict({"lin_l.weight": mix * eye, "lin_l.bias": np.zeros(dim, np.float32),
                               "lin_r.weight": (1.0 - mix) * eye})
        return layer
    if kind == "gin":
        lin = Linear(dim, dim)
        lin.load_state_dict({"weight": eye, "bias": np.zeros(dim, np.float32)})
        return GINConv(lin, eps=float(mix))
    if kind == "gat":
        from ..graph import GATConv  # noqa: F401 - may not exist in every installation

        layer = GATConv(dim, dim, heads=1, add_self_loops=True)
        sd = {}
        for name, value in layer.state_dict().items():
            arr = np.asarray(value)
            sd[name] = eye if (arr.ndim == 2 and arr.shape == (dim, dim)) else np.zeros_like(arr)
        layer.load_state_dict(sd)
        return layer
    raise ValueError(kind)


def identity_multihead(dim: int, heads: int, query_scale: float) -> Any:
    """A MultiHeadAttention with identity projections (the query's scaled by ``query_scale``,
    acting as an inverse temperature): each head attends within its own block of coordinates."""
    from ..attention.multihead import MultiHeadAttention

    eye = np.eye(dim, dtype=np.float32)
    mha = MultiHeadAttention(embed_dim=dim, num_heads=heads, bias=True)
    mha.load_state_dict({"in_proj_weight": np.concatenate([query_scale * eye, eye, eye]),
                         "in_proj_bias": np.zeros(3 * dim, np.float32),
                         "out_proj.weight": eye, "out_proj.bias": np.zeros(dim, np.float32)})
    return mha


def _search_fn(rr) -> Callable[[np.ndarray], np.ndarray]:
    return lambda Q: rr.rerank_arrays(Q, K)[0]


def run(args: argparse.Namespace) -> int:
    import ruvector_graph_attn as rga
    from ..connectors import NetworkXGraph
    from ..rerank.pipeline import DEFAULT_BLEND, DEFAULT_TEMPERATURE
    from ..rerank.synthetic import latent_citation_graph

    if args.quick:
        args.n, args.tune_queries, args.test_queries = min(args.n, 4000), min(args.tune_queries, 60), \
            min(args.test_queries, 100)
    t0 = time.perf_counter()
    data = latent_citation_graph(n=args.n, dim=args.dim, noise=args.noise, homophily=args.homophily,
                                 degree=args.degree, seed=args.seed)
    index = rga.HNSWIndex(dim=args.dim, space="cosine", M=16, ef_construction=200, max_elements=data.n)
    index.add(np.arange(data.n), data.x)
    graph = NetworkXGraph(data.to_networkx())
    graph.refresh()
    Qt, Rt, _ = data.queries(args.tune_queries, K, seed=args.seed + 101)
    Qs, Rs, _ = data.queries(args.test_queries, K, seed=args.seed + 202)
    setup = time.perf_counter() - t0
    if not args.json:
        print(f"dataset: n={data.n}, dim={args.dim}, edges={data.edges.shape[1]}, noise={args.noise}, "
              f"homophily={args.homophily}; tuning queries={len(Qt)}, test queries={len(Qs)} "
              f"(setup {setup:.1f}s)", flush=True)

    def make(scorer: str, **kw):
        kw.setdefault("graph_candidates", 0)      # the HNSW candidates unless a row adds graph candidates
        return rga.GraphReranker(index, graph, scorer=scorer, hops=1, candidates=args.candidates,
                                 direction="both", **kw)

    rows: list[dict] = []

    # brute force over the embeddings (exact cosine)
    Xn = data.x / np.linalg.norm(data.x, axis=1, keepdims=True)
    Qn = Qs / np.linalg.norm(Qs, axis=1, keepdims=True)
    sims = Qn @ Xn.T
    part = np.argpartition(-sims, K, axis=1)[:, :K]
    bf = np.take_along_axis(part, np.argsort(-np.take_along_axis(sims, part, 1), axis=1), 1)
    rows.append({"method": "brute force (exact cosine)", "params": "", **metrics(bf, Rs)})
    vec = make("vector")
    base = metrics(_search_fn(vec)(Qs), Rs)
    rows.append({"method": "HNSW vector-only", "params": f"ef={index.ef}", **base})
    # the naive graph re-rank a user would write: cos(q, x_c) + 0.5 * mean_j cos(q, x_j) over the
    # candidate's neighbours (both directions), on the same HNSW candidates
    ids_c, _ = index.search(Qs, args.candidates, ef=max(index.ef, args.candidates))
    ids_c = np.asarray(ids_c, dtype=np.int64)
    und = np.concatenate([data.edges, data.edges[::-1]], axis=1)
    deg = np.bincount(und[0], minlength=data.n).astype(np.float64)
    M = np.zeros((data.n, args.dim))
    np.add.at(M, und[0], Xn[und[1]])
    M /= np.maximum(deg, 1.0)[:, None]
    naive = np.einsum("bd,bcd->bc", Qn, Xn[ids_c]) + 0.5 * np.einsum("bd,bcd->bc", Qn, M[ids_c])
    naive_rank = np.take_along_axis(ids_c, np.argsort(-naive, axis=1, kind="stable")[:, :K], 1)
    rows.append({"method": "naive: cos + 0.5 * mean neighbour cos", "params": "both directions",
                 **metrics(naive_rank, Rs)})

    temps = [0.02, 0.05, 0.1, 0.2, 0.5, 2.0] if not args.quick else [0.05, 0.2]
    blends = [0.35, 0.5, 0.65, 0.8, 1.0] if not args.quick else [0.5, 1.0]
    mixes = {"sage": [0.3, 0.5, 0.7], "gin": [0.0, 1.0, 4.0], "gat": [0.0]}
    layer_blends = [0.35, 0.5, 0.65, 0.8, 1.0] if not args.quick else [0.5, 1.0]

    def tune(label: str, configs: list[dict], build: Callable[[dict], Any]) -> None:
        best, best_cfg = -1.0, None
        for cfg in configs:
            m = metrics(_search_fn(build(cfg))(Qt), Rt)
            if m["ndcg@10"] > best:
                best, best_cfg = m["ndcg@10"], cfg
        m = metrics(_search_fn(build(best_cfg))(Qs), Rs)
        shown = ", ".join(f"{k}={v}" for k, v in best_cfg.items())
        rows.append({"method": label, "params": shown, "tune_ndcg@10": best, **m})

    # the package defaults, untouched (per-graph temperature / blend and graph candidates)
    dflt = make("attention", graph_candidates="auto")
    m = metrics(_search_fn(dflt)(Qs), Rs)
    rows.append({"method": "attention (package defaults)",
                 "params": f"auto: temperature={dflt.temperature}, blend={dflt.blend}, "
                           f"graph_candidates={dflt.graph_candidates}", **m})
    m = metrics(_search_fn(make("attention", temperature=DEFAULT_TEMPERATURE, blend=DEFAULT_BLEND))(Qs), Rs)
    rows.append({"method": "attention, former default",
                 "params": f"temperature={DEFAULT_TEMPERATURE}, blend={DEFAULT_BLEND}", **m})
    m = metrics(_search_fn(rga.GraphReranker(index, graph, hops=2, candidates=args.candidates))(Qs), Rs)
    rows.append({"method": "attention, hops=2 (package defaults)", "params": "auto", **m})
    grid = [{"temperature": t, "blend": b} for t in temps for b in blends]
    tune("attention (tuned on tuning split)", grid, lambda c: make("attention", **c))
    # squared geodesic distances are on another scale than similarities: own temperature grid
    htemps = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0] if not args.quick else [2.0, 10.0]
    hgrid = [{"temperature": t, "blend": b} for t in htemps for b in blends]
    tune("hyperbolic (tuned)", hgrid, lambda c: make("hyperbolic", **c))
    # the other scorer objects, on the same queries
    from ..manifold import Sphere
    from ..rerank import scorers as S

    tune("sphere (geodesic attention, tuned)", hgrid,
         lambda c: make(S.GeometricScorer(Sphere(1.0), c["temperature"], c["blend"])))
    ks = [2, 4, 8] if not args.quick else [4]
    stemps = [0.05, 0.2, 0.5] if not args.quick else [0.2]
    tune("sparse top-k attention (tuned)",
         [{"k": k, "temperature": t, "blend": b} for k in ks for t in stemps for b in blends],
         lambda c: make(S.SparseTopKScorer(c["k"], c["temperature"], c["blend"])))
    scales = [1.0, 4.0, 16.0] if not args.quick else [4.0]
    tune("multi-head (4 heads, identity projections, tuned)",
         [{"query_scale": sc, "blend": b} for sc in scales for b in blends],
         lambda c: make(S.MultiHeadScorer(identity_multihead(args.dim, 4, c["query_scale"]), c["blend"])))
    alphas = [0.3, 0.5, 0.7, 0.85] if not args.quick else [0.5]
    ptemps = [0.02, 0.05, 0.2] if not args.quick else [0.05]
    tune("personalised PageRank (tuned)",
         [{"alpha": a, "temperature": t, "blend": b} for a in alphas for t in ptemps for b in (0.5, 0.8, 1.0)],
         lambda c: make(S.PersonalizedPageRankScorer(c["alpha"], 30, c["temperature"], c["blend"])))
    for kind in ("sage", "gin", "gat"):
        try:
            propagation_layer(kind, args.dim, mixes[kind][0])
        except ImportError:
            rows.append({"method": f"{kind} (propagation weights)", "params": "layer not available",
                         "recall@10": float("nan"), "mrr@10": float("nan"), "ndcg@10": float("nan")})
            continue
        cfgs = [{"mix": mx, "blend": b} for mx in mixes[kind] for b in layer_blends]
        tune(f"{kind} (propagation weights, tuned)", cfgs,
             lambda c, kind=kind: make(kind, layer=propagation_layer(kind, args.dim, c["mix"]), blend=c["blend"]))

    for r in rows:
        r["ndcg_vs_vector"] = r["ndcg@10"] / base["ndcg@10"] if base["ndcg@10"] > 0 else float("nan")
        r["recall_vs_vector"] = r["recall@10"] / base["recall@10"] if base["recall@10"] > 0 else float("nan")
    if args.json:
        print(json.dumps({"dataset": {"n": data.n, "dim": args.dim, "noise": args.noise,
                                      "homophily": args.homophily, "edges": int(data.edges.shape[1]),
                                      "tune_queries": len(Qt), "test_queries": len(Qs)},
                          "results": rows}, indent=2))
    else:
        print_table(["method", "params", "recall@10", "MRR@10", "nDCG@10", "recall / vector", "nDCG / vector"],
                    [[r["method"], r["params"], r["recall@10"], r["mrr@10"], r["ndcg@10"],
                      f"{r['recall_vs_vector']:.3f}x", f"{r['ndcg_vs_vector']:.3f}x"] for r in rows],
                    title="re-ranking quality on the test split (k=10, candidates=%d, hops=1)" % args.candidates)
        d = rows[3]
        print(f"\ndefault scorer ('attention', {d['params']}) vs HNSW vector-only: "
              f"recall@10 {d['recall@10']:.3f} vs {base['recall@10']:.3f} ({d['recall_vs_vector']:.3f}x), "
              f"nDCG@10 {d['ndcg@10']:.3f} vs {base['ndcg@10']:.3f} ({d['ndcg_vs_vector']:.3f}x)")
    return 0


def main() -> int:
    return run(build_parser().parse_args())
