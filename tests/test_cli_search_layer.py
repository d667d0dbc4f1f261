"""``ruvector-graph-attn search --scorer gat|sage|gin --layer CKPT``: a layer trained by the
``train`` command (or saved with ``save_checkpoint``) scores the re-ranking, in a subprocess,
exactly as ``GraphReranker(..., layer=load_checkpoint(CKPT))`` does in process."""
from __future__ import annotations

import json
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga

N, D = 240, 8
QUERY_IDS = [5, 77, 150]


def _cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", *args],
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Clustered vectors, an edge list linking nodes of the same cluster, an index built by the CLI."""
    tmp = tmp_path_factory.mktemp("search_layer")
    rng = np.random.default_rng(3)
    cluster = rng.integers(0, 6, N)
    centres = rng.standard_normal((6, D)) * 2.0
    X = (centres[cluster] + rng.standard_normal((N, D))).astype(np.float32)
    src, dst = [], []
    for i in range(N):
        same = np.flatnonzero(cluster == cluster[i])
        for j in rng.choice(same, 3, replace=False):
            if j != i:
                src.append(i)
                dst.append(int(j))
    np.save(tmp / "vecs.npy", X)
    (tmp / "edges.txt").write_text("\n".join(f"{a} {b}" for a, b in zip(src, dst)) + "\n")
    _cli("index", "build", "--vectors", str(tmp / "vecs.npy"), "--out", str(tmp / "idx"), "--json")
    return tmp, X, list(zip(src, dst))


def _in_process(tmp, edges, scorer, layer, hops, k=10, qids=QUERY_IDS, batch=False):
    """``rr.search`` per query (or one ``rr.search_batch``) with the given layer."""
    index = rga.HNSWIndex.load(tmp / "idx")
    G = nx.DiGraph()
    G.add_edges_from(edges)
    nodes = list(G.nodes())
    nx.set_node_attributes(G, dict(zip(nodes, index.get(nodes))), "embedding")
    rr = rga.GraphReranker(index, rga.connectors.NetworkXGraph(G), scorer=scorer, layer=layer, hops=hops)
    if batch:
        return rr.search_batch(index.get(qids), k=k)
    return [rr.search(index.get([qid])[0], k=k) for qid in qids]


def _search_json(tmp, scorer, ckpt, k=10, qids=QUERY_IDS, extra=()):
    args = ["search", "--index", str(tmp / "idx"), "--graph", str(tmp / "edges.txt"), "--scorer", scorer,
            "--layer", str(ckpt), "--k", str(k), "--json", *extra]
    for qid in qids:
        args += ["--query-id", str(qid)]
    return json.loads(_cli(*args).stdout)


def _assert_equal(res, ref, attention=True):
    assert len(res["queries"]) == len(ref)
    for q, hits in zip(res["queries"], ref):
        got = q["results"]
        assert [(h["id"], h["rank"], h["vector_rank"]) for h in got] == [(h.id, h.rank, h.vector_rank) for h in hits]
        np.testing.assert_allclose([h["score"] for h in got], [h.score for h in hits], rtol=0, atol=1e-6)
        np.testing.assert_allclose([h["context_score"] for h in got], [h.context_score for h in hits], atol=1e-6)
        if attention:
            for g, h in zip(got, hits):
                assert dict(map(tuple, g["attention"])) == pytest.approx(h.attention, abs=1e-9)


@pytest.mark.slow
def test_search_with_trained_sage_checkpoint(data, tmp_path):
    tmp, X, edges = data
    ckpt = tmp_path / "sage.rgackpt"
    _cli("train", "--graph", str(tmp / "edges.txt"), "--features", str(tmp / "vecs.npy"), "--task", "link",
         "--model", "sage", "--hidden", "16", "--out-dim", str(D), "--epochs", "8", "--patience", "0",
         "--seed", "1", "--out", str(ckpt), "--no-progress")
    res = _search_json(tmp, "sage", ckpt)
    # a two-layer model: the CLI expands 2 hops by default, so the model sees its whole receptive
    # field and the CLI's batched search equals separate rr.search calls
    assert res["scorer"] == "sage" and res["hops"] == 2
    layer = rga.load_checkpoint(ckpt)
    layer.eval()
    ref = _in_process(tmp, edges, "sage", layer, hops=2)
    _assert_equal(res, ref)
    # --hops 1 would truncate the 2-layer model's receptive field by what else is in the batch:
    # refused with a clear error; --hops 3 is a larger radius and allowed
    args = ["search", "--index", str(tmp / "idx"), "--graph", str(tmp / "edges.txt"), "--scorer", "sage",
            "--layer", str(ckpt), "--k", "10", "--json", "--hops", "1", "--query-id", "5"]
    proc = _cli(*args, check=False)
    assert proc.returncode == 1 and "2 graph layers" in proc.stderr and "hops>=2" in proc.stderr
    res3 = _search_json(tmp, "sage", ckpt, extra=("--hops", "3"))
    assert res3["hops"] == 3
    _assert_equal(res3, _in_process(tmp, edges, "sage", layer, hops=3))
    # the trained layer really changes the order relative to the vector baseline
    assert any(h.rank != h.vector_rank for hits in ref for h in hits)
    # and differs from the zero-shot attention scorer (the layer is what scores)
    att = _in_process(tmp, edges, "attention", None, hops=2)
    assert any(abs(a.score - b.score) > 1e-3 for x, y in zip(ref, att) for a, b in zip(x, y))


@pytest.mark.slow
def test_search_with_saved_gat_layer_and_trained_gat_model(data, tmp_path):
    tmp, X, edges = data
    # a single GATConv saved with save_checkpoint: the layer itself is the scorer
    gat = rga.graph.GATConv(D, D, heads=2, concat=False, rng=np.random.default_rng(4))
    rga.save_checkpoint(gat, tmp_path / "gat1.rgackpt")
    res = _search_json(tmp, "gat", tmp_path / "gat1.rgackpt")
    assert res["hops"] == 1
    ref = _in_process(tmp, edges, "gat", rga.load_checkpoint(tmp_path / "gat1.rgackpt").eval(), hops=1)
    _assert_equal(res, ref)
    for q in res["queries"]:
        for h in q["results"]:
            if h["in_graph"]:
                assert sum(w for _, w in h["attention"]) == pytest.approx(1.0, abs=1e-6)   # softmax into the hit
    # a two-layer GAT model from `train`: scores are the model's output (what any layer scorer
    # computes), the explanation is its last GAT layer's attention
    ckpt = tmp_path / "gat2.rgackpt"
    _cli("train", "--graph", str(tmp / "edges.txt"), "--features", str(tmp / "vecs.npy"), "--task", "link",
         "--model", "gat", "--hidden", "16", "--heads", "2", "--out-dim", str(D), "--epochs", "5",
         "--patience", "0", "--seed", "2", "--out", str(ckpt), "--no-progress")
    res2 = _search_json(tmp, "gat", ckpt)
    model = rga.load_checkpoint(ckpt).eval()
    assert res2["hops"] == 2
    _assert_equal(res2, _in_process(tmp, edges, "sage", model, hops=2), attention=False)
    last_gat = list(model.children())[-1]
    assert type(last_gat).__name__ == "GATConv"
    hit = next(h for h in res2["queries"][0]["results"] if h["in_graph"])
    assert sum(w for _, w in hit["attention"]) == pytest.approx(1.0, abs=1e-6)


def test_search_layer_errors(data, tmp_path):
    tmp, X, _ = data
    base = ["search", "--index", str(tmp / "idx"), "--graph", str(tmp / "edges.txt"), "--query-id", "5"]
    proc = _cli(*base, "--scorer", "sage", check=False)
    assert proc.returncode == 1 and "needs --layer" in proc.stderr
    proc = _cli(*base, "--layer", str(tmp_path / "x.rgackpt"), check=False)
    assert proc.returncode == 1 and "only used by --scorer gat|sage|gin" in proc.stderr
    sage = rga.graph.SAGEConv(D, D, rng=np.random.default_rng(0))
    rga.save_checkpoint(sage, tmp_path / "sage1.rgackpt")
    proc = _cli(*base, "--scorer", "gat", "--layer", str(tmp_path / "sage1.rgackpt"), check=False)
    assert proc.returncode == 1 and "GATConv or GATv2Conv" in proc.stderr
    wide = rga.graph.SAGEConv(D, D + 3, rng=np.random.default_rng(0))
    rga.save_checkpoint(wide, tmp_path / "wide.rgackpt")
    proc = _cli(*base, "--scorer", "sage", "--layer", str(tmp_path / "wide.rgackpt"), check=False)
    assert proc.returncode == 1 and "layer output dimension" in proc.stderr
    (tmp_path / "junk.rgackpt").write_bytes(b"not a checkpoint")
    proc = _cli(*base, "--scorer", "sage", "--layer", str(tmp_path / "junk.rgackpt"), check=False)
    assert proc.returncode == 1 and "error:" in proc.stderr


def test_search_with_saved_gin_layer(data, tmp_path):
    tmp, X, edges = data
    rng = np.random.default_rng(5)
    gin = rga.graph.GINConv(rga.nn.Sequential(rga.nn.Linear(D, D), rga.nn.ReLU(), rga.nn.Linear(D, D)),
                            eps=0.3, train_eps=True)
    for _, prm in gin.named_parameters():
        prm.data[...] = rng.standard_normal(prm.data.shape).astype(prm.data.dtype) * 0.5
    rga.save_checkpoint(gin, tmp_path / "gin.rgackpt")
    res = _search_json(tmp, "gin", tmp_path / "gin.rgackpt", qids=[77])
    assert res["hops"] == 1
    loaded = rga.load_checkpoint(tmp_path / "gin.rgackpt").eval()
    ref = _in_process(tmp, edges, "gin", loaded, hops=1, qids=[77])
    _assert_equal(res, ref)
    # explanation: the GIN aggregation shares 1 / (1 + eps + deg), with the trained eps from the file
    eps = float(np.asarray(loaded.eps.data).reshape(-1)[0])
    assert eps == pytest.approx(float(np.asarray(gin.eps.data).reshape(-1)[0])) and abs(eps - 0.3) > 1e-3
    hits = [h for h in res["queries"][0]["results"] if h["in_graph"] and h["attention"]]
    assert hits
    for h in hits:
        w = [v for _, v in h["attention"]]
        assert w == pytest.approx([1.0 / (1.0 + eps + len(w))] * len(w), rel=1e-6)


def test_search_vote_with_and_without_a_trained_query_map(data, tmp_path):
    from ruvector_graph_attn.rerank.vote import VoteScorer, identity_query_map

    tmp, X, edges = data
    base = ["search", "--index", str(tmp / "idx"), "--graph", str(tmp / "edges.txt"), "--scorer", "vote",
            "--direction", "out", "--k", "10", "--json"]
    for qid in QUERY_IDS:
        base += ["--query-id", str(qid)]
    index = rga.HNSWIndex.load(tmp / "idx")
    G = nx.DiGraph()
    G.add_edges_from(edges)
    nodes = list(G.nodes())
    nx.set_node_attributes(G, dict(zip(nodes, index.get(nodes))), "embedding")
    graph = rga.connectors.NetworkXGraph(G)
    # zero-shot: the alias defaults (T 0.1, 20 voters, their neighbours as graph candidates)
    res = json.loads(_cli(*base).stdout)
    ref = [rga.GraphReranker(index, graph, scorer="vote", direction="out").search(index.get([q])[0], k=10)
           for q in QUERY_IDS]
    _assert_equal(res, ref)
    assert any(h.rank != h.vector_rank for hits in ref for h in hits)
    # a trained query map saved with save_checkpoint
    lin = identity_query_map(D, np.float64)
    lin.weight.data[...] += 0.5 * np.random.default_rng(9).standard_normal((D, D))
    rga.save_checkpoint(lin, tmp_path / "qmap.rgackpt")
    res2 = json.loads(_cli(*base, "--layer", str(tmp_path / "qmap.rgackpt"), "--temperature", "0.2").stdout)
    sc = VoteScorer(0.2, query_map=rga.load_checkpoint(tmp_path / "qmap.rgackpt"))
    ref2 = [rga.GraphReranker(index, graph, scorer=sc, direction="out").search(index.get([q])[0], k=10)
            for q in QUERY_IDS]
    _assert_equal(res2, ref2)
    assert any(abs(a.score - b.score) > 1e-3 for x, y in zip(ref, ref2) for a, b in zip(x, y))
    # a checkpoint that is not a query map: a clean error, no traceback
    rga.save_checkpoint(rga.graph.SAGEConv(D, D, rng=np.random.default_rng(0)), tmp_path / "sage.rgackpt")
    proc = _cli(*base, "--layer", str(tmp_path / "sage.rgackpt"), check=False)
    assert proc.returncode == 1 and "needs a Linear checkpoint" in proc.stderr and "Traceback" not in proc.stderr
