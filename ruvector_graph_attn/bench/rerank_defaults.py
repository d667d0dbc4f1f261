"""Zero-shot defaults across graphs: vector-only, the naive graph re-rank, the former fixed
default and the package default, on four retrieval benchmarks with different graph shapes.

Benchmarks (every one: 100 HNSW candidates, cosine, M 16; tuning and test query splits; the
query node itself is removed from every ranking; nDCG@10, recall@10, MRR@10):

- ``debian``: dependency retrieval on the Debian package archive (``bench rerank-real``'s task
  (a): 5% of the packages with dependencies held out, their outgoing ``Depends`` edges removed,
  query = the synopsis embedding, relevant = the direct dependencies);
- ``latent``: the generated citation benchmark of ``bench rerank-quality`` (fresh latent
  queries; relevant = the 10 latent nearest items);
- ``taxonomy``: parent retrieval on a generated taxonomy
  (:func:`ruvector_graph_attn.rerank.synthetic.taxonomy_graph`, text-embedding-like features:
  children near their parent);
- ``pyclasses``: parent retrieval on a real taxonomy, the class hierarchy of the installed
  Python standard library (:mod:`ruvector_graph_attn.datasets.pyclasses`; text = class name and
  the first line of its own docstring, embedded with all-MiniLM-L6-v2).

Parent retrieval: a fraction of the nodes that have a parent are held out, their ``child ->
parent`` edges removed from the graph every method sees; the query is the child's embedding,
the relevant items its parents. The held-out nodes are split once, a third for tuning, two
thirds for test.

Every benchmark also gets the neighbour vote (``scorer="vote"``, :func:`vote_rows`): alias
defaults, direction ``"out"`` where the relevant items are stored out-neighbours, and tuned.

``--trained`` adds, on the benchmarks with held-out nodes, the trained rows of ``bench
rerank-real`` (:func:`~ruvector_graph_attn.bench.rerank_real.trained_rows`): a DirGNN layer
trained with RerankerTrainer on the (node, out-neighbour) pairs of nodes outside the held-out
set, with and without mined hard negatives and graph candidates, and its ensemble with the
package default's attention scorer (``--skip-dirgnn`` leaves these out); and the vote with a
query map fitted by VoteTrainer on the same pairs.
"""
from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np

from .common import print_table

K = 10
BENCHMARKS = ("debian", "latent", "taxonomy", "pyclasses")
#: the fixed default before the per-graph rule (attention, T 0.2, blend 0.8, both directions)
OLD_DEFAULT = {"temperature": 0.2, "blend": 0.8}


