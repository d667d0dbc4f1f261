"""Every script in examples/ runs in a subprocess (as a user runs it) and prints the values
it promises: checks against numpy references, hand-computed paths, round trips."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str, env=None) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300,
                          env=env, cwd=EXAMPLES.parent)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def _server_env(uri, auth) -> dict:
    """The environment an example reads its Neo4j server from."""
    env = {k: v for k, v in os.environ.items() if k not in ("NEO4J_USER", "NEO4J_PASSWORD")}
    env["NEO4J_URI"] = uri
    if auth is not None:
        env["NEO4J_USER"], env["NEO4J_PASSWORD"] = auth
    return env


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not found in:\n{text}"
    return float(m.group(1))


def test_every_example_is_tested():
    tested = {"rerank_networkx.py", "pyg_weights.py", "train_node_classification.py", "geometric_sparse.py",
              "neo4j_traversal.py", "attention_basics.py", "subgraph_embeddings.py", "cypher_subgraph.py"}
    tested |= {"langchain_graph_rerank.py", "llamaindex_graph_rerank.py", "graphrag_neo4j.py"}  # test_examples_integrations.py
    assert {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")} == tested   # _*.py: shared helpers


def test_rerank_networkx():
    out = _run("rerank_networkx.py")
    m = re.search(r"recall@10 over 100 queries: vector-only ([\d.]+), re-ranked ([\d.]+)", out)
    assert m, out
    vec, rer = float(m.group(1)), float(m.group(2))
    assert 0 < vec < rer <= 1 and rer / vec > 1.2          # the graph helps on this data
    m = re.search(r"first hit sum to ([\d.]+) over (\d+) nodes \(the hit and its neighbours: (\d+)\)", out)
    assert m and float(m.group(1)) == pytest.approx(1.0, abs=1e-6) and m.group(2) == m.group(3)
    assert "search(q) equals search_batch(Q)[0]: True" in out
    rows = re.findall(r"^\s+\*?\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+was\s+(\d+)\s+\[", out, flags=re.M)
    assert len(rows) == 5
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_pyg_weights():
    out = _run("pyg_weights.py")
    assert "output shape (7, 8), attention over 16 edges (with self loops) x 2 heads" in out
    assert _num(r"numpy equations: ([\d.e+-]+)", out) < 1e-5
    # node 3 has in-edges from 2 and 0 plus its self loop
    m = re.search(r"attention into node 3 \(head 0\): ([\d., ]+) \(sum ([\d.]+)\)", out)
    assert m and len(m.group(1).split(",")) == 3 and float(m.group(2)) == pytest.approx(1.0, abs=1e-6)
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        assert "PyG comparison skipped" in out
    else:
        assert _num(r"difference to torch_geometric [\w.+]+: ([\d.e+-]+)", out) < 1e-5


def test_train_node_classification():
    out = _run("train_node_classification.py")
    assert "600 nodes, 2400 directed edges, 300 features, 7 classes, 140 training labels" in out
    m = re.search(r"first-epoch train loss ([\d.]+), last ([\d.]+)", out)
    assert m and float(m.group(2)) < float(m.group(1))
    assert float(m.group(1)) == pytest.approx(math.log(7), abs=0.15)   # untrained: ~uniform over 7 classes
    acc = _num(r"test accuracy: ([\d.]+)", out)
    chance = _num(r"majority class: ([\d.]+)", out)
    assert acc > 0.6 and acc > 2 * chance
    assert "reloaded model gives identical logits: True" in out


def test_geometric_sparse():
    out = _run("geometric_sparse.py")
    m = re.search(r"d\(0, \(0.6, 0\)\) = ([\d.]+)", out)
    assert m and float(m.group(1)) == pytest.approx(2 * math.atanh(0.6), abs=1e-6)
    assert _num(r"logmap0\(expmap0\(v\)\) == v: max abs error ([\d.e+-]+)", out) < 1e-6
    w = [float(v) for v in re.search(r"geometric attention weights: ([\d., ]+)", out).group(1).split(",")]
    assert sum(w) == pytest.approx(1.0, abs=2e-4) and w[1] < 0.01 and w[2] < 0.01 and min(w[0], w[3]) > 0.3
    assert _num(r"softmax\(-d\^2/T\) in numpy: ([\d.e+-]+)", out) < 1e-9
    assert "output equals weights @ values: True" in out
    # 64 queries x 7 keys in the window, minus the 2 * (3 + 2 + 1) cut off at the ends
    assert "436 of 4096 query-key pairs scored" in out
    assert _num(r"masked dense numpy: ([\d.e+-]+)", out) < 1e-5


@pytest.mark.neo4j
def test_neo4j_traversal(neo4j_server):
    uri, auth, _ = neo4j_server
    env = _server_env(uri, auth)
    out = _run("neo4j_traversal.py", env=env)
    assert re.search(r"loaded 7 nodes under label RgaExample\w+", out)
    # by hand: logits <q, x_v> / sqrt(2); from 1 the out-neighbours 2, 3, 4 score s, 0, -s (keep 2);
    # from 2: 5, 6 score 2s, 0 (1 is on the path); from 3: only 7
    s = 1 / math.sqrt(2)
    z1 = math.exp(s) + 1 + math.exp(-s)
    w12, w13 = math.exp(s) / z1, 1 / z1
    w25 = math.exp(2 * s) / (math.exp(2 * s) + 1)
    paths = re.findall(r"path ([\d >-]+): score ([\d.]+), step weights ([\d., ]+)", out)
    assert [p[0].strip() for p in paths] == ["1 -> 2 -> 5", "1 -> 3 -> 7"]
    assert float(paths[0][1]) == pytest.approx(w12 * w25, abs=1e-6)
    assert float(paths[1][1]) == pytest.approx(w13 * 1.0, abs=1e-6)
    assert [float(v) for v in paths[0][2].split(",")] == pytest.approx([w12, w25], abs=1e-6)
    assert "nodes [1, 2, 3, 4]" in out                        # 1's neighbours in both directions
    hits = re.search(r"HNSW candidates \+ Neo4j expansion: (.+)", out).group(1).split("; ")
    assert len(hits) == 3
    # the example deleted its label
    from neo4j import GraphDatabase

    label = re.search(r"under label (RgaExample\w+)", out).group(1)
    with GraphDatabase.driver(uri, auth=auth) as d:
        assert d.execute_query(f"MATCH (n:`{label}`) RETURN count(n) AS c").records[0]["c"] == 0


def test_neo4j_traversal_without_server_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "neo4j_traversal.py")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 1 and "set NEO4J_URI" in proc.stderr


def test_attention_basics():
    out = _run("attention_basics.py")
    assert re.search(r"one query over 6 keys: weights sum to 1\.000000, largest on key \d", out)
    assert _num(r"max \|weights - numpy softmax\|: ([\d.e+-]+)", out) < 1e-6
    assert _num(r"max \|output - weights @ V\|: ([\d.e+-]+)", out) < 1e-5
    assert "batch of 3 equals three single queries: True" in out
    assert "multi-head output (1, 3, 8), per-head weights (1, 2, 3, 5)" in out
    assert _num(r"multi-head.*\n.*max \|output - numpy\|: ([\d.e+-]+)", out) < 1e-5
    assert _num(r"max \|weights - numpy\|: ([\d.e+-]+)", out) < 1e-6
    assert "weight on the padded key: 0.0" in out


def test_subgraph_embeddings():
    out = _run("subgraph_embeddings.py")
    assert re.search(r"1-hop subgraph of \[0, 1, 2\]: \d+ nodes", out)
    assert "mean embedding equals the mean of the subgraph's features: True" in out
    assert _num(r"attention embedding, max \|difference to numpy\|: ([\d.e+-]+)", out) < 1e-5
    m = re.search(r"same topic ([-\d.]+), different topics ([-\d.]+)", out)
    assert m and float(m.group(1)) > float(m.group(2)) + 0.3


@pytest.mark.neo4j
def test_cypher_subgraph(neo4j_server):
    uri, auth, _ = neo4j_server
    env = _server_env(uri, auth)
    out = _run("cypher_subgraph.py", env=env)
    # paths of length 1..2 out of 1: 1->2, 1->3, 1->2->4, 1->3->4; node 5 and 6 are 3+ hops away
    assert "nodes [1, 2, 3, 4] with edges [(1, 2), (1, 3), (2, 4), (3, 4)]" in out
    m = re.search(r"attention into node 4 \(head 0\): \[\(2, ([\d.]+)\), \(3, ([\d.]+)\), \(4, ([\d.]+)\)\], "
                  r"sum ([\d.]+)", out)
    assert m and float(m.group(4)) == pytest.approx(1.0, abs=1e-3)
    assert "GAT output (4, 8)" in out
    assert re.search(r"attention-pooled subgraph embedding \(1, 8\): weights sum to 1\.0000, equals weights @ h: True",
                     out)
