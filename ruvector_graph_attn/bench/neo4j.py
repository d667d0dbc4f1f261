"""Neo4j connector benchmark: load, batched vs per-seed expansion, re-ranked search, write-back.

``ruvector-graph-attn bench neo4j`` or ``python benchmarks/neo4j_bench.py``.

Starts its own embedded Neo4j 5.26 (``connectors/neo4j/server.py``) unless ``--uri`` (or
``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD``) names a server, then:

1. **load**: ``--nodes`` nodes (default 100K) with ``--dim``-d embeddings (clustered vectors) and
   ``nodes * degree / 2`` random directed relationships (average total degree ``--degree``,
   default 10), through ``Neo4jGraph.load_arrays`` (CREATE, batches of 10K);
2. **expansion**: ``--hops``-hop (default 2, then 1) expansion of ``--seeds`` random seeds (default 1,000)
   in ONE ``expand`` call vs one ``expand`` call per seed; ratio = per-seed total / batched; each
   with features read from the float list property and from the float32 blob copy
   (``blob_property``; the load writes both). The
   batched result is checked to equal the union of the per-seed ones; the in-process
   ``NetworkXGraph`` on the same graph is timed as a reference;
   The ``Neo4jProjection`` (the graph read once into process memory, ``Neo4jGraph.project``)
   is timed on the same batched expansion and checked to equal the server-side result;
3. **re-ranked search** (``GraphReranker``, attention scorer, hops 1, 100 candidates, k 10):
   per-query latency with HNSW candidates + Neo4j expansion, with Neo4j's vector index +
   Neo4j expansion, with HNSW + the Neo4j projection, and with HNSW + NetworkX in process (the
   baseline of the ratios); then the projection against NetworkX **interleaved** (``--rounds``
   rounds of ``--interleaved`` queries, the two paths called alternately on the same query,
   the order swapped every round), with p50/p99 of both and their ratio per round, and a check
   that both return the same ids with bit-identical scores;
4. **write-back**: ``write_embeddings`` / ``write_scores`` / ``write_similarity`` rows per second.

Timings are medians; every figure comes from this one run on this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import numpy as np

from .common import print_table, structured_vectors


def build_parser(prog: str = "neo4j_bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=100_000)
    p.add_argument("--degree", type=float, default=10.0, help="average total degree (in + out)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--seeds", type=int, default=1000, help="seeds of the expansion benchmark")
    p.add_argument("--hops", type=str, default="2,1", help="comma-separated hops of the expansion benchmark")
    p.add_argument("--queries", type=int, default=30, help="queries of the re-ranked search benchmark")
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--writeback", type=int, default=10_000, help="rows per write-back call")
    p.add_argument("--repeat", type=int, default=3, help="repetitions of the batched expansion")
    p.add_argument("--interleaved", type=int, default=200,
                   help="queries per round of the interleaved projection vs NetworkX search timing")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the interleaved timing")
    p.add_argument("--uri", type=str, default=os.environ.get("NEO4J_URI"))
    p.add_argument("--user", type=str, default=os.environ.get("NEO4J_USER", "neo4j"))
    p.add_argument("--heap", type=str, default="2g", help="JVM heap of the embedded server")
    p.add_argument("--pagecache", type=str, default="512m", help="page cache of the embedded server")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=str, default=None, help="also write the results to this JSON file")
    return p


def packstream_impl() -> str:
    """``"rust"`` when the neo4j-rust-ext codec is active in the driver, else ``"python"``."""
    try:
        from neo4j._codec.packstream import v1
    except ImportError:  # pragma: no cover - driver layout changed
        return "unknown"
    return "rust" if getattr(v1, "_rust_unpack", None) is not None else "python"


def _random_edges(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` distinct directed non-loop edges ``[m, 2]`` between 0..n-1."""
    out = np.empty((0, 2), np.int64)
    while out.shape[0] < m:
        need = int((m - out.shape[0]) * 1.1) + 16
        e = rng.integers(0, n, size=(need, 2))
        e = e[e[:, 0] != e[:, 1]]
        out = np.unique(np.concatenate([out, e]), axis=0)
    return out[rng.permutation(out.shape[0])[:m]]


