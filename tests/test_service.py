"""The HTTP/JSON service against a real ``ruvector-graph-attn serve`` subprocess on a free port:
every endpoint equals the Python API on the same files; bad bodies get the documented 4xx and the
service keeps serving; the token gate; metrics; limits; timeout; graceful stop."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from _require import import_or_unavailable
from _service import DIM, ds, ref, start_service  # noqa: F401  (ds, ref: shared fixtures)

httpx = import_or_unavailable("httpx")
import_or_unavailable("fastapi")
import_or_unavailable("uvicorn")


@pytest.fixture(scope="module")
def svc(ds):
    s = start_service(ds, "--max-batch", "4", "--max-ids", "50", "--max-k", "100", "--max-body-bytes", "60000")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(svc):
    with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=60) as c:
        yield c


def reranker(ref, scorer):
    import ruvector_graph_attn as rga

    return rga.GraphReranker(ref.index, ref.graph, scorer=scorer, layer=ref.layers.get(scorer))


# ----------------------------------------------------------------------------- equality with the Python API
@pytest.mark.parametrize("scorer", ["attention", "vector", "hyperbolic", "gat"])
def test_search_equals_python_api(client, ref, ds, scorer):
    rr = reranker(ref, scorer)
    q = ds.queries[0].tolist()
    r = client.post("/search", json={"vector": q, "k": 7, "scorer": scorer})
    assert r.status_code == 200, r.text
    want = [h.to_dict() for h in rr.search(q, 7)]
    got = r.json()["results"]
    assert len(got) == 1 and len(want) == 7
    assert got[0] == want                         # ids, ranks, scores and attention weights, exactly
    if scorer != "vector":
        assert got[0][0]["attention"], "the explanation is returned"


def test_search_batch_equals_search_batch(client, ref, ds):
    Q = ds.queries[:4].tolist()
    r = client.post("/search", json={"vectors": Q, "k": 5, "temperature": 0.5, "blend": 0.6, "hops": 2})
    assert r.status_code == 200, r.text
    import ruvector_graph_attn as rga

    rr = rga.GraphReranker(ref.index, ref.graph, temperature=0.5, blend=0.6, hops=2)
    want = [[h.to_dict() for h in hits] for hits in rr.search_batch(Q, 5)]
    assert r.json()["results"] == want
    # parameters matter: the default re-ranker gives other scores
    default = [[h.to_dict() for h in hits] for hits in ref.default.search_batch(Q, 5)]
    assert default != want


@pytest.mark.parametrize("method", ["attention", "mean", "max"])
def test_embed_equals_python_api(client, ref, ds, method):
    ids = [3, 17, 250]
    body = {"ids": ids, "method": method, "hops": 1}
    if method == "attention":
        body["query"] = ds.queries[1].tolist()
    r = client.post("/embed", json=body)
    assert r.status_code == 200, r.text
    want = ref.default.embed_subgraph(ids, method=method, hops=1, query=body.get("query"))
    out = r.json()
    assert out["dim"] == DIM
    np.testing.assert_array_equal(np.asarray(out["vector"]), want.astype(np.float64))


def test_health_is_open_and_reports_what_is_loaded(svc, ds):
    r = httpx.get(svc.url + "/health")               # no token needed
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["dim"] == DIM and h["index_size"] == 600
    assert h["graph"] == "NetworkXGraph" and h["default_scorer"] == "attention"
    assert "gat" in h["scorers"] and "sage" not in h["scorers"]     # only the loaded layer
    api = httpx.get(svc.url + "/openapi.json").json()
    assert api["paths"].keys() >= {"/search", "/rerank", "/embed", "/traverse", "/health", "/metrics"}
    for path, model in (("/search", "Search"), ("/rerank", "Rerank"), ("/embed", "Embed"), ("/traverse", "Traverse")):
        op = api["paths"][path]["post"]
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{model}Request")
        assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{model}Response")
        assert "413" in op["responses"] and "401" in op["responses"]


# ----------------------------------------------------------------------------- bad requests
def _bad_cases(ds):
    q = ds.queries[0].tolist()
    return [
        ("wrong dimension", "/search", {"vector": q[:5]}, 422, "DimensionMismatchError"),
        ("NaN literal", "/search", b'{"vector": [NaN, 1.0]}', 422, "InvalidInputError"),
        ("Infinity in a batch", "/search", b'{"vectors": [[1, Infinity]]}', 422, "InvalidInputError"),
        ("malformed JSON", "/search", b'{"vector": [1.0, 2.0', 400, "InvalidInputError"),
        ("not an object", "/search", b'[1, 2, 3]', 422, "InvalidInputError"),
        ("neither vector nor vectors", "/search", {"k": 3}, 422, "InvalidInputError"),
        ("both vector and vectors", "/search", {"vector": q, "vectors": [q]}, 422, "InvalidInputError"),
        ("unknown field", "/search", {"vector": q, "kk": 3}, 422, "InvalidInputError"),
        ("k = 0", "/search", {"vector": q, "k": 0}, 422, "InvalidInputError"),
        ("k over the limit", "/search", {"vector": q, "k": 101}, 413, "InputTooLargeError"),
        ("oversized batch", "/search", {"vectors": [q] * 5}, 413, "InputTooLargeError"),
        ("unknown scorer", "/search", {"vector": q, "scorer": "magic"}, 422, "ConfigError"),
        ("layer not loaded", "/search", {"vector": q, "scorer": "sage"}, 409, "NotFittedError"),
        ("negative temperature", "/search", {"vector": q, "temperature": -1.0}, 422, "InvalidInputError"),
        ("unknown ids", "/embed", {"ids": [1, 99999, "nope"]}, 404, "UnknownIdError"),
        ("empty ids", "/embed", {"ids": []}, 422, "InvalidInputError"),
        ("too many ids", "/embed", {"ids": list(range(51))}, 413, "InputTooLargeError"),
        ("body over the size limit", "/search", {"vectors": [[0.5] * 4000] * 4}, 413, "InputTooLargeError"),
    ]


def test_bad_bodies_give_documented_4xx_and_service_keeps_serving(client, ref, ds):
    for what, path, body, status, error in _bad_cases(ds):
        r = client.post(path, content=body) if isinstance(body, bytes) else client.post(path, json=body)
        assert r.status_code == status, (what, r.status_code, r.text)
        out = r.json()
        assert out["error"] == error, (what, out)
        assert out["status"] == status and out["message"], what
        if error == "UnknownIdError":
            assert 99999 in out["ids"] and "nope" in out["ids"]
    # a chunked body (no content-length) over the limit is cut off while it is read
    def chunks():
        yield b'{"vectors": ['
        for _ in range(2000):
            yield b"[" + b",".join([b"0.5"] * 16) + b"],"
        yield b"[0.5]]}"

    r = client.post("/search", content=chunks())
    assert r.status_code == 413 and r.json()["error"] == "InputTooLargeError"
    q = ds.queries[2].tolist()
    r = client.post("/search", json={"vector": q, "k": 5})
    assert r.status_code == 200
    assert r.json()["results"][0] == [h.to_dict() for h in ref.default.search(q, 5)]


def test_token_gate(svc, ds):
    q = ds.queries[0].tolist()
    with httpx.Client(base_url=svc.url, timeout=60) as c:
        for headers in ({}, {"authorization": "Bearer " + "x" * 32}, {"authorization": svc.token},
                        {"authorization": "Basic " + svc.token}, {"authorization": "Bearer " + svc.token + "x"}):
            for method, path in (("POST", "/search"), ("POST", "/embed"), ("GET", "/metrics")):
                r = c.request(method, path, json={"vector": q}, headers=headers)
                assert r.status_code == 401, (headers.keys(), path)
                assert r.json()["error"] == "AuthenticationError"
                assert r.headers["www-authenticate"] == "Bearer"
                assert svc.token not in r.text
        assert c.post("/search", json={"vector": q}, headers={"authorization": "bearer " + svc.token}).status_code == 200
        assert c.get("/docs").status_code == 200                    # the API description is open


def test_metrics_count_requests_errors_and_latency(client):
    before = client.get("/metrics").text
    client.post("/embed", json={"ids": [123456]})                  # one UnknownIdError
    client.post("/embed", json={"ids": [1]})
    text = client.get("/metrics").text
    assert text.endswith("\n")

    def val(t, series):
        m = re.search(r"^" + re.escape(series) + r" (\S+)$", t, re.M)
        return float(m.group(1)) if m else 0.0

    assert val(text, 'rga_requests_total{endpoint="/embed",status="404"}') == \
        val(before, 'rga_requests_total{endpoint="/embed",status="404"}') + 1
    assert val(text, 'rga_errors_total{endpoint="/embed",error="UnknownIdError"}') == \
        val(before, 'rga_errors_total{endpoint="/embed",error="UnknownIdError"}') + 1
    n_embed = sum(float(v) for v in re.findall(r'^rga_requests_total\{endpoint="/embed",status="\d+"\} (\S+)$', text, re.M))
    assert val(text, 'rga_request_duration_seconds_count{endpoint="/embed"}') == n_embed
    assert val(text, 'rga_request_duration_seconds_bucket{endpoint="/embed",le="+Inf"}') == n_embed
    buckets = [float(v) for v in re.findall(r'^rga_request_duration_seconds_bucket\{endpoint="/embed",le="[^"]+"\} (\S+)$',
                                            text, re.M)]
    assert buckets == sorted(buckets)                               # cumulative
    assert val(text, "rga_process_resident_memory_bytes") > 10e6
    for line in text.splitlines():                                  # exposition format
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or \
            re.match(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$', line), line


def test_token_never_in_logs_or_command_line(svc, client, ds):
    client.post("/search", json={"vector": ds.queries[0].tolist()})
    httpx.post(svc.url + "/search", json={}, headers={"authorization": "Bearer wrong-token-wrong-token"})
    assert svc.token not in svc.output()
    with open(f"/proc/{svc.proc.pid}/cmdline", "rb") as f:
        assert svc.token.encode() not in f.read()
    assert "POST /search" in svc.output()                          # the access log is on


# ----------------------------------------------------------------------------- start-up refusals
def test_serve_refuses_to_start_without_a_token(ds, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "RGA_SERVICE_TOKEN"}
    base = [sys.executable, "-m", "ruvector_graph_attn.cli", "serve", "--index", str(ds.index_dir),
            "--graph", str(ds.graph_file), "--port", "0"]
    r = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "RGA_SERVICE_TOKEN" in r.stderr and "--no-auth" in r.stderr
    r = subprocess.run(base + ["--token", "secret-on-the-command-line"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr    # no token option exists
    r = subprocess.run(base, capture_output=True, text=True, env=dict(env, RGA_SERVICE_TOKEN="short"), timeout=300)
    assert r.returncode == 1 and "at least 16 characters" in r.stderr


@pytest.mark.slow
def test_timeout_and_graceful_shutdown(ds):
    s = start_service(ds, "--timeout", "0.000001")
    try:
        q = ds.queries[0].tolist()
        r = httpx.post(s.url + "/search", json={"vector": q}, headers=s.headers(), timeout=60)
        assert r.status_code == 504 and r.json()["error"] == "RequestTimeoutError"
        r = httpx.get(s.url + "/health", timeout=60)                 # still serving
        assert r.status_code == 200
    finally:
        rc = s.stop()
    assert rc == 0
    out = s.output()
    assert "Application shutdown complete" in out and "service stopped" in out


def test_no_auth_is_explicit_and_serves_without_a_token(ds):
    s = start_service(ds, auth=False)
    try:
        r = httpx.post(s.url + "/search", json={"vector": ds.queries[0].tolist(), "k": 2}, timeout=60)
        assert r.status_code == 200 and len(r.json()["results"][0]) == 2
    finally:
        assert s.stop() == 0


# ----------------------------------------------------------------------------- rerank and filter
def test_rerank_equals_python_api(client, ref, ds):
    q = ds.queries[4].tolist()
    ids = [int(i) for i in ref.index.search(ds.queries[4], 30)[0]][::-1]     # another retriever's order
    scores = [1.0 - 0.01 * i for i in range(30)]
    for body, kw in (({"ids": ids, "scores": scores}, {"candidate_scores": scores}), ({"ids": ids}, {})):
        r = client.post("/rerank", json={"vector": q, "k": 6, **body})
        assert r.status_code == 200, r.text
        want = [h.to_dict() for h in ref.default.rerank(q, ids, k=6, **kw)]
        assert r.json()["results"] == want
    r = client.post("/rerank", json={"vector": q, "ids": ids, "scores": scores[:3]})
    assert r.status_code == 422 and r.json()["error"] == "DimensionMismatchError"
    r = client.post("/rerank", json={"vector": q, "ids": list(range(51))})
    assert r.status_code == 413 and r.json()["error"] == "InputTooLargeError"


def test_search_filter_equals_python_api(client, ref, ds):
    q = ds.queries[5].tolist()
    allow = list(range(0, 600, 3))
    r = client.post("/search", json={"vector": q, "k": 5, "filter": allow[:50]})
    assert r.status_code == 200, r.text
    got = r.json()["results"][0]
    assert got == [h.to_dict() for h in ref.default.search(q, 5, filter=allow[:50])]
    assert got and all(h["id"] in set(allow[:50]) for h in got)


def test_traverse_equals_python_api(client, ref, ds):
    q = ds.queries[1].tolist()
    steps = [{"direction": "out", "top_k": 2}, {"direction": "both", "top_k": 3}]
    r = client.post("/traverse", json={"start_ids": [4, 40], "steps": steps, "query": q, "temperature": 0.7})
    assert r.status_code == 200, r.text
    want = ref.graph.traverse([4, 40], steps, query=q, temperature=0.7)
    got = r.json()["paths"]
    assert len(got) == len(want) > 2
    assert got == [{"nodes": list(p.nodes), "weights": list(p.weights), "score": p.score, "rank": p.rank}
                   for p in want]
    r = client.post("/traverse", json={"start_ids": [4], "steps": [{"top_k": 1}] * 9})
    assert r.status_code == 413 and r.json()["error"] == "InputTooLargeError"
    r = client.post("/traverse", json={"start_ids": [4], "steps": [{"top_k": 0}]})
    assert r.status_code == 422 and r.json()["error"] == "InvalidInputError"


@pytest.mark.slow
def test_bench_serve_small_run():
    r = subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", "bench", "serve", "--n", "800", "--dim", "16",
                        "--requests", "120", "--inproc", "50", "--concurrency", "1,4", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert [lv["concurrency"] for lv in res["levels"]] == [1, 4]
    for lv in res["levels"]:
        assert lv["requests"] == 120 and lv["errors"] == 0 and lv["first_answer_equals_inproc"]
        assert lv["p99_ms"] >= lv["p50_ms"] > 0 and lv["rss_end_mb"] > 0
    assert res["zero_errors"] and "overhead_p50_ms" in res


def test_concurrent_requests_equal_sequential_python_api(svc, ref, ds):
    """Requests run on several worker threads at once; each answer equals the Python API's."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(ds.queries[i % 8].tolist(), ("attention", "hyperbolic", "gat", "vector")[i % 4]) for i in range(32)]
    rrs = {s: reranker(ref, s) for s in ("attention", "hyperbolic", "gat", "vector")}
    want = [[h.to_dict() for h in rrs[s].search(q, 6)] for q, s in jobs]

    def call(job):
        q, s = job
        with httpx.Client(base_url=svc.url, headers=svc.headers(), timeout=120) as c:
            return c.post("/search", json={"vector": q, "k": 6, "scorer": s})

    with ThreadPoolExecutor(16) as ex:
        got = list(ex.map(call, jobs))
    assert [r.status_code for r in got] == [200] * 32
    assert [r.json()["results"][0] for r in got] == want


