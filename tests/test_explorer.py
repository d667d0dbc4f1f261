"""The explorer page at ``/``: served without a token, self-contained, and working in a real headless
Chromium against a real service (rows and SVG checked against the Python API; a screenshot is
kept as a test artifact)."""
from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from _require import import_or_unavailable, unavailable
from _service import ds, ref, start_service, svc  # noqa: F401  (ds, ref, svc: shared fixtures)

httpx = import_or_unavailable("httpx")
import_or_unavailable("fastapi")

ARTIFACTS = Path(os.environ.get("RGA_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / ".test-artifacts"))


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    unavailable("headless Chromium", "no chromium on PATH (Debian: apt-get install chromium)")


def _browser(url: str, *mode: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--virtual-time-budget=30000", *mode, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class _Dom(html.parser.HTMLParser):
    """Rows of the results table, the SVG's hit/neighbour groups and edges, the status line."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.hits: list[tuple[str, str]] = []
        self.neighbours: list[str] = []
        self.edges: list[dict] = []
        self.state = None
        self.status = ""
        self._cell = None
        self._in_tbody = False
        self._in_status = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.state = a.get("data-state")
        if tag == "tbody":
            self._in_tbody = True
        if tag == "tr" and self._in_tbody:
            self.rows.append([])
        if tag == "td" and self._in_tbody:
            self._cell = ""
        if tag == "g" and a.get("class") == "hit":
            self.hits.append((a["data-id"], a["data-rank"]))
        if tag == "g" and a.get("class") == "nb":
            self.neighbours.append(a["data-id"])
        if tag == "line":
            self.edges.append(a)
        if a.get("id") == "status":
            self._in_status = True

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None
        if tag == "tbody":
            self._in_tbody = False
        if tag == "div":
            self._in_status = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in_status:
            self.status += data


@pytest.fixture(scope="module")
def open_svc(ds):
    s = start_service(ds, auth=False)
    yield s
    s.stop()


def test_page_is_open_and_self_contained(svc):
    r = httpx.get(svc.url + "/", timeout=60)                   # no token
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert "<svg" in page and 'id="results"' in page
    # nothing is fetched from elsewhere: no external scripts, styles, fonts or images
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    # the API itself still needs the token
    assert httpx.post(svc.url + "/vectors", json={"ids": [1]}, timeout=60).status_code == 401


def test_vectors_endpoint(svc, ref):
    r = httpx.post(svc.url + "/vectors", json={"ids": [3, 7]}, headers=svc.headers(), timeout=60)
    assert r.status_code == 200
    body = r.json()
    np.testing.assert_array_equal(np.asarray(body["vectors"], np.float32), ref.index.get([3, 7]))
    assert body["dim"] == ref.index.dim
    bad = httpx.post(svc.url + "/vectors", json={"ids": [10 ** 9]}, headers=svc.headers(), timeout=60)
    assert bad.status_code == 404 and bad.json()["error"] == "UnknownIdError"
    empty = httpx.post(svc.url + "/vectors", json={"ids": []}, headers=svc.headers(), timeout=60)
    assert empty.status_code == 422


def test_explorer_in_headless_chromium(open_svc, ref):
    import ruvector_graph_attn as rga

    node, k = 5, 8
    url = f"{open_svc.url}/?node={node}&k={k}&scorer=attention&run=1"
    r = _browser(url, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = _Dom()
    dom.feed(r.stdout)
    assert dom.state == "done", (dom.status, r.stdout[-2000:])
    q = ref.index.get([node])[0]
    expected = rga.GraphReranker(ref.index, ref.graph, scorer="attention").search(q, k)
    plain = rga.GraphReranker(ref.index, ref.graph, scorer="vector").search(q, k)
    assert len(dom.rows) == k
    assert [row[1] for row in dom.rows] == [str(h.id) for h in expected]           # re-ranked ids
    assert [row[3] for row in dom.rows] == [str(h.vector_rank + 1) for h in expected]
    assert [row[5] for row in dom.rows] == [str(h.id) for h in plain]               # vector-only side
    assert [float(row[2]) for row in dom.rows] == pytest.approx([h.score for h in expected], abs=1e-4)
    # the SVG: one group per hit (with its rank), neighbours, one edge per drawn attention weight
    assert dom.hits == [(str(h.id), str(h.rank + 1)) for h in expected]
    drawn = {(str(h.id), str(n)) for h in expected for n, _ in h.top_attention(4)}
    assert {(e["data-source"], e["data-target"]) for e in dom.edges} == drawn
    weights = {(str(h.id), str(n)): w for h in expected for n, w in h.top_attention(4)}
    for e in dom.edges:
        assert float(e["data-weight"]) == pytest.approx(weights[(e["data-source"], e["data-target"])], abs=1e-4)
    assert set(dom.neighbours) == {n for _, n in drawn} - {str(h.id) for h in expected}
    # a screenshot for people to look at
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "explorer.png"
    r = _browser(url, f"--screenshot={shot}", "--window-size=1400,900")
    assert r.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explorer_shows_errors(open_svc):
    r = _browser(f"{open_svc.url}/?node=999999&run=1", "--dump-dom")
    dom = _Dom()
    dom.feed(r.stdout)
    assert dom.state == "error" and "UnknownIdError" in dom.status and not dom.rows
