"""Dask batch re-ranking, sharded index and layer-wise inference on a real LocalCluster
(two worker processes, one thread each), started once for this module."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.store import FeatureStore, MmapCSR, MmapGraph

from _require import import_or_unavailable, unavailable

K = 10


@pytest.fixture(scope="module")
def client():
    import_or_unavailable("dask", "Dask")
    import_or_unavailable("pandas", "pandas")
    distributed = import_or_unavailable("distributed", "Dask distributed")
    try:
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           dashboard_address=None, memory_limit="2GiB")
        cl = distributed.Client(cluster)
        cl.wait_for_workers(2, timeout=60)
    except Exception as exc:  # noqa: BLE001 - any failure to start is "unavailable"
        unavailable("Dask LocalCluster", f"{type(exc).__name__}: {exc}")
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A latent citation graph (1500 nodes, 32-d), its HNSW index, MmapGraph and a SAGE checkpoint."""
    from ruvector_graph_attn.rerank.synthetic import latent_citation_graph

    root = tmp_path_factory.mktemp("dist")
    d = latent_citation_graph(n=1500, dim=32, latent_dim=6, n_topics=8, degree=6, seed=3)
    ids = np.arange(d.n, dtype=np.int64)
    index = rga.HNSWIndex(dim=32, space="cosine", M=12, ef_construction=100, seed=7)
    index.add(ids, d.x)
    index.save(root / "index")
    MmapGraph.build(root / "graph", ids, d.edges, d.x, directed=True)
    layer = rga.graph.SAGEConv(32, 32, rng=0)
    rga.save_checkpoint(layer, root / "sage.ckpt")
    Q, _, _ = d.queries(240, seed=5)
    return {"root": root, "d": d, "Q": Q, "index": str(root / "index"), "graph": str(root / "graph"),
            "ckpt": str(root / "sage.ckpt")}


def _local(data, scorer="attention", checkpoint=None, **opts):
    from ruvector_graph_attn.distributed.batch import RerankSpec

    return RerankSpec.make(data["index"], data["graph"], scorer=scorer, checkpoint=checkpoint, **opts).build()


def _flatten(hits):
    rows = [(b, h.rank, h.id, h.score, h.vector_score) for b, row in enumerate(hits) for h in row]
    return np.array(rows, dtype=[("query", "i8"), ("rank", "i4"), ("id", "i8"), ("score", "f8"),
                                 ("vector_score", "f8")])


def _assert_frame_equals(df, ref):
    df = df.sort_values(["query", "rank"]).reset_index(drop=True)
    assert len(df) == len(ref)
    for col in ("query", "rank", "id"):
        np.testing.assert_array_equal(df[col].to_numpy(), ref[col])
    # the same code on the same data; SIMD summation order may move the last float32 bit with
    # the block a query is in, so scores are compared at float32 resolution
    for col in ("score", "vector_score"):
        np.testing.assert_allclose(df[col].to_numpy(), ref[col], rtol=2e-7, atol=1e-7)


# ---------------------------------------------------------------------------- re-ranking
def test_rerank_numpy_equals_single_process_row_for_row(client, data):
    from ruvector_graph_attn.distributed.batch import COLUMNS, RerankSpec

    Q = data["Q"]
    ddf = rga.distributed.rerank(Q, index=data["index"], graph=data["graph"], scorer="attention", client=client,
                                 k=K, batch_size=50, candidates=40)
    assert tuple(ddf.columns) == COLUMNS
    assert ddf.npartitions == 5
    df = ddf.compute()
    ref = _flatten(_local(data, candidates=40).search_batch(Q, K))
    assert len(ref) == Q.shape[0] * K
    _assert_frame_equals(df, ref)
    # the MmapGraph path equals the NetworkX path of the same graph
    nxg = rga.connectors.NetworkXGraph(data["d"].to_networkx())
    rr_nx = rga.GraphReranker(index=rga.HNSWIndex.load(data["index"]), graph=nxg, candidates=40)
    _assert_frame_equals(df, _flatten(rr_nx.search_batch(Q, K)))
    # loaded once per worker: a second job reuses the loaded re-ranker
    rga.distributed.rerank(Q[:60], index=data["index"], graph=data["graph"], client=client, k=K,
                           batch_size=20, candidates=40).compute()
    key = RerankSpec.make(data["index"], data["graph"], candidates=40).key
    loads = client.run(lambda: __import__("ruvector_graph_attn.distributed.batch",
                                          fromlist=["LOADS"]).LOADS.get(key, 0))
    assert sorted(loads.values()) == [1, 1]