def test_content_types_and_body_forms_answer_as_before(client, ref, ds):
    """The POST endpoints parse JSON bodies straight from the bytes; every other form of body
    still gets FastAPI's answers (JSON content types with parameters or a +json suffix, no
    content type, a non-JSON content type, an empty body, duplicate keys, non-ASCII ids)."""
    q = ds.queries[3].tolist()
    want = [h.to_dict() for h in ref.default.search(q, 4)]
    body = json.dumps({"vector": q, "k": 4}).encode()
    for ctype in ("application/json", "application/json; charset=utf-8", "Application/JSON",
                  "application/vnd.rga+json", None):
        headers = {} if ctype is None else {"content-type": ctype}
        r = client.post("/search", content=body, headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", (ctype, r.text)
        assert r.json()["results"][0] == want, ctype
    r = client.post("/search", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 422 and r.json()["error"] == "InvalidInputError"
    r = client.post("/search", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "InvalidInputError"
    assert "Field required" in r.json()["message"]
    r = client.post("/search", content=b'{"vector": [1.0], "k": 3, "vector": ' + json.dumps(q).encode() + b"}")
    assert r.status_code == 200 and len(r.json()["results"][0]) == 3      # the last duplicate wins, as json.loads
    r = client.post("/embed", content=json.dumps({"ids": [1, "n\u00e9"]}).encode())
    assert r.status_code == 404 and r.json()["error"] == "UnknownIdError" and r.json()["ids"] == ["n\u00e9"]
