"""Shared by the service, JS-client and Neo4j-plugin tests: a small dataset written as files
(index directory, edge list, a GAT checkpoint), the in-process Python reference over the same
files, and a real ``ruvector-graph-attn serve`` subprocess on a free port."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from _require import unavailable

N, DIM = 600, 16
READY = "RGA-SERVICE-READY "


@dataclass
class Dataset:
    root: Path
    index_dir: Path
    graph_file: Path
    layer_file: Path
    queries: np.ndarray
    edges: np.ndarray


def make_dataset(root: Path) -> Dataset:
    import ruvector_graph_attn as rga
    from ruvector_graph_attn.graph import GATConv
    from ruvector_graph_attn.rerank.synthetic import latent_citation_graph

    data = latent_citation_graph(n=N, dim=DIM, latent_dim=4, n_topics=6, degree=6, seed=3)
    index = rga.HNSWIndex(dim=DIM, space="cosine", num_threads=1)
    index.add(np.arange(N), data.x)
    index_dir = root / "index"
    index.save(index_dir)
    graph_file = root / "graph.edgelist"
    graph_file.write_text("".join(f"{s} {t}\n" for s, t in data.edges.T.tolist()))
    layer = GATConv(DIM, DIM, heads=1)
    layer_file = root / "gat.ckpt"
    rga.save_checkpoint(layer, layer_file)
    Q, _, _ = data.queries(8, 10, seed=11)
    return Dataset(root, index_dir, graph_file, layer_file, Q.astype(np.float32), data.edges)


def reference_engine(ds: Dataset, **kw):
    """The in-process objects built from the same files the service loads."""
    from ruvector_graph_attn.commands.serve import build_parser, load_engine

    args = build_parser().parse_args(["--index", str(ds.index_dir), "--graph", str(ds.graph_file),
                                      "--layer", f"gat={ds.layer_file}", *kw.get("extra", [])])
    return load_engine(args)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    """The dataset's files (a fixture: import it into a test module to use it)."""
    return make_dataset(tmp_path_factory.mktemp("svc"))


@pytest.fixture(scope="module")
def ref(ds):
    """The in-process engine over ``ds`` (index, graph, layers, default re-ranker)."""
    return reference_engine(ds)


@pytest.fixture(scope="module")
def svc(ds):
    """A service with the default settings and a token (import it into a test module to use it)."""
    s = start_service(ds)
    yield s
    s.stop()


@dataclass
class Service:
    proc: subprocess.Popen
    url: str
    token: str | None
    lines: list = field(default_factory=list)

    def headers(self, token: str | None = "") -> dict:
        t = self.token if token == "" else token
        h = {"content-type": "application/json"}
        if t is not None:
            h["authorization"] = f"Bearer {t}"
        return h

    def stop(self, timeout: float = 30.0) -> int:
        from ruvector_graph_attn.connectors.neo4j.server import terminate_process

        return terminate_process(self.proc, timeout)

    def output(self) -> str:
        return "".join(self.lines)


def start_service(ds: Dataset, *extra: str, token: str | None = None, auth: bool = True,
                  timeout: float = 300.0) -> Service:
    """``ruvector-graph-attn serve`` on a free port; waits for its ready line."""
    if token is None and auth:
        token = secrets.token_urlsafe(24)
    env = dict(os.environ)
    env.pop("RGA_SERVICE_TOKEN", None)
    if auth:
        env["RGA_SERVICE_TOKEN"] = token
    args = [sys.executable, "-m", "ruvector_graph_attn.cli", "serve", "--index", str(ds.index_dir),
            "--graph", str(ds.graph_file), "--layer", f"gat={ds.layer_file}", "--port", "0", "--access-log",
            *extra]
    if not auth:
        args.append("--no-auth")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    svc = Service(proc, "", token if auth else None)
    got = threading.Event()

    def reader():
        for line in proc.stdout:
            svc.lines.append(line)
            if line.startswith(READY):
                svc.url = line[len(READY):].strip()
                got.set()

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not got.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            svc.stop()
            unavailable("the ruvector-graph-attn service", f"it did not start:\n{svc.output()[-3000:]}")
    return svc