def test_rerank_dask_array_series_and_parquet(client, data, tmp_path):
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    Q = data["Q"][:90]
    ref = _flatten(_local(data, candidates=30).search_batch(Q, K))
    arr = da.from_array(Q, chunks=(25, 16))          # columns chunked too: rechunked to whole rows
    ddf = rga.distributed.rerank(arr, index=data["index"], graph=data["graph"], client=client, k=K,
                                 candidates=30)
    assert ddf.npartitions == 4
    out = tmp_path / "hits.parquet"
    ddf.to_parquet(str(out))
    back = pd.read_parquet(out)
    _assert_frame_equals(back, ref)

    import pyarrow as pa

    vec = pd.Series([v.tolist() for v in Q], dtype=pd.ArrowDtype(pa.list_(pa.float32())))
    pdf = pd.DataFrame({"embedding": vec.to_numpy()}, index=pd.RangeIndex(1000, 1000 + len(Q)))
    pdf["embedding"] = pdf["embedding"].astype(pd.ArrowDtype(pa.list_(pa.float32())))
    col = dd.from_pandas(pdf, npartitions=3)["embedding"]
    df = rga.distributed.rerank(col, index=data["index"], graph=data["graph"], client=client, k=K,
                                candidates=30).compute()
    ref2 = ref.copy()
    ref2["query"] += 1000                              # the Series index labels
    _assert_frame_equals(df, ref2)


def test_rerank_layer_scorer_from_checkpoint(client, data):
    Q = data["Q"][:64]
    df = rga.distributed.rerank(Q, index=data["index"], graph=data["graph"], scorer="sage",
                                checkpoint=data["ckpt"], client=client, k=5, batch_size=16,
                                candidates=20).compute()
    ref = _flatten(_local(data, scorer="sage", checkpoint=data["ckpt"], candidates=20).search_batch(Q, 5))
    _assert_frame_equals(df, ref)
    # the layer scorer really differs from the vector order somewhere
    assert (ref["score"] != ref["vector_score"]).any()


def test_rerank_bad_input(client, data, tmp_path):
    import dask.dataframe as dd
    import pandas as pd

    with pytest.raises(rga.DimensionMismatchError):
        rga.distributed.rerank(np.zeros((3, 7), np.float32), index=data["index"], graph=data["graph"])
    with pytest.raises(rga.InvalidInputError, match="NaN|Inf|finite"):
        rga.distributed.rerank(np.full((2, 32), np.nan, np.float32), index=data["index"], graph=data["graph"])
    with pytest.raises(rga.InvalidInputError, match="does not exist"):
        rga.distributed.rerank(data["Q"][:2], index=str(tmp_path / "nope"), graph=data["graph"])
    with pytest.raises(rga.InvalidInputError, match="scorer"):
        rga.distributed.rerank(data["Q"][:2], index=data["index"], graph=data["graph"], scorer="magic")
    with pytest.raises(rga.InvalidInputError, match="path"):
        rga.distributed.rerank(data["Q"][:2], index=object(), graph=data["graph"])
    df = dd.from_pandas(pd.DataFrame({"a": [1.0, 2.0]}), npartitions=1)
    with pytest.raises(rga.InvalidInputError, match="Series"):
        rga.distributed.rerank(df, index=data["index"], graph=data["graph"])


