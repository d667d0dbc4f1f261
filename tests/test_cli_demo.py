"""The demo, index and search commands, run in subprocesses as users run them."""
from __future__ import annotations

import json
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest


def _cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", *args],
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.mark.slow
def test_demo_table_and_json():
    out = _cli("demo", "--queries", "1").stdout
    assert "vector-only" in out and "re-ranked" in out
    assert "why: top attention weights" in out
    assert "recall@10 vector-only" in out
    assert "paper " in out
    res = json.loads(_cli("demo", "--json", "--queries", "2", "--n", "1500").stdout)
    assert res["dataset"]["papers"] == 1500
    assert len(res["queries"]) == 2
    q = res["queries"][0]
    assert len(q["vector"]) == 10 and len(q["reranked"]) == 10
    hit = q["reranked"][0]
    assert set(hit) >= {"id", "score", "vector_score", "rank", "attention", "in_graph", "relevant"}
    weights = [w for _, w in hit["attention"]]
    assert weights and sum(weights) == pytest.approx(1.0, abs=1e-5)
    # the relevance flags agree with the listed ground truth
    assert all(h["relevant"] == (h["id"] in q["relevant"]) for h in q["reranked"])
    # the graph must help on this dataset (ground truth is the latent geometry, not the scorer)
    assert res["summary"]["recall_reranked"] > res["summary"]["recall_vector"]
    # deterministic
    again = json.loads(_cli("demo", "--json", "--queries", "2", "--n", "1500").stdout)
    assert [h["id"] for h in again["queries"][1]["reranked"]] == [h["id"] for h in res["queries"][1]["reranked"]]


@pytest.mark.slow
def test_index_build_info_and_search(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8)).astype(np.float32)
    np.save(tmp_path / "vecs.npy", X)
    (tmp_path / "ids.txt").write_text("\n".join(f"doc{i}" for i in range(60)))
    info = json.loads(_cli("index", "build", "--vectors", str(tmp_path / "vecs.npy"), "--ids",
                           str(tmp_path / "ids.txt"), "--out", str(tmp_path / "idx"), "--json").stdout)
    assert info["count"] == 60 and info["dim"] == 8 and info["id_kind"] == "str"
    info2 = json.loads(_cli("index", "info", str(tmp_path / "idx"), "--json").stdout)
    assert info2["count"] == 60 and info2["first_ids"][:2] == ["doc0", "doc1"]
    # graph: a ring doc0 - doc1 - ... - doc49 (doc50..doc59 are not in the graph)
    G = nx.Graph()
    G.add_edges_from((f"doc{i}", f"doc{(i + 1) % 50}") for i in range(50))
    nx.write_graphml(G, tmp_path / "g.graphml")
    q = X[3] + 0.01
    res = json.loads(_cli("search", "--index", str(tmp_path / "idx"), "--graph", str(tmp_path / "g.graphml"),
                          "--query", ",".join(f"{v:.6f}" for v in q), "--k", "60", "--candidates", "60",
                          "--json").stdout)
    hits = res["queries"][0]["results"]
    assert len(hits) == 60
    by = {h["id"]: h for h in hits}
    assert set(dict(by["doc3"]["attention"])) == {"doc2", "doc3", "doc4"}
    assert all(not by[f"doc{i}"]["in_graph"] and by[f"doc{i}"]["attention"] == [] for i in range(50, 60))
    assert all(by[f"doc{i}"]["in_graph"] for i in range(50))
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    # vector scorer returns the index order; --query-id uses a stored vector
    res_v = json.loads(_cli("search", "--index", str(tmp_path / "idx"), "--graph", str(tmp_path / "g.graphml"),
                            "--query-id", "doc7", "--scorer", "vector", "--k", "5", "--json").stdout)
    hv = res_v["queries"][0]["results"]
    assert hv[0]["id"] == "doc7" and hv[0]["vector_score"] == pytest.approx(1.0, abs=1e-5)
    # edge list + explicit features, human-readable table
    (tmp_path / "edges.txt").write_text("# source target\n" + "\n".join(f"doc{i} doc{i + 1}" for i in range(59)))
    txt = _cli("search", "--index", str(tmp_path / "idx"), "--graph", str(tmp_path / "edges.txt"),
               "--features", str(tmp_path / "vecs.npy"), "--query-id", "doc10", "--k", "3").stdout
    assert "top attention" in txt and "doc10" in txt


def test_cli_errors_are_reported(tmp_path):
    proc = _cli("search", "--index", str(tmp_path / "missing"), "--graph", str(tmp_path / "g.graphml"),
                "--query", "1,2", check=False)
    assert proc.returncode == 1 and "error:" in proc.stderr
    proc = _cli("index", "build", "--vectors", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_file_readers(tmp_path):
    from ruvector_graph_attn.commands._io import read_graph, read_ids, read_vectors
    from ruvector_graph_attn.errors import InvalidInputError

    (tmp_path / "v.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    np.testing.assert_array_equal(read_vectors(tmp_path / "v.csv"), [[1, 2, 3], [4, 5, 6]])
    assert read_vectors(tmp_path / "v.csv").dtype == np.float32
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(InvalidInputError, match="non-numeric"):
        read_vectors(tmp_path / "bad.csv")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(InvalidInputError, match="npy"):
        read_vectors(tmp_path / "obj.npy")
    (tmp_path / "ids.txt").write_text("10\n11\n")
    assert read_ids(tmp_path / "ids.txt") == [10, 11]
    with pytest.raises(InvalidInputError, match="2 ids"):
        read_ids(tmp_path / "ids.txt", n=3)
    (tmp_path / "e.csv").write_text("# comment\n1,2\n2,3\n")
    G = read_graph(tmp_path / "e.csv")
    assert G.is_directed() and set(G.edges()) == {(1, 2), (2, 3)}
    (tmp_path / "e2.txt").write_text("a b\nb\n")
    with pytest.raises(InvalidInputError, match="line 2"):
        read_graph(tmp_path / "e2.txt")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="graphml"):
        read_graph(tmp_path / "x.json")


@pytest.mark.slow
def test_benchmarks_run_small():
    q = json.loads(_cli("bench", "rerank-quality", "--quick", "--json").stdout)
    rows = {r["method"]: r for r in q["results"]}
    assert rows["attention (package defaults)"]["recall@10"] > rows["HNSW vector-only"]["recall@10"]
    assert all(0.0 <= r["ndcg@10"] <= 1.0 for r in q["results"])
    s = json.loads(_cli("bench", "rerank", "--n", "3000", "--queries", "50", "--batch", "8", "--stream", "300",
                        "--distinct", "500", "--json").stdout)
    assert s["search_p50_ms"] > 0 and s["batch_qps"] > 0
    # a cache larger than the distinct queries misses exactly once per distinct query drawn
    assert s["stream_searches"] == 300 and 0 < s["stream_distinct_drawn"] < 300
    assert s["cache_hit_rate"] == pytest.approx(1 - s["stream_distinct_drawn"] / 300)
    assert s["cache_size"] == s["stream_distinct_drawn"] and s["cache_speedup"] > 0
    assert abs(s["share_index"] + s["share_expand"] + s["share_score"] + s["share_results"] - 1.0) < 1e-6
