"""Beyond one machine: Dask batch re-ranking, out-of-core layer-wise inference, int8 features.

(a) **Batch re-ranking on Dask**: ``--queries`` queries re-ranked (attention scorer, k=10,
    100 candidates) over a latent citation graph of ``--n`` nodes (an HNSW index and an
    ``MmapGraph`` on disk), in process with ``GraphReranker.search_batch`` (same blocks of
    ``--batch`` queries, same graph files) and with ``rga.distributed.rerank`` on a
    ``LocalCluster`` of 1 and of 2 worker processes (one thread each), all in the same run.
    The per-worker load (plugin) is timed apart; the timed job is a second, warm run.
    The in-process baseline is timed right before and right after each Dask run (their mean is
    the ratio's baseline). Overhead per block = (Dask time * workers - in-process time) / blocks:
    the extra worker-seconds each task costs.
(b) **Out-of-core 2-layer GraphSAGE** (64 -> 64 -> 64, mean): a uniform random graph of
    ``E`` edges and ``E / 10`` nodes is generated in chunks straight into an ``MmapCSR`` and a
    float32 ``FeatureStore`` (64-d), then ``infer_layerwise`` runs over node blocks. Each phase
    runs in a fresh process; its peak RSS (``ru_maxrss``: includes the pages of mapped
    files it touched) and wall time are reported. Data goes to ``--workdir`` and is deleted.
(c) **int8 vs float32 feature store**: bytes of the two stores, and the overlap of the
    re-ranked top-10 (attention scorer) over the graph with int8 features against the same
    graph with float32 features.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RSS_GOAL_GIB = 8.0


def build_parser(prog: str = "distributed_bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="a,b,c", help="which parts to run: a, b, c (comma separated)")
    p.add_argument("--n", type=int, default=20_000, help="(a, c) graph nodes")
    p.add_argument("--dim", type=int, default=64, help="(a, c) vector dimension")
    p.add_argument("--queries", type=int, default=4000, help="(a) queries re-ranked")
    p.add_argument("--batch", type=int, default=250, help="(a) queries per block / task")
    p.add_argument("--edges", default="1e6,1e7,1e8", help="(b) edge counts (nodes = edges / 10)")
    p.add_argument("--chunk-nodes", type=int, default=131_072, help="(b) nodes per inference block")
    p.add_argument("--workdir", default=None, help="folder for generated data (default: a temp folder)")
    p.add_argument("--json", action="store_true")
    return p


# ---------------------------------------------------------------------------- (b) helpers
def _edge_chunks(n: int, m: int, seed: int, chunk: int = 1 << 23):
    """Deterministic chunks of a uniform random multigraph: the same edges on every call."""
    def chunks():
        for i, a in enumerate(range(0, m, chunk)):
            c = min(chunk, m - a)
            rng = np.random.default_rng([seed, i])
            yield rng.integers(0, n, c, dtype=np.int64), rng.integers(0, n, c, dtype=np.int64)
    return chunks


def _peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20   # Linux: KiB


def ooc_generate(root: str, n: int, m: int, dim: int = 64, seed: int = 0) -> dict:
    """Phase 1 of (b), in its own process: features and CSR written in chunks."""
    from ruvector_graph_attn.store import FeatureStore, MmapCSR

    t0 = time.perf_counter()
    st = FeatureStore.create(Path(root) / "x", n, dim, dtype="float32", overwrite=True)
    step = 1 << 20
    for i, a in enumerate(range(0, n, step)):
        rng = np.random.default_rng([seed, 10 ** 6 + i])
        st.write(a, rng.standard_normal((min(step, n - a), dim), dtype=np.float32))
    st.finish()
    t1 = time.perf_counter()
    MmapCSR.build(Path(root) / "csr", _edge_chunks(n, m, seed), n, overwrite=True)
    t2 = time.perf_counter()
    return {"features_s": t1 - t0, "csr_s": t2 - t1, "peak_rss_gib": _peak_rss_gib()}


def ooc_infer(root: str, chunk_nodes: int, dim: int = 64) -> dict:
    """Phase 2 of (b), in its own process: 2-layer SAGE over the mapped files."""
    import ruvector_graph_attn as rga
    from ruvector_graph_attn.distributed.layerwise import infer_layerwise
    from ruvector_graph_attn.store import FeatureStore, MmapCSR

    G = rga.graph
    model = G.GraphSequential([G.SAGEConv(dim, 64, rng=1), rga.nn.ReLU(), G.SAGEConv(64, 64, rng=2)])
    x = FeatureStore.open(Path(root) / "x")
    csr = MmapCSR.open(Path(root) / "csr", check=False)
    # compile the kernels on a tiny graph first so the timing is the inference itself
    infer_layerwise(model, np.ones((4, dim), np.float32), np.array([[0, 1], [1, 2]]), chunk_nodes=2,
                    out_dir=Path(root) / "warm")
    t0 = time.perf_counter()
    out = infer_layerwise(model, x, csr, chunk_nodes=chunk_nodes, out_dir=Path(root) / "out")
    t1 = time.perf_counter()
    probe = out[np.array([0, out.num_rows - 1])]
    return {"infer_s": t1 - t0, "peak_rss_gib": _peak_rss_gib(), "finite": bool(np.isfinite(probe).all()),
            "out_rows": out.num_rows}


def _in_subprocess(fn: str, **kwargs) -> dict:
    code = (f"import json, sys; from ruvector_graph_attn.bench.distributed import {fn}; "
            f"print('RESULT ' + json.dumps({fn}(**json.loads(sys.argv[1]))))")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{fn} failed:\n{r.stderr[-3000:]}")
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def part_b(edges: list[int], chunk_nodes: int, workdir: Path) -> list[dict]:
    rows = []
    for m in edges:
        n = max(10, m // 10)
        root = workdir / f"ooc_{m}"
        root.mkdir(parents=True, exist_ok=True)
        try:
            g = _in_subprocess("ooc_generate", root=str(root), n=n, m=m)
            i = _in_subprocess("ooc_infer", root=str(root), chunk_nodes=chunk_nodes)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows.append({"edges": m, "nodes": n, "gen_s": g["features_s"] + g["csr_s"], "gen_rss_gib": g["peak_rss_gib"],
                     "infer_s": i["infer_s"], "infer_rss_gib": i["peak_rss_gib"], "finite": i["finite"],
                     "s_per_100M_edges": i["infer_s"] / m * 1e8})
    return rows


# ---------------------------------------------------------------------------- (a) and (c)
def _dataset(n: int, dim: int, root: Path, feature_dtype: str = "float32"):
    import ruvector_graph_attn as rga
    from ruvector_graph_attn.rerank.synthetic import latent_citation_graph
    from ruvector_graph_attn.store import MmapGraph

    d = latent_citation_graph(n=n, dim=dim, seed=0)
    ids = np.arange(d.n, dtype=np.int64)
    if not (root / "index").exists():
        index = rga.HNSWIndex(dim=dim, M=16, ef_construction=100, max_elements=n, seed=1)
        index.add(ids, d.x)
        index.save(root / "index")
    MmapGraph.build(root / f"graph_{feature_dtype}", ids, d.edges, d.x, directed=True, feature_dtype=feature_dtype,
                    overwrite=True)
    return d


def part_a(n: int, dim: int, queries: int, batch: int, workdir: Path) -> dict:
    import distributed

    import ruvector_graph_attn as rga
    from ruvector_graph_attn.distributed.batch import RerankSpec

    d = _dataset(n, dim, workdir)
    Q, _, _ = d.queries(queries, seed=3)
    Qw, _, _ = d.queries(2 * batch, seed=30)                  # warm-up queries (distinct task keys)
    index, graph = str(workdir / "index"), str(workdir / "graph_float32")
    opts = {"candidates": 100}
    rr = RerankSpec.make(index, graph, **opts).build()
    rr.search_batch(Qw, 10)                                 # warm

    def in_process() -> float:
        t0 = time.perf_counter()
        for a in range(0, queries, batch):
            rr.search_batch(Q[a:a + batch], 10)
        return time.perf_counter() - t0

    blocks = -(-queries // batch)
    out: dict = {"queries": queries, "blocks": blocks}
    t_ins = []
    for workers in (1, 2):
        cluster = distributed.LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
        try:
            t0 = time.perf_counter()
            # plugin registration: every worker loads the index, graph and kernels once
            warm = rga.distributed.rerank(Qw, index=index, graph=graph, client=client, k=10, batch_size=batch,
                                          **opts)
            t_load = time.perf_counter() - t0
            warm.compute()                                    # warm run on other queries (other task keys)
            # the in-process baseline is timed right before and after, on the same machine state
            t_before = in_process()
            t0 = time.perf_counter()
            df = rga.distributed.rerank(Q, index=index, graph=graph, client=client, k=10, batch_size=batch,
                                        **opts).compute()
            t = time.perf_counter() - t0
            t_in = (t_before + in_process()) / 2
            assert len(df) == queries * 10
        finally:
            client.close()
            cluster.close()
        t_ins.append(t_in)
        out[f"dask{workers}_qps"] = queries / t
        out[f"dask{workers}_load_s"] = t_load
        out[f"dask{workers}_ratio"] = t_in / t
        out[f"dask{workers}_overhead_ms_per_block"] = (t * workers - t_in) / blocks * 1e3
    out["inprocess_qps"] = queries / float(np.mean(t_ins))
    return out


def part_c(n: int, dim: int, queries: int, workdir: Path) -> dict:
    from ruvector_graph_attn.distributed.batch import RerankSpec
    from ruvector_graph_attn.store import FeatureStore

    d = _dataset(n, dim, workdir, "int8")
    if not (workdir / "graph_float32").exists():
        _dataset(n, dim, workdir, "float32")
    Q, _, _ = d.queries(min(queries, 1000), seed=4)
    res = {}
    for dt in ("float32", "int8"):
        rr = RerankSpec.make(str(workdir / "index"), str(workdir / f"graph_{dt}"), candidates=100).build()
        res[dt] = rr.rerank_arrays(Q, 10)[0]
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(res["float32"], res["int8"])])
    f32 = FeatureStore.open(workdir / "graph_float32" / "features")
    i8 = FeatureStore.open(workdir / "graph_int8" / "features")
    return {"float32_bytes": f32.nbytes, "int8_bytes": i8.nbytes, "ratio": f32.nbytes / i8.nbytes,
            "ratio_data_only": f32.data.nbytes / i8.data.nbytes, "top10_overlap": float(overlap),
            "queries": int(Q.shape[0])}


def run(args: argparse.Namespace) -> int:
    from .common import print_table

    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"a", "b", "c"}:
        print(f"error: --parts takes a, b, c; got {args.parts!r}", file=sys.stderr)
        return 2
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="rga-bench-dist-")) if own else Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    try:
        if "a" in parts:
            a = part_a(args.n, args.dim, args.queries, args.batch, workdir)
            results["a"] = a
            print_table(["path", "queries/s", "vs in-process", "load (s)"], [
                ["in-process search_batch", a["inprocess_qps"], 1.0, "-"],
                ["Dask, 1 worker", a["dask1_qps"], a["dask1_ratio"], a["dask1_load_s"]],
                ["Dask, 2 workers", a["dask2_qps"], a["dask2_ratio"], a["dask2_load_s"]],
            ], title=f"(a) batch re-ranking, {a['queries']} queries in {a['blocks']} blocks "
                     f"(overhead per block: {a['dask1_overhead_ms_per_block']:.1f} ms with 1 worker, "
                     f"{a['dask2_overhead_ms_per_block']:.1f} ms with 2)")
        if "c" in parts:
            c = part_c(args.n, args.dim, args.queries, workdir)
            results["c"] = c
            print_table(["store", "bytes", "ratio", "top-10 overlap"], [
                ["float32", c["float32_bytes"], 1.0, 1.0],
                ["int8 + row scales", c["int8_bytes"], c["ratio"], c["top10_overlap"]],
            ], title=f"(c) int8 vs float32 features ({args.n} x {args.dim}; data alone "
                     f"{c['ratio_data_only']:.2f}x smaller)")
        if "b" in parts:
            edges = [int(float(e)) for e in args.edges.split(",") if e.strip()]
            b = part_b(edges, args.chunk_nodes, workdir)
            results["b"] = b
            print_table(["edges", "nodes", "generate (s)", "gen peak RSS (GiB)", "2-layer SAGE (s)",
                         "infer peak RSS (GiB)", "s per 100M edges"],
                        [[r["edges"], r["nodes"], r["gen_s"], r["gen_rss_gib"], r["infer_s"], r["infer_rss_gib"],
                          r["s_per_100M_edges"]] for r in b],
                        title=f"(b) out-of-core 2-layer SAGE (64-d, chunk_nodes={args.chunk_nodes}); "
                              f"RSS goal < {RSS_GOAL_GIB} GiB")
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(build_parser().parse_args()))