def test_worker_killed_mid_job_is_retried_complete_without_duplicates(client, data):
    rng = np.random.default_rng(11)
    Q = np.concatenate([data["Q"]] * 4) + 0.01 * rng.standard_normal((4 * len(data["Q"]), 32)).astype(np.float32)
    ddf = rga.distributed.rerank(Q, index=data["index"], graph=data["graph"], client=client, k=K,
                                 batch_size=12, candidates=150, hops=2)
    n_parts = ddf.npartitions
    pids = client.run(os.getpid)
    fut = client.compute(ddf)

    def finished(dask_scheduler=None):
        return sum(1 for ts in dask_scheduler.tasks.values() if ts.state == "memory")

    deadline = time.time() + 60
    while client.run_on_scheduler(finished) < 3 and time.time() < deadline:
        time.sleep(0.02)
    assert not fut.done(), "the job finished before a worker could be killed; make it longer"
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    df = fut.result(timeout=300)
    assert fut.status == "finished"
    # complete, no duplicates, and equal to the single-process result
    assert len(df) == len(Q) * K
    assert not df.duplicated(["query", "rank"]).any()
    ref = _flatten(_local(data, candidates=150, hops=2).search_batch(Q, K))
    _assert_frame_equals(df, ref)
    assert n_parts == -(-len(Q) // 12)
    client.wait_for_workers(2, timeout=60)          # the nanny restarted the worker
    assert victim not in client.scheduler_info()["workers"] or client.run(os.getpid)[victim] != pids[victim]


# ---------------------------------------------------------------------------- sharded index
def test_sharded_exact_equals_brute_force(client, tmp_path):
    from ruvector_graph_attn.distributed import ShardedIndex

    rng = np.random.default_rng(0)
    X = rng.standard_normal((900, 24)).astype(np.float32)
    ids = np.arange(5000, 5900, dtype=np.int64)
    ShardedIndex.build(tmp_path / "sh", ids, X, shards=3, space="cosine", M=8, ef_construction=50)
    sh = ShardedIndex.open(tmp_path / "sh", client, exact=True)
    assert len(set(sh.placement)) == 2                # shards spread over both workers
    Q = rng.standard_normal((40, 24)).astype(np.float32)
    got_ids, got_d = sh.search(Q, k=7)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    d = 1.0 - Qn.astype(np.float64) @ Xn.T.astype(np.float64)
    order = np.argsort(d, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(got_ids, ids[order])
    np.testing.assert_allclose(got_d, np.take_along_axis(d, order, 1), atol=1e-5)
    # one query -> 1-D, like HNSWIndex.search
    i1, d1 = sh.search(Q[3], k=7)
    np.testing.assert_array_equal(i1, got_ids[3])
    with pytest.raises(rga.DimensionMismatchError):
        sh.search(Q[:, :5], k=3)
    # equal to one index over all the data searched exactly (hnswlib brute force on an allow-list)
    one = rga.HNSWIndex(dim=24, M=8, ef_construction=50)
    one.add(ids, X)
    o_ids, o_d = one.search(Q, k=7, filter=ids)
    np.testing.assert_array_equal(got_ids, o_ids)
    np.testing.assert_allclose(got_d, o_d, rtol=0, atol=2e-6)

    # and usable as the index of a GraphReranker: same hits as with the single exact index
    class Exact:
        dim, space, ef = 24, "cosine", 16
        to_similarity = staticmethod(one.to_similarity)

        def search(self, q, k=10, ef=None):
            return one.search(q, k=k, filter=ids)

    rng2 = np.random.default_rng(1)
    ei = rng2.integers(0, 900, (2, 3000))
    graph = MmapGraph.build(tmp_path / "g", ids, ei, X, directed=False)
    a = rga.GraphReranker(index=sh, graph=graph, candidates=20).search_batch(Q[:10], 5)
    b = rga.GraphReranker(index=Exact(), graph=graph, candidates=20).search_batch(Q[:10], 5)
    assert [[h.id for h in r] for r in a] == [[h.id for h in r] for r in b]
    np.testing.assert_allclose([[h.score for h in r] for r in a], [[h.score for h in r] for r in b], atol=2e-6)


def test_sharded_hnsw_recall_within_001_of_one_index(client, tmp_path):
    from ruvector_graph_attn.bench.common import structured_vectors
    from ruvector_graph_attn.distributed import ShardedIndex

    X = structured_vectors(6000, dim=32, seed=2)
    Q = structured_vectors(200, dim=32, seed=9)
    ids = np.arange(len(X), dtype=np.int64)
    one = rga.HNSWIndex(dim=32, M=8, ef_construction=60, ef=20, max_elements=len(X))
    one.add(ids, X)
    ShardedIndex.build(tmp_path / "sh", ids, X, shards=2, M=8, ef_construction=60, ef=20)
    sh = ShardedIndex.open(tmp_path / "sh", client)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    truth = np.argsort(-(Qn @ Xn.T), axis=1)[:, :10]

    def recall(found):
        return np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)])

    r_one = recall(one.search(Q, k=10, ef=20)[0])
    r_sh = recall(sh.search(Q, k=10, ef=20)[0])
    assert r_sh >= r_one - 0.01, (r_sh, r_one)
    assert r_one < 1.0 or r_sh == 1.0


# ---------------------------------------------------------------------------- layer-wise inference
def _models():
    G, nn = rga.graph, rga.nn
    return {
        "sage": G.GraphSequential([G.SAGEConv(16, 24, rng=1), nn.ReLU(),
                                   G.SAGEConv(24, 8, aggr="max", normalize=True, rng=2)]),
        "gat": G.GraphSequential([G.GATConv(16, 6, heads=3, rng=3), nn.ELU(), nn.Dropout(0.5),
                                  G.GATv2Conv(18, 8, heads=2, concat=False, rng=4)]),
        "gin": G.GraphSequential([G.GINConv(nn.Sequential(nn.Linear(16, 24, rng=5), nn.ReLU(),
                                                          nn.Linear(24, 24, rng=6)), eps=0.25), nn.ReLU(),
                                  G.GINConv(nn.Linear(24, 8, rng=7))]),
        "sage_project": G.GraphSequential([G.SAGEConv(16, 12, aggr="sum", project=True, rng=8), nn.Tanh(),
                                           G.SAGEConv(12, 8, root_weight=False, rng=9)]),
    }


