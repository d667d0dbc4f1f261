"""``ruvector-graph-attn demo --neo4j``: the demo's dataset loaded into a real Neo4j server and
expanded by Cypher must give exactly the NetworkX demo's ranking (same seed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest


def _cli(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", *args],
                          capture_output=True, text=True, timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def _assert_same_ranking(neo: dict, ref: dict) -> None:
    assert ref["dataset"]["graph"] == {"source": "networkx"}
    assert neo["summary"]["recall_vector"] == ref["summary"]["recall_vector"]
    assert neo["summary"]["recall_reranked"] == ref["summary"]["recall_reranked"]
    assert len(neo["queries"]) == len(ref["queries"]) >= 2
    for qn, qr in zip(neo["queries"], ref["queries"]):
        assert qn["relevant"] == qr["relevant"]
        assert [h["id"] for h in qn["vector"]] == [h["id"] for h in qr["vector"]]
        assert [(h["id"], h["rank"], h["vector_rank"]) for h in qn["reranked"]] == \
               [(h["id"], h["rank"], h["vector_rank"]) for h in qr["reranked"]]
        for hn, hr in zip(qn["reranked"], qr["reranked"]):
            # summation order differs (Neo4j rows come back in another order): float32 rounding only
            assert hn["score"] == pytest.approx(hr["score"], abs=1e-5)
            assert hn["vector_score"] == hr["vector_score"]
            assert dict(map(tuple, hn["attention"])) == pytest.approx(dict(map(tuple, hr["attention"])), abs=1e-5)
    # the re-ranking actually moved something (otherwise equality would prove little)
    moved = [h for q in ref["queries"] for h in q["reranked"] if h["rank"] != h["vector_rank"]]
    assert moved


def _count(uri, auth, label) -> tuple[int, int]:
    from neo4j import GraphDatabase

    with GraphDatabase.driver(uri, auth=auth) as d:
        nodes = d.execute_query(f"MATCH (n:`{label}`) RETURN count(n) AS c").records[0]["c"]
        cons = d.execute_query("SHOW CONSTRAINTS YIELD labelsOrTypes WHERE $l IN labelsOrTypes RETURN count(*) AS c",
                               l=label).records[0]["c"]
    return nodes, cons


@pytest.mark.neo4j
@pytest.mark.slow
def test_demo_neo4j_equals_networkx(neo4j_server):
    uri, auth, _ = neo4j_server
    env = dict(os.environ)
    env.pop("NEO4J_PASSWORD", None)
    extra = []
    secret = None
    if auth is not None:
        secret = auth[1]
        env["RGA_TEST_DEMO_PW"] = secret
        extra = ["--neo4j-user", auth[0], "--neo4j-password-env", "RGA_TEST_DEMO_PW"]
    label = "RgaDemoTest" + uuid.uuid4().hex[:8]
    common = ["demo", "--json", "--queries", "3", "--n", "1200", "--seed", "7"]
    proc = _cli(*common, "--neo4j", uri, "--neo4j-label", label, *extra, env=env)
    neo = json.loads(proc.stdout)
    ref = json.loads(_cli(*common).stdout)
    g = neo["dataset"]["graph"]
    assert g["source"] == "neo4j" and g["label"] == label and g["server"] == "external"
    assert "@" not in g["uri"] and (g["uri"] == uri or "@" in uri)
    assert neo["dataset"]["papers"] == 1200 and neo["dataset"]["citations"] == ref["dataset"]["citations"]
    _assert_same_ranking(neo, ref)
    if secret:
        assert secret not in proc.stdout and secret not in proc.stderr
    assert "Received notification" not in proc.stderr      # driver notices are not shown to demo users
    # the demo cleaned up after itself: no nodes, no constraint left under its label
    assert _count(uri, auth, label) == (0, 0)

    # the human-readable table names the Neo4j source and shows the same first re-ranked hit
    txt = _cli("demo", "--queries", "1", "--n", "1200", "--seed", "7", "--neo4j", uri, *extra, env=env).stdout
    assert "Graph in Neo4j at" in txt and "neighbourhoods expanded by Cypher" in txt
    first = ref["queries"][0]["reranked"][0]["id"]
    assert f"paper {first}" in txt
    if secret:
        assert secret not in txt

    # --neo4j-keep keeps the papers (and the constraint) for inspection
    label2 = "RgaDemoKeep" + uuid.uuid4().hex[:8]
    _cli("demo", "--json", "--queries", "1", "--n", "300", "--neo4j", uri, "--neo4j-label", label2,
         "--neo4j-keep", *extra, env=env)
    try:
        assert _count(uri, auth, label2) == (300, 1)
        # a label that already holds nodes is refused before anything is written or deleted
        proc = _cli("demo", "--json", "--queries", "1", "--n", "300", "--neo4j", uri, "--neo4j-label", label2,
                    *extra, env=env, check=False)
        assert proc.returncode == 1 and "already has 300 nodes" in proc.stderr
        assert _count(uri, auth, label2) == (300, 1)
    finally:
        from neo4j import GraphDatabase

        with GraphDatabase.driver(uri, auth=auth) as d:
            d.execute_query(f"MATCH (n:`{label2}`) DETACH DELETE n")
            for r in d.execute_query("SHOW CONSTRAINTS YIELD name, labelsOrTypes WHERE $l IN labelsOrTypes "
                                     "RETURN name", l=label2).records:
                d.execute_query(f"DROP CONSTRAINT `{r['name']}`")


@pytest.mark.neo4j
@pytest.mark.slow
def test_demo_neo4j_start_throwaway_server(neo4j_server):
    # the fixture is requested only so the test is skipped / failed like the other Neo4j tests
    # when no server can be started here; the demo starts (and stops) its own
    uri, auth, srv = neo4j_server
    if srv is None:
        pytest.skip("external Neo4j selected (NEO4J_URI); --neo4j start needs the local launcher")
    common = ["demo", "--json", "--queries", "2", "--n", "600", "--seed", "3"]
    proc = _cli(*common, "--neo4j", "start")
    neo = json.loads(proc.stdout)
    assert neo["dataset"]["graph"]["server"] == "throwaway (--neo4j start)"
    assert "starting a throwaway Neo4j server" in proc.stderr
    _assert_same_ranking(neo, json.loads(_cli(*common).stdout))


def test_demo_refuses_password_on_command_line():
    secret = "hunter2-Sekr1t"
    proc = _cli("demo", "--neo4j", "bolt://127.0.0.1:1", "--neo4j-password", secret, check=False)
    assert proc.returncode == 2 and "not accepted on the command line" in proc.stderr
    assert secret not in proc.stderr and secret not in proc.stdout
    proc = _cli("demo", "--neo4j", "bolt://127.0.0.1:1", f"--neo4j-password={secret}", check=False)
    assert proc.returncode == 2 and secret not in proc.stderr + proc.stdout
    # a password mistakenly given as the variable *name* is not echoed either
    proc = _cli("demo", "--neo4j", "bolt://127.0.0.1:1", "--neo4j-password-env", "pa$$-w0rd!", check=False)
    assert proc.returncode == 1 and "NAME of an environment variable" in proc.stderr
    assert "pa$$-w0rd!" not in proc.stderr
    env = {k: v for k, v in os.environ.items() if k != "RGA_UNSET_PW_VAR"}
    proc = _cli("demo", "--neo4j", "bolt://127.0.0.1:1", "--neo4j-password-env", "RGA_UNSET_PW_VAR",
                env=env, check=False)
    assert proc.returncode == 1 and "RGA_UNSET_PW_VAR" in proc.stderr and "is not set" in proc.stderr


def test_demo_neo4j_unreachable_names_uri():
    env = dict(os.environ)
    env["RGA_TEST_PW"] = "not-a-real-password"
    proc = _cli("demo", "--neo4j", "bolt://127.0.0.1:1", "--neo4j-password-env", "RGA_TEST_PW", "--n", "200",
                env=env, check=False)
    assert proc.returncode == 1 and "bolt://127.0.0.1:1" in proc.stderr
    assert "not-a-real-password" not in proc.stderr