def _median(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _interleaved(base: Any, proj: Any, X: np.ndarray, rng: np.random.Generator, args: argparse.Namespace) -> dict:
    """p50/p99 of ``proj.search`` vs ``base.search`` called alternately on the same queries
    (the first of each pair swapped every round), per round and overall, and whether both
    return the same ids with bit-identical scores and explanations."""
    n, dim = X.shape
    nq = max(1, int(args.interleaved))
    Q = X[rng.choice(n, size=nq, replace=nq > n)] + 0.1 * rng.normal(size=(nq, dim)).astype(np.float32)
    same = True
    for q in Q:
        same &= [h.to_dict() for h in base.search(q, k=args.k)] == [h.to_dict() for h in proj.search(q, k=args.k)]
    rows, rounds = [], []
    all_a: list = []
    all_b: list = []
    for r in range(max(1, int(args.rounds))):
        la, lb = [], []
        order = ((base, la), (proj, lb)) if r % 2 == 0 else ((proj, lb), (base, la))
        for q in Q:
            for rr, lat in order:
                t0 = time.perf_counter()
                rr.search(q, k=args.k)
                lat.append(time.perf_counter() - t0)
        a50, b50 = float(np.median(la)) * 1e3, float(np.median(lb)) * 1e3
        a99, b99 = float(np.percentile(la, 99)) * 1e3, float(np.percentile(lb, 99)) * 1e3
        pair = float(np.median(np.asarray(lb) / np.asarray(la)))
        rounds.append({"networkx_p50_ms": a50, "networkx_p99_ms": a99, "projection_p50_ms": b50,
                       "projection_p99_ms": b99, "p50_ratio": b50 / a50, "p99_ratio": b99 / a99,
                       "median_pair_ratio": pair})
        rows.append([f"round {r + 1} ({'NetworkX first' if r % 2 == 0 else 'projection first'})",
                     a50, a99, b50, b99, b50 / a50, b99 / a99, pair])
        all_a += la
        all_b += lb
    a50, b50 = float(np.median(all_a)) * 1e3, float(np.median(all_b)) * 1e3
    a99, b99 = float(np.percentile(all_a, 99)) * 1e3, float(np.percentile(all_b, 99)) * 1e3
    pair = float(np.median(np.asarray(all_b) / np.asarray(all_a)))
    rows.append([f"all {len(all_a)} pairs", a50, a99, b50, b99, b50 / a50, b99 / a99, pair])
    print_table(["run", "NetworkX p50 ms", "NetworkX p99 ms", "projection p50 ms", "projection p99 ms",
                 "p50 ratio", "p99 ratio", "median of pair ratios"], rows,
                title=f"Re-ranked search, Neo4jProjection vs NetworkX in process, interleaved ({nq} queries per round, "
                      f"same ids and bit-identical scores: {'yes' if same else 'NO'})")
    return {"rounds": rounds, "networkx_p50_ms": a50, "networkx_p99_ms": a99, "projection_p50_ms": b50,
            "projection_p99_ms": b99, "p50_ratio": b50 / a50, "p99_ratio": b99 / a99, "median_pair_ratio": pair,
            "p50_ratio_range": [min(x["p50_ratio"] for x in rounds), max(x["p50_ratio"] for x in rounds)],
            "identical_results": bool(same)}


def run(args: argparse.Namespace) -> int:
    import networkx as nx

    from ..connectors.neo4j import Neo4jGraph, Neo4jVectorIndex
    from ..connectors.neo4j.server import Neo4jServer
    from ..connectors.networkx import NetworkXGraph
    from ..index.hnsw import HNSWIndex
    from ..rerank.pipeline import GraphReranker

    rng = np.random.default_rng(args.seed)
    n, dim = int(args.nodes), int(args.dim)
    m = int(round(n * args.degree / 2))
    results: dict[str, Any] = {"nodes": n, "relationships": m, "dim": dim, "seeds": args.seeds,
                               "hops": args.hops, "machine": platform.machine(), "cpus": os.cpu_count(),
                               "packstream": packstream_impl()}
    print(f"neo4j driver packstream codec: {results['packstream']}"
          + ("" if results["packstream"] == "rust" else " (pip install neo4j-rust-ext decodes ~5x faster)"))
    srv = None
    if args.uri:
        uri, auth = args.uri, (args.user, os.environ.get("NEO4J_PASSWORD", ""))
        print(f"using the Neo4j server at {uri}")
    else:
        t0 = time.perf_counter()
        srv = Neo4jServer(heap=args.heap, pagecache=args.pagecache, start_timeout=600).start()
        uri, auth = srv.uri, srv.auth
        results["server_start_s"] = time.perf_counter() - t0
        print(f"embedded Neo4j 5.26 started in {results['server_start_s']:.1f} s at {uri}", flush=True)
    label = f"Bench{int(time.time())}"
    try:
        g = Neo4jGraph(uri, auth=auth, label=label, timeout=600.0, direction="both")
        gb = Neo4jGraph(uri, auth=auth, label=label, timeout=600.0, direction="both", blob_property="embedding_f32")
        X = structured_vectors(n, dim, seed=args.seed)
        ids = np.arange(n, dtype=np.int64)
        edges = _random_edges(n, m, rng)

        # 1. load ------------------------------------------------------------------------------
        t0 = time.perf_counter()
        gb.load_arrays(ids, X, edges=edges, rel_type="LINKS", batch_size=10_000, merge=False)  # list + blob
        results["load_s"] = time.perf_counter() - t0
        print(f"loaded {n} nodes, {m} relationships in {results['load_s']:.1f} s", flush=True)
        G = nx.DiGraph()
        G.add_nodes_from(range(n))
        G.add_edges_from(edges.tolist())
        for i in range(n):
            G.nodes[i]["embedding"] = X[i]
        ref = NetworkXGraph(G)
        ref.refresh()
        t0 = time.perf_counter()
        proj = gb.project()
        results["projection_build_s"] = time.perf_counter() - t0
        results["projection_stats"] = dict(proj.stats)
        print(f"Neo4jProjection built in {results['projection_build_s']:.1f} s ({proj.stats})", flush=True)

        # 2. expansion: batched vs per seed -------------------------------------------------------
        seeds = rng.choice(n, size=min(args.seeds, n), replace=False).astype(np.int64)
        for hops in [int(h) for h in str(args.hops).split(",") if h.strip()]:
            rows = []
            res: dict = {}
            t_ref = None
            for enc, graph in (("float list", g), ("float32 blob", gb)):
                graph.expand(seeds[:10], hops=hops)          # warm the query plan
                sg = None

                def batched():
                    nonlocal sg
                    sg = graph.expand(seeds, hops=hops)

                t_batch = _median(batched, args.repeat)
                t0 = time.perf_counter()
                union_nodes: set = set()
                union_edges: set = set()
                for s in seeds.tolist():
                    one = graph.expand([s], hops=hops)
                    union_nodes.update(one.node_ids)
                    nid = one.node_ids
                    union_edges.update((nid[a], nid[b]) for a, b in one.edge_index.T.tolist())
                t_per_seed = time.perf_counter() - t0
                b_edges = {(sg.node_ids[a], sg.node_ids[b]) for a, b in sg.edge_index.T.tolist()}
                same = set(sg.node_ids) == union_nodes and b_edges == union_edges
                t_ref = t_batch if t_ref is None else t_ref
                rows.append([f"Neo4j ({enc}): 1 expand() of {len(seeds)} seeds", t_batch, sg.num_nodes,
                             sg.num_edges, t_batch / t_ref, 1.0, "yes" if same else "NO"])
                rows.append([f"Neo4j ({enc}): {len(seeds)} expand() calls, one per seed", t_per_seed,
                             len(union_nodes), len(union_edges), t_per_seed / t_ref, t_per_seed / t_batch, ""])
                res[enc] = dict(batched_s=t_batch, per_seed_s=t_per_seed, ratio=t_per_seed / t_batch,
                                nodes=sg.num_nodes, edges=sg.num_edges, union_equal=same)
            t_nx = _median(lambda: ref.expand(seeds, hops=hops, direction="both"), args.repeat)
            rows.append(["NetworkX in process: 1 expand() (reference)", t_nx, sg.num_nodes, sg.num_edges,
                         t_nx / t_ref, "", ""])
            res["networkx_s"] = t_nx
            proj.expand(seeds[:10], hops=hops)
            psg = None

            def projected():
                nonlocal psg
                psg = proj.expand(seeds, hops=hops)

            t_proj = _median(projected, args.repeat)
            p_edges = {(psg.node_ids[a], psg.node_ids[b]) for a, b in psg.edge_index.T.tolist()}
            s_edges = {(sg.node_ids[a], sg.node_ids[b]) for a, b in sg.edge_index.T.tolist()}
            same_proj = set(psg.node_ids) == set(sg.node_ids) and p_edges == s_edges
            rows.append(["Neo4jProjection in process: 1 expand()", t_proj, psg.num_nodes, psg.num_edges,
                         t_proj / t_ref, "", "== server: " + ("yes" if same_proj else "NO")])
            res["projection_s"] = t_proj
            res["projection_vs_networkx"] = t_proj / t_nx
            res["projection_equals_server"] = same_proj
            results[f"expand_{hops}hop"] = res
            print_table(["case", "time (s)", "nodes", "edges", "vs batched list", "per-seed / batched",
                         "batched == union"], rows, title=f"Expansion, {hops} hops")

        # 3. re-ranked search -------------------------------------------------------------------
        t0 = time.perf_counter()
        hidx = HNSWIndex(dim=dim, space="cosine", M=16, ef_construction=200, max_elements=n)
        hidx.add(ids, X)
        t_hnsw_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        nidx = Neo4jVectorIndex.create(g, name=f"{label}_vec", space="cosine", wait=1800)
        t_vec_build = time.perf_counter() - t0
        results.update(hnsw_build_s=t_hnsw_build, neo4j_vector_index_build_s=t_vec_build)
        Q = X[rng.choice(n, size=args.queries, replace=False)] + 0.1 * rng.normal(size=(args.queries, dim)).astype(np.float32)
        cfg = dict(hops=1, candidates=args.candidates, scorer="attention")
        cases = [("HNSW + NetworkX in process (baseline)", GraphReranker(index=hidx, graph=ref, **cfg)),
                 ("HNSW + Neo4jProjection in process", GraphReranker(index=hidx, graph=proj, **cfg)),
                 ("HNSW candidates + Neo4j expansion (float list)", GraphReranker(index=hidx, graph=g, **cfg)),
                 ("HNSW candidates + Neo4j expansion (float32 blob)", GraphReranker(index=hidx, graph=gb, **cfg)),
                 ("Neo4j vector index + Neo4j expansion (float32 blob)", GraphReranker(index=nidx, graph=gb, **cfg))]
        rows = []
        base = None
        agree = {}
        ref_hits = [[h.id for h in rr] for rr in cases[0][1].search_batch(Q, k=args.k)]
        for name, rr in cases:
            rr.search(Q[0], k=args.k)                  # warm-up (JIT, query plans)
            lat = []
            for q in Q:
                t0 = time.perf_counter()
                rr.search(q, k=args.k)
                lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hits = rr.search_batch(Q, k=args.k)
            t_b = time.perf_counter() - t0
            p50 = float(np.median(lat)) * 1e3
            p95 = float(np.percentile(lat, 95)) * 1e3
            base = p50 if base is None else base
            overlap = float(np.mean([len(set(a) & {h.id for h in b}) / args.k for a, b in zip(ref_hits, hits)]))
            agree[name] = overlap
            rows.append([name, p50, p95, t_b / len(Q) * 1e3, p50 / base, overlap])
            results[f"search_{name}"] = {"p50_ms": p50, "p95_ms": p95, "batch_ms_per_query": t_b / len(Q) * 1e3,
                                         "top_k_overlap_with_baseline": overlap}
        print_table(["pipeline", "p50 ms/query", "p95 ms/query", "batch ms/query", "p50 vs baseline",
                     f"top-{args.k} overlap"], rows,
                    title=f"Re-ranked search: {args.queries} queries, {args.candidates} candidates, hops 1, k {args.k} "
                          f"(HNSW build {t_hnsw_build:.1f} s, Neo4j vector index build {t_vec_build:.1f} s)")

        # 3b. projection vs NetworkX, interleaved ---------------------------------------------------
        results["search_interleaved"] = _interleaved(cases[0][1], cases[1][1], X, rng, args)

        # 4. write-back ---------------------------------------------------------------------------
        w = min(args.writeback, n)
        wid = ids[:w]
        vec = rng.normal(size=(w, dim)).astype(np.float32)
        wrows = []
        t0 = time.perf_counter()
        g.write_embeddings(wid, vec, property="bench_vec", batch_size=5000)
        t = time.perf_counter() - t0
        wrows.append([f"write_embeddings ({dim}-d)", w, t, w / t])
        t0 = time.perf_counter()
        g.write_embeddings(wid, vec, property="bench_vec", batch_size=5000)
        t = time.perf_counter() - t0
        wrows.append(["write_embeddings again (idempotent rerun)", w, t, w / t])
        t0 = time.perf_counter()
        gb.write_embeddings(wid, vec, batch_size=5000)
        t = time.perf_counter() - t0
        wrows.append(["write_embeddings of the feature property (list + blob)", w, t, w / t])
        t0 = time.perf_counter()
        g.write_scores({int(i): float(s) for i, s in zip(wid, rng.random(w))}, property="bench_score")
        t = time.perf_counter() - t0
        wrows.append(["write_scores", w, t, w / t])
        trip = [(int(a), int(b), float(s)) for a, b, s in zip(wid, (wid + 1) % n, rng.random(w))]
        t0 = time.perf_counter()
        g.write_similarity(trip, rel_type="BENCH_SIMILAR")
        t = time.perf_counter() - t0
        wrows.append(["write_similarity (MERGE relationships)", w, t, w / t])
        for r in wrows:
            results[f"writeback_{r[0]}"] = {"rows": r[1], "s": r[2], "rows_per_s": r[3]}
        print_table(["call (one transaction each)", "rows", "time (s)", "rows/s"], wrows, title="Write-back")
        nidx.drop()
    finally:
        if srv is not None:
            srv.stop()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