@pytest.fixture(scope="module")
def small_graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("lw")
    rng = np.random.default_rng(4)
    n, e = 700, 5000
    ei = rng.integers(0, n, (2, e)).astype(np.int64)
    ei[:, :20] = np.arange(20)                       # some self loops
    x = rng.standard_normal((n, 16)).astype(np.float32)
    fs = FeatureStore.from_array(root / "x", x)
    csr = MmapCSR.from_edge_index(root / "csr", ei, n, chunk_edges=777)
    return {"root": root, "x": x, "ei": ei, "fs": fs, "csr": csr, "n": n}


@pytest.mark.parametrize("name", ["sage", "gat", "gin", "sage_project"])
def test_layerwise_single_process_equals_in_memory_forward(name, small_graph, tmp_path):
    model = _models()[name]
    model.eval()
    ref = model(small_graph["x"], small_graph["ei"])
    model.train()
    out = rga.distributed.infer_layerwise(model, small_graph["fs"], small_graph["csr"], chunk_nodes=97,
                                          out_dir=tmp_path / "o")
    assert model.training                              # mode restored
    got = out[np.arange(small_graph["n"])]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert np.abs(ref).max() > 0.1
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["pass_1"]   # intermediate removed


@pytest.mark.parametrize("name", ["sage", "gat", "gin"])
def test_layerwise_on_dask_equals_in_memory_forward(name, client, small_graph, tmp_path):
    model = _models()[name]
    model.eval()
    ref = model(small_graph["x"], small_graph["ei"])
    out = rga.distributed.infer_layerwise(model, small_graph["fs"], small_graph["csr"], chunk_nodes=128,
                                          out_dir=tmp_path / "o", client=client)
    np.testing.assert_allclose(out[np.arange(small_graph["n"])], ref, rtol=1e-5, atol=1e-5)


def test_layerwise_int8_features_and_edge_index_input(small_graph, tmp_path):
    model = _models()["sage"]
    model.eval()
    q8 = FeatureStore.from_array(tmp_path / "x8", small_graph["x"], dtype="int8")
    deq = q8[np.arange(small_graph["n"])]
    ref = model(deq, small_graph["ei"])
    out = rga.distributed.infer_layerwise(model, q8, small_graph["ei"], chunk_nodes=200, out_dir=tmp_path / "o")
    np.testing.assert_allclose(out[np.arange(small_graph["n"])], ref, rtol=1e-5, atol=1e-5)


def test_layerwise_bad_input(small_graph):
    G = rga.graph
    with pytest.raises(rga.DimensionMismatchError):
        rga.distributed.infer_layerwise(G.SAGEConv(8, 4), small_graph["fs"], small_graph["csr"])
    with pytest.raises(rga.InvalidInputError, match="graph layer"):
        rga.distributed.infer_layerwise(rga.nn.ReLU(), small_graph["fs"], small_graph["csr"])
    with pytest.raises(rga.InvalidInputError, match="edge features"):
        rga.distributed.infer_layerwise(G.GINEConv(rga.nn.Linear(16, 4), edge_dim=3), small_graph["fs"],
                                        small_graph["csr"])
    with pytest.raises(rga.InvalidInputError, match="chunk_nodes"):
        rga.distributed.infer_layerwise(G.SAGEConv(16, 4), small_graph["fs"], small_graph["csr"], chunk_nodes=0)
    with pytest.raises(rga.InvalidInputError, match="outside"):
        rga.distributed.infer_layerwise(G.SAGEConv(16, 4), small_graph["x"], np.array([[0, 5000], [1, 2]]))
    with pytest.raises(rga.InvalidInputError, match="FeatureStore"):
        rga.distributed.infer_layerwise(G.SAGEConv(16, 4), small_graph["x"], small_graph["csr"], client=object())


# ---------------------------------------------------------------------------- benchmark
@pytest.mark.slow
def test_bench_distributed_small_run(tmp_path, capsys):
    """``bench distributed`` parts (b) and (c) at toy sizes: the figures are produced, the
    out-of-core output is finite and the data folder is removed."""
    import json as _json

    from ruvector_graph_attn.cli import main

    work = tmp_path / "w"
    assert main(["bench", "distributed", "--parts", "b,c", "--edges", "4000", "--n", "800", "--dim", "16",
                 "--queries", "60", "--chunk-nodes", "64", "--workdir", str(work), "--json"]) == 0
    out = capsys.readouterr().out
    res = _json.loads(out[out.index("{"):])
    (b,) = res["b"]
    assert b["edges"] == 4000 and b["nodes"] == 400 and b["finite"] and b["infer_rss_gib"] > 0
    c = res["c"]
    assert c["ratio_data_only"] == 4.0 and 3.0 < c["ratio"] < 4.0
    assert 0.5 <= c["top10_overlap"] <= 1.0
    assert not (work / "ooc_4000").exists()