def build_parser(prog: str = "rerank_defaults") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmarks", nargs="*", default=list(BENCHMARKS), choices=BENCHMARKS)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--max-tune-queries", type=int, default=300)
    p.add_argument("--max-test-queries", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--taxonomy-n", type=int, default=20000)
    p.add_argument("--latent-n", type=int, default=20000)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--grid", action="store_true", help="also evaluate a grid of settings on the tuning split")
    p.add_argument("--graph-candidates", action="store_true",
                   help="also measure graph_candidates (candidate recall and nDCG@10)")
    p.add_argument("--poincare", action="store_true",
                   help="also re-rank the pyclasses benchmark with Poincare positions (PoincareScorer)")
    p.add_argument("--poincare-dim", type=int, default=10)
    p.add_argument("--poincare-epochs", type=int, default=300)
    p.add_argument("--trained", action="store_true",
                   help="also the trained re-rankers of bench rerank-real (DirGNN layer trained with RerankerTrainer "
                        "on (node, parent) pairs of the non-held-out nodes; and its ensemble with the attention "
                        "scorer) on the parent-retrieval benchmarks")
    p.add_argument("--skip-dirgnn", action="store_true",
                   help="with --trained: leave out the DirGNN-trained rows (the slow part), keep the trained vote")
    p.add_argument("--train-epochs", type=int, default=4)
    p.add_argument("--train-queries", type=int, default=6000,
                   help="nodes outside the held-out set whose out-edges are the training pairs")
    p.add_argument("--json", action="store_true")
    return p


# ---------------------------------------------------------------------------- tasks
class Bench:
    """One benchmark: index, graph (GraphSource), query vectors and relevant sets per split."""

    def __init__(self, name: str, X: np.ndarray, edges: np.ndarray, index: Any, queries: dict, relevant: dict,
                 exclude: dict, held: Optional[np.ndarray] = None, n_cand: int = 100):
        from ..connectors import NetworkXGraph
        import networkx as nx

        self.name, self.X, self.edges, self.index = name, X, edges, index
        self.queries, self.relevant, self.exclude = queries, relevant, exclude
        # what the trained rows of bench rerank-real read (training_pairs, train_dirgnn):
        # the graph the methods see, every held-out node, the node count, the candidate count
        self.ei, self.held, self.n, self.n_cand = edges, held, X.shape[0], n_cand
        G = nx.DiGraph()
        G.add_nodes_from((i, {"embedding": X[i]}) for i in range(X.shape[0]))
        G.add_edges_from(zip(edges[0].tolist(), edges[1].tolist()))
        self.graph = NetworkXGraph(G)
        self.graph.refresh()
        self._naive_means = None

    def candidates(self, qn: np.ndarray) -> np.ndarray:
        """``[B, n_cand]`` HNSW hits of the nodes ``qn``, each node itself removed."""
        from .rerank_real import vector_candidates

        return vector_candidates(self.index, self.X, qn, self.n_cand)

    def rank(self, split: str, n_cand: int, **kw) -> list:
        import ruvector_graph_attn as rga

        rr = rga.GraphReranker(self.index, self.graph, candidates=n_cand + 1, **kw)
        ids, _ = rr.rerank_arrays(self.queries[split], K + 1)
        ex = self.exclude[split]
        return [r[r != q][:K] if q is not None else r[:K] for r, q in zip(ids, ex)]

    def candidate_sets(self, split: str, n_cand: int, **kw) -> list:
        """The candidate set each query is scored on (index hits, plus graph candidates)."""
        import ruvector_graph_attn as rga
        from .rerank_real import reranker_candidate_sets

        rr = rga.GraphReranker(self.index, self.graph, candidates=n_cand + 1, **kw)
        return reranker_candidate_sets(rr, self.queries[split], self.exclude[split])

    def naive(self, split: str, n_cand: int, cand_lists: Optional[list] = None) -> list:
        """``cos(q, x_c) + 0.5 * mean_j cos(q, x_j)`` over the candidate's neighbours (both
        directions) on the HNSW candidates (or on ``cand_lists``)."""
        Xn = self.X / np.linalg.norm(self.X, axis=1, keepdims=True)
        if self._naive_means is None:
            n = Xn.shape[0]
            und = np.concatenate([self.edges, self.edges[::-1]], axis=1)
            deg = np.bincount(und[0], minlength=n).astype(np.float64)
            M = np.zeros((n, Xn.shape[1]))
            np.add.at(M, und[0], Xn[und[1]])
            self._naive_means = M / np.maximum(deg, 1.0)[:, None]
        M = self._naive_means
        Q = self.queries[split]
        Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        if cand_lists is None:
            ids, _ = self.index.search(Q, n_cand + 1, ef=max(int(self.index.ef), n_cand + 1))
            cand_lists = list(np.asarray(ids, np.int64))
        out = []
        for b, q in enumerate(self.exclude[split]):
            c = np.asarray(cand_lists[b], np.int64)
            s = Xn[c] @ Qn[b] + 0.5 * (M[c] @ Qn[b])
            r = c[np.argsort(-s, kind="stable")]
            out.append((r[r != q] if q is not None else r)[:K])
        return out

    def metrics(self, split: str, ranked: list) -> dict:
        from ..rerank.metrics import ranking_metrics

        return ranking_metrics(ranked, self.relevant[split], K)

    def cand_recall(self, split: str, cands: list) -> float:
        return float(np.mean([np.isin(r, c).sum() / len(r) for r, c in zip(self.relevant[split], cands)]))


def _index(X: np.ndarray, ef_construction: int = 200):
    import ruvector_graph_attn as rga

    index = rga.HNSWIndex(dim=X.shape[1], space="cosine", M=16, ef_construction=ef_construction,
                          max_elements=X.shape[0])
    index.add(np.arange(X.shape[0]), X)
    index.ef = 200
    return index


def hierarchy_bench(name: str, X: np.ndarray, edge_index: np.ndarray, holdout: float, seed: int,
                    max_tune: int, max_test: int, n_cand: int = 100) -> Bench:
    """Parent (or dependency) retrieval: held-out nodes lose their out-edges; relevant = their
    out-neighbours in the full graph (module docstring)."""
    from .rerank_real import split_queries

    n = X.shape[0]
    g = SimpleNamespace(num_nodes=n, edge_index=edge_index)
    tune, test = split_queries(g, holdout, seed)
    held = np.concatenate([tune, test])
    if max_tune:
        tune = tune[:max_tune]
    if max_test:
        test = test[:max_test]
    keep = ~np.isin(edge_index[0], held)
    ei = np.ascontiguousarray(edge_index[:, keep])
    rel = {s: [edge_index[1, edge_index[0] == p] for p in qs.tolist()] for s, qs in (("tune", tune), ("test", test))}
    return Bench(name, X, ei, _index(X), {"tune": X[tune], "test": X[test]}, rel,
                 {"tune": tune.tolist(), "test": test.tolist()}, held=held, n_cand=n_cand)


def load_bench(name: str, args) -> Bench:
    if name == "debian":
        from ..datasets.debian import default_package_lists, dependency_graph, load_records
        from .embeddings import embed_texts

        g = dependency_graph(load_records(default_package_lists()))
        X = embed_texts(g.texts, cache_dir=args.cache_dir)
        return hierarchy_bench(name, X, g.edge_index, 0.05, args.seed, args.max_tune_queries, args.max_test_queries,
                               args.candidates)
    if name == "pyclasses":
        from ..datasets.pyclasses import stdlib_class_hierarchy
        from .embeddings import embed_texts

        h = stdlib_class_hierarchy()
        X = embed_texts(h.texts, cache_dir=args.cache_dir)
        return hierarchy_bench(name, X, h.edge_index, 0.25, args.seed, args.max_tune_queries, args.max_test_queries,
                               args.candidates)
    if name == "taxonomy":
        from ..rerank.synthetic import taxonomy_graph

        d = taxonomy_graph(n=args.taxonomy_n, dim=64, seed=args.seed)
        return hierarchy_bench(name, d.x, d.edges, 0.05, args.seed, args.max_tune_queries, args.max_test_queries,
                               args.candidates)
    if name == "latent":
        from ..rerank.synthetic import latent_citation_graph

        d = latent_citation_graph(n=args.latent_n, dim=64, noise=0.2, homophily=0.9, degree=10, seed=args.seed)
        Qt, Rt, _ = d.queries(min(args.max_tune_queries or 300, 300), K, seed=args.seed + 101)
        Qs, Rs, _ = d.queries(min(args.max_test_queries or 1000, 1000), K, seed=args.seed + 202)
        return Bench(name, d.x, d.edges, _index(d.x), {"tune": Qt, "test": Qs}, {"tune": list(Rt), "test": list(Rs)},
                     {"tune": [None] * len(Qt), "test": [None] * len(Qs)})
    raise ValueError(name)


def poincare_rows(b: Bench, args, add) -> None:
    """Poincare positions trained on the transitive closure of the graph the methods see (the
    held-out nodes' parent edges removed), then :class:`PoincareScorer` (relation "ancestor")
    with its parameters chosen on the tuning split."""
    from ..rerank.hierarchy import PoincareScorer
    from ..training.poincare import PoincareEmbedding, transitive_closure

    n = b.X.shape[0]
    pairs = transitive_closure(b.edges, n)
    emb = PoincareEmbedding(n, dim=args.poincare_dim, lr=0.03, negatives=50, burn_in_epochs=20,
                            burn_in_factor=0.01, seed=args.seed)
    t0 = time.perf_counter()
    emb.fit(pairs, epochs=args.poincare_epochs)
    secs = time.perf_counter() - t0
    rec = emb.evaluate(pairs)
    ids = np.unique(pairs)                   # only nodes the closure placed have a position
    pos = emb.theta[ids]
    best, cfg = -1.0, None
    for m in (3, 5, 10):
        for t in (0.05, 0.2):
            for alpha in (0.0, 2.0, 10.0):
                for bl in (0.1, 0.3, 0.5):
                    sc = PoincareScorer(ids, pos, "ancestor", m, t, alpha, bl)
                    v = b.metrics("tune", b.rank("tune", args.candidates, scorer=sc))["ndcg@10"]
                    if v > best:
                        best, cfg = v, (m, t, alpha, bl)
    m, t, alpha, bl = cfg
    info = {"closure_pairs": int(pairs.shape[0]), "train_s": secs, "mean_rank": rec["mean_rank"],
            "map": rec["map"], "tune_ndcg@10": best}
    add("PoincareScorer (ancestor), tuned",
        f"dim={args.poincare_dim}, anchors={m}, T={t}, alpha={alpha}, blend={bl}",
        b.rank("test", args.candidates, scorer=PoincareScorer(ids, pos, "ancestor", m, t, alpha, bl)), info)
    # on top of the package default: base = the auto attention scorer, with its graph candidates
    from ..rerank.auto import AUTO_GRAPH_CANDIDATES
    from ..rerank.scorers import AttentionScorer
    import ruvector_graph_attn as rga

    rr = rga.GraphReranker(b.index, b.graph)
    rr._resolve_auto()
    base = AttentionScorer(rr.temperature, rr.blend)
    best, cfg = -1.0, None
    for m in (5, 10):
        for alpha in (0.0, 2.0):
            for bl in (0.005, 0.01, 0.02, 0.05):
                sc = PoincareScorer(ids, pos, "ancestor", m, 0.2, alpha, bl, base=base)
                v = b.metrics("tune", b.rank("tune", args.candidates, scorer=sc,
                                             graph_candidates=AUTO_GRAPH_CANDIDATES))["ndcg@10"]
                if v > best:
                    best, cfg = v, (m, alpha, bl)
    m, alpha, bl = cfg
    sc = PoincareScorer(ids, pos, "ancestor", m, 0.2, alpha, bl, base=base)
    add("package default + Poincare term (base=attention)",
        f"anchors={m}, T=0.2, alpha={alpha}, blend={bl}, graph_candidates={AUTO_GRAPH_CANDIDATES}",
        b.rank("test", args.candidates, scorer=sc, graph_candidates=AUTO_GRAPH_CANDIDATES), {"tune_ndcg@10": best})


#: the vote's zero-shot grid on each benchmark (voters and graph candidates: the alias's)
VOTE_GRID = [{"temperature": t, "direction": d} for t in (0.1, 0.2) for d in ("out", "in", "both")]


def vote_rows(b: Bench, args, add) -> None:
    """The neighbour vote (:class:`~ruvector_graph_attn.rerank.vote.VoteScorer`, alias
    ``"vote"``: every node a voter reaches is a candidate), zero-shot: with every alias default
    (direction ``"both"``, the re-ranker's default); on the benchmarks with held-out nodes also
    with direction ``"out"`` (their relevant items are the held-out node's stored out-neighbours
    -- dependencies, parents -- so the voters' out-edges point at them); and with temperature and
    direction chosen on the tuning split (:data:`VOTE_GRID`). Each row with its candidate-set
    recall and mean size on the test split."""
    from ..rerank.vote import VOTE_TEMPERATURE, VOTE_VOTERS

    n = args.candidates

    def row(method, params, extra=None, **kw):
        cs = b.candidate_sets("test", n, scorer="vote", **kw)
        add(method, params, b.rank("test", n, scorer="vote", **kw),
            {**(extra or {}), "cand_recall": b.cand_recall("test", cs),
             "cand_size": float(np.mean([len(c) for c in cs]))})

    base = f"T={VOTE_TEMPERATURE}, voters={VOTE_VOTERS}, graph_candidates={VOTE_VOTERS}"
    row("vote (alias defaults)", f"{base}, both")
    if b.held is not None:
        row("vote (alias defaults, direction=out)", f"{base}, out", direction="out")
    tune = {i: b.metrics("tune", b.rank("tune", n, scorer="vote", **c))["ndcg@10"] for i, c in enumerate(VOTE_GRID)}
    i = max(tune, key=lambda i: (tune[i], -i))
    c = VOTE_GRID[i]
    row("vote (tuned)", f"T={c['temperature']}, {c['direction']}, voters={VOTE_VOTERS}", {"tune_ndcg@10": tune[i]},
        **c)


def trained_bench_rows(b: Bench, args, add) -> None:
    """The trained rows of ``bench rerank-real`` (:func:`~.rerank_real.trained_rows`: the
    DirGNN residual layer trained with RerankerTrainer on (node, out-neighbour) pairs of nodes
    outside the held-out set, with and without mined hard negatives, scored with and without
    graph candidates; and its ensemble with the package default's attention scorer), every
    parameter chosen on the tuning split."""
    from .rerank_real import default_attention, trained_rows

    def add_row(method, params, ranked, tune_ndcg=None):
        add(method, params, ranked, None if tune_ndcg is None else {"tune_ndcg@10": tune_ndcg})

    trained_rows(args, b, b.X, lambda split, **kw: b.rank(split, args.candidates, **kw), add_row,
                 lambda split, ranked: b.metrics(split, ranked), attention=default_attention(b.index, b.graph))


# ---------------------------------------------------------------------------- run
def evaluate(b: Bench, args, out: dict) -> list:
    """Rows of one benchmark on the test split (and the grid on the tuning split)."""
    import ruvector_graph_attn as rga

    n = args.candidates
    rows = []

    def add(method, params, ranked, extra=None):
        m = b.metrics("test", ranked)
        rows.append({"benchmark": b.name, "method": method, "params": params, **m, **(extra or {})})
        if not args.json:
            print(f"  {b.name:<10} {method:<44} {params:<28} nDCG@10 {m['ndcg@10']:.4f}", flush=True)

    hnsw = b.candidate_sets("test", n, scorer="vector", graph_candidates=0)
    add("HNSW vector-only", f"{n} candidates", [r[:K] for r in b.rank("test", n, scorer="vector", graph_candidates=0)],
        {"cand_recall": b.cand_recall("test", hnsw)})
    add("naive: cos + 0.5 * mean neighbour cos", "both directions", b.naive("test", n))
    add("attention, former default", "T=0.2, blend=0.8, no graph candidates",
        b.rank("test", n, graph_candidates=0, **OLD_DEFAULT))
    rr = rga.GraphReranker(b.index, b.graph)
    rr._resolve_auto()
    out.setdefault("statistics", {})[b.name] = rr.auto_statistics
    auto = f"auto: T={rr.temperature}, blend={rr.blend}"
    add("attention, auto T/blend, no graph candidates", auto, b.rank("test", n, graph_candidates=0))
    gc = b.candidate_sets("test", n, scorer="attention")
    add("naive on the same graph candidates", f"graph_candidates={rr.graph_candidates}", b.naive("test", n, gc))
    add("attention, package default", f"{auto}, graph_candidates={rr.graph_candidates}", b.rank("test", n),
        {"cand_recall": b.cand_recall("test", gc), "cand_size": float(np.mean([len(c) for c in gc]))})
    if args.graph_candidates:
        for m in (10,):
            gc = b.candidate_sets("test", n, scorer="attention", graph_candidates=m)
            add(f"attention, auto T/blend + graph_candidates={m}", auto, b.rank("test", n, graph_candidates=m),
                {"cand_recall": b.cand_recall("test", gc), "cand_size": float(np.mean([len(c) for c in gc]))})
    vote_rows(b, args, add)
    if args.trained and b.held is not None:
        trained_bench_rows(b, args, add)
    if args.poincare and b.name == "pyclasses":
        poincare_rows(b, args, add)
    vec, naive = rows[0]["ndcg@10"], rows[1]["ndcg@10"]
    for r in rows:
        r["ndcg_vs_vector"] = r["ndcg@10"] / max(vec, 1e-12)
        r["ndcg_vs_naive"] = r["ndcg@10"] / max(naive, 1e-12)
    if args.grid:
        from ..rerank.scorers import AttentionScorer

        grid = []
        for ctx in ("pooled", "mean"):
            for t in (0.05, 0.1, 0.2, 1.0):
                for bl in (0.5, 0.8, 0.9, 1.0):
                    v = b.metrics("tune", b.rank("tune", n, scorer=AttentionScorer(t, bl, ctx)))["ndcg@10"]
                    grid.append({"context": ctx, "temperature": t, "blend": bl, "tune_ndcg@10": v})
        out.setdefault("grid", {})[b.name] = grid
    return rows


def run(args: argparse.Namespace) -> int:
    out: dict = {"rows": []}
    for name in args.benchmarks:
        t0 = time.perf_counter()
        b = load_bench(name, args)
        if not args.json:
            print(f"{name}: {b.X.shape[0]} nodes, {b.edges.shape[1]} edges, {len(b.relevant['tune'])} tuning / "
                  f"{len(b.relevant['test'])} test queries (setup {time.perf_counter() - t0:.0f}s)", flush=True)
        out["rows"].extend(evaluate(b, args, out))
    if args.json:
        print(json.dumps(out, indent=2, default=float))
        return 0
    print_table(["benchmark", "method", "params", "recall@10", "MRR@10", "nDCG@10", "/ vector", "/ naive",
                 "tune nDCG", "cand. recall", "cand. size"],
                [[r["benchmark"], r["method"], r["params"], r["recall@10"], r["mrr@10"], r["ndcg@10"],
                  f"{r['ndcg_vs_vector']:.2f}x", f"{r['ndcg_vs_naive']:.2f}x", r.get("tune_ndcg@10", ""),
                  r.get("cand_recall", ""), "" if "cand_size" not in r else f"{r['cand_size']:.0f}"]
                 for r in out["rows"]], title="test split, k = 10")
    for name, st in out.get("statistics", {}).items():
        if st:
            print(f"  {name}: degree mean {st['degree_mean']:.2f}, cv {st['degree_cv']:.2f}, "
                  f"homophily {st['homophily']:.3f} (edge cos {st['edge_cosine']:.3f}, random {st['random_cosine']:.3f})")
    return 0


def main() -> int:
    return run(build_parser().parse_args())
