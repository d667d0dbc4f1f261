"""Helpers for the reliability tests: child processes (a crash fails a test instead of
killing the run) and consistently re-sealed crafted index files (checksums recomputed,
as anyone editing a file can do)."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

HEADER = struct.Struct("<QQQQQQiIQQQdQ")
FIELDS = ("off_l0", "max_el", "cur", "size_el", "label_off", "off_data", "maxlevel", "enter",
          "maxM", "maxM0", "M", "mult", "efc")
REPO = Path(__file__).resolve().parents[1]


def run_child(code: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (this one), returning the completed process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=str(REPO))


def assert_child_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, (f"child exited with {proc.returncode} (negative = killed by a signal)\n"
                                  f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}")


def write_header(data: bytearray, **changes) -> None:
    h = dict(zip(FIELDS, HEADER.unpack_from(data, 0)))
    h.update(changes)
    HEADER.pack_into(data, 0, *[h[f] for f in FIELDS])


def upper_levels(data: bytes) -> tuple[np.ndarray, list]:
    """Per element: its level, and the byte offset of its upper-level lists (or -1)."""
    h = dict(zip(FIELDS, HEADER.unpack_from(data, 0)))
    pos = HEADER.size + h["cur"] * h["size_el"]
    per = h["maxM"] * 4 + 4
    levels, starts = np.zeros(h["cur"], np.int64), []
    for i in range(h["cur"]):
        (size,) = struct.unpack_from("<I", data, pos)
        levels[i] = size // per
        starts.append(pos + 4 if size else -1)
        pos += 4 + size
    return levels, starts


def reseal(path: Path, *names: str) -> None:
    """Recompute the recorded size and sha256 of ``names`` and the manifest's own checksum."""
    mpath = Path(path) / "manifest.json"
    m = json.loads(mpath.read_text())
    for name in names:
        data = (Path(path) / name).read_bytes()
        m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    body = {k: v for k, v in m.items() if k != "manifest_sha256"}
    if "manifest_sha256" in m or not names:  # files from before the manifest checksum have none
        m["manifest_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    mpath.write_text(json.dumps(m))


def edit_manifest(path: Path, **changes) -> None:
    mpath = Path(path) / "manifest.json"
    m = json.loads(mpath.read_text())
    m.update(changes)
    mpath.write_text(json.dumps(m))


def small_index(path: Path, n: int = 300, dim: int = 8, space: str = "cosine", seed: int = 0, M: int = 4):
    """A saved index with several levels (small M), two deletes; returns (index, vectors)."""
    import ruvector_graph_attn as rga

    X = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    idx = rga.HNSWIndex(dim=dim, space=space, M=M, ef_construction=50, num_threads=1, seed=seed)
    idx.add(np.arange(n), X)
    idx.delete([3, 5])
    idx.save(path)
    return idx, X


# ---------------------------------------------------------------------- hostile inputs
def _hostile_common(rng):
    return [None, "x", "", b"\x00", [], [[1, 2], [3]], {"a": 1}, object(), True, -1, 0, 2 ** 70, float("nan"),
            float("inf"), -0.0, 1e300, np.array([], np.float32), np.array(["a", "b"]),
            np.array([1 + 2j, 3j]), np.empty((0, 0)), np.array(5.0), np.zeros((2, 3, 4), np.float32)]


def hostile(rng, kind: str, n: int = 6, f: int = 8):
    """A value for an argument of ``kind``: half the time a valid one, else something hostile
    (wrong type, rank, size, dtype, NaN/Inf, values near float32 max, empty, huge)."""
    with np.errstate(all="ignore"):  # the hostile values overflow on purpose
        return _hostile(rng, kind, n, f)


def _hostile(rng, kind: str, n: int, f: int):
    valid = rng.random() < 0.5
    if kind == "x":        # [n, f] features
        good = rng.normal(size=(n, f)).astype(np.float32)
        bad = [good[:, :-1], good[:0], good * np.float32(3e38), np.where(good > 1, np.nan, good),
               np.where(good > 1, np.inf, good), good.astype(np.float64) * 1e300, good[0], good.tolist()]
    elif kind == "q":      # [f] query
        good = rng.normal(size=f).astype(np.float32)
        bad = [good[:-1], np.zeros(f, np.float32), good * np.float32(1e30), np.full(f, np.nan), good[None, None]]
    elif kind == "Q":      # [b, f] queries
        good = rng.normal(size=(3, f)).astype(np.float32)
        bad = [good[:, :-1], np.zeros((3, f), np.float32), good * np.float32(3e38), good[:0], np.full((3, f), np.inf)]
    elif kind == "edge_index":
        good = rng.integers(0, n, (2, 3 * n))
        bad = [good + n, -good - 1, good.astype(np.float32), good[:1], good.T, [[0, 1], [1]], good.astype(np.uint64) + 2 ** 63,
               np.zeros((2, 0), np.int64), "edges"]
    elif kind == "k":
        good = int(rng.integers(1, 5))
        bad = [0, -3, 2.5, "3", 2 ** 70, True, None, np.int64(2)]
    elif kind == "ids":
        good = [int(v) for v in rng.choice(n, size=min(3, n), replace=False)]
        bad = [[2 ** 70], [1, "a"], "abc", 5, [[1, 2]], [1.5], np.array([2 ** 63 + 1], np.uint64), [None],
               [True], list(range(10 ** 6, 10 ** 6 + 3))]
    elif kind == "float":
        good = float(rng.uniform(0.1, 2.0))
        bad = [0.0, -1.0, float("nan"), float("inf"), "x", None, 1e308]
    else:
        raise ValueError(kind)
    if valid:
        return good
    pool = bad + _hostile_common(rng)
    return pool[int(rng.integers(len(pool)))]


def _finite(out) -> bool:
    if isinstance(out, np.ndarray):
        return out.dtype.kind != "f" or bool(np.isfinite(out).all())
    if isinstance(out, (list, tuple)):
        return all(_finite(o) for o in out)
    if isinstance(out, float):
        return np.isfinite(out)
    if hasattr(out, "score") and hasattr(out, "vector_score"):
        return np.isfinite(out.score) and np.isfinite(out.vector_score)
    return True


def classify(thunk) -> tuple[str, str]:
    """Run ``thunk``: ``("ok"|"typed"|"untyped"|"nonfinite", detail)``."""
    import ruvector_graph_attn as rga

    try:
        with np.errstate(all="ignore"):
            out = thunk()
    except rga.RgaError as exc:
        return ("typed", "") if str(exc).strip() else ("untyped", f"{type(exc).__name__} without a message")
    except Exception as exc:  # noqa: BLE001
        return "untyped", f"{type(exc).__name__}: {str(exc)[:160]}"
    return ("ok", "") if _finite(out) else ("nonfinite", "non-finite output")


class Fixtures:
    """Objects the fuzzed entry points act on (built once per process)."""

    def __init__(self):
        import networkx as nx

        import ruvector_graph_attn as rga

        rng = np.random.default_rng(0)
        self.X = rng.normal(size=(40, 8)).astype(np.float32)
        self.index = rga.HNSWIndex(dim=8, space="cosine", num_threads=1)
        self.index.add(np.arange(40), self.X)
        G = nx.gnm_random_graph(40, 120, seed=0, directed=True)
        for i in range(40):
            G.nodes[i]["embedding"] = self.X[i]
        self.graph = rga.connectors.NetworkXGraph(G, feature_key="embedding")
        self.rerankers = {s: rga.GraphReranker(index=self.index, graph=self.graph, scorer=s, candidates=10)
                          for s in ("attention", "vector")}
        self.att = rga.ScaledDotProductAttention(dim=8)
        self.mha = rga.MultiHeadAttention(embed_dim=8, num_heads=2)
        self.sparse = rga.SparseAttention(dim=8)
        self.geo = rga.GeometricAttention(manifold=rga.manifold.PoincareBall(c=1.0))
        self.layers = {"GATConv": rga.graph.GATConv(8, 4, heads=2), "GATv2Conv": rga.graph.GATv2Conv(8, 4),
                       "SAGEConv": rga.graph.SAGEConv(8, 4), "GINConv": rga.graph.GINConv(rga.nn.Linear(8, 4)),
                       "GINEConv": rga.graph.GINEConv(rga.nn.Linear(8, 4), edge_dim=3)}


def entry_cases(fx: Fixtures, rng) -> list[tuple[str, str, object]]:
    """One fuzz case per public entry: (area, name, thunk), arguments drawn by :func:`hostile`."""
    import ruvector_graph_attn as rga

    h = lambda kind, **kw: hostile(rng, kind, **kw)  # noqa: E731
    cases = []
    n = 6
    x, ei = h("x", n=n), h("edge_index", n=n)
    cases += [("attention", "SDPA.forward", lambda: fx.att.forward(h("q"), h("x"), h("x"))),
              ("attention", "SDPA.forward_batch", lambda: fx.att.forward_batch(h("Q"), h("x"), h("x"))),
              ("attention", "SDPA(dropout/scale)", lambda: rga.ScaledDotProductAttention(
                  dim=h("k"), scale=h("float"), dropout=h("float"))),
              ("attention", "MHA.forward_vector", lambda: fx.mha.forward_vector(h("q"), h("x"), h("x"))),
              ("attention", "Sparse.forward_topk", lambda: fx.sparse.forward_topk(h("Q"), h("x"), h("x"), k=h("k"))),
              ("attention", "Sparse.forward_windowed",
               lambda: fx.sparse.forward_windowed(h("Q"), h("x"), h("x"), window_size=h("k"))),
              ("attention", "Geometric.forward", lambda: fx.geo.forward(_small(h("q")), _small(h("x")), h("x")))]
    for name, layer in fx.layers.items():
        if name == "GINEConv":
            ea = hostile(rng, "x", n=3 * n, f=3)
            cases.append(("graph", name, lambda layer=layer, x=x, ei=ei, ea=ea: layer(x, ei, ea)))
        else:
            cases.append(("graph", name, lambda layer=layer, x=x, ei=ei: layer(x, ei)))
    cases += [("graph", "GATConv(args)", lambda: rga.graph.GATConv(h("k"), h("k"), heads=h("k"),
                                                                    negative_slope=h("float"))),
              ("graph", "GINConv(eps)", lambda: rga.graph.GINConv(rga.nn.Linear(8, 4), eps=h("float")))]
    idx = fx.index
    cases += [("index", "search", lambda: idx.search(h("Q"), k=h("k"), ef=h("k"))),
              ("index", "search(filter)", lambda: idx.search(h("q"), k=h("k"), filter=h("ids", n=40))),
              ("index", "search(num_threads)", lambda: idx.search(h("q"), k=2, num_threads=h("k"))),
              ("index", "get", lambda: idx.get(h("ids", n=40))),
              ("index", "add+delete", lambda: _add_delete(idx, h("ids", n=40), h("x", n=3))),
              ("index", "HNSWIndex()", lambda: rga.HNSWIndex(dim=h("k"), M=h("k"), ef=h("k"),
                                                              num_threads=h("k")))]
    rr = fx.rerankers["attention" if rng.random() < 0.5 else "vector"]
    cases += [("rerank", "search", lambda: rr.search(h("q"), k=h("k"))),
              ("rerank", "search_batch", lambda: rr.search_batch(h("Q"), k=h("k"))),
              ("rerank", "embed_subgraph", lambda: rr.embed_subgraph(h("ids", n=40)))]
    cases += [("connectors", "NetworkX.expand", lambda: fx.graph.expand(h("ids", n=40), hops=h("k"))),
              ("connectors", "NetworkX.features", lambda: fx.graph.features(h("ids", n=40))),
              ("connectors", "Neo4jGraph(args)", lambda: rga.connectors.Neo4jGraph(
                  "bolt://127.0.0.1:1", auth=("u", "p"), verify=False, label=h("ids") if rng.random() < 0.3 else "Item",
                  edge_properties=h("ids") if rng.random() < 0.5 else None, timeout=h("float")))]
    cases += [("checkpoints", "load_checkpoint", lambda: rga.load_checkpoint(_path(rng, fx))),
              ("checkpoints", "save_checkpoint", lambda: rga.save_checkpoint(
                  fx.layers["SAGEConv"], _path(rng, fx, fresh=True), metadata=_metadata(rng))),
              ("checkpoints", "HNSWIndex.load", lambda: rga.HNSWIndex.load(_path(rng, fx), dim=h("k"))),
              ("checkpoints", "HNSWIndex.save", lambda: fx.index.save(_path(rng, fx, fresh=True)))]
    return cases


def _path(rng, fx, fresh: bool = False):
    import tempfile

    base = Path(getattr(fx, "_tmp", None) or tempfile.mkdtemp(prefix="rga-fuzz-"))
    fx._tmp = str(base)
    good = base / f"new{int(rng.integers(10 ** 9))}" if fresh else base / "ck"
    if not fresh and not good.exists():
        import ruvector_graph_attn as rga

        rga.save_checkpoint(fx.layers["SAGEConv"], good)
    pool = [good, str(good), None, 5, b"/tmp/x", "", "a\0b", base, "/", "/proc/no/such", [str(good)]]
    return pool[int(rng.integers(len(pool)))] if rng.random() < 0.6 else good


def _metadata(rng):
    pool = [None, {}, {"a": 1}, {"a": float("nan")}, {1: 2}, {"x": object()}, [1, 2], "meta"]
    return pool[int(rng.integers(len(pool)))]


def _small(v):
    """Points inside the Poincare ball when ``v`` is a float array; anything else unchanged."""
    return v * 0.05 if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v


def _add_delete(idx, ids, vecs):
    """Add then delete the same ids; on a refusal nothing may have changed."""
    if isinstance(ids, list) and ids and all(type(i) is int and 0 <= i < 10 ** 5 for i in ids):
        ids = [i + 10 ** 5 for i in ids]  # new ids, so add + delete leaves the index as it was
    before = len(idx)
    try:
        idx.add(ids, vecs)
    except Exception:
        assert len(idx) == before, "a refused add changed the index"
        raise
    idx.delete(ids)
    assert len(idx) == before
    return None


# ---------------------------------------------------------------------- corrupted files
_CORRUPTION_CHILD = r"""
import sys, os, json, shutil, hashlib, struct
sys.path.insert(0, {tests!r})
import pathlib
import numpy as np
import ruvector_graph_attn as rga
from _reliability import reseal, small_index, classify
kind, start, total, work = {kind!r}, {start}, {total}, {work!r}
rng0 = np.random.default_rng(0)
os.makedirs(work, exist_ok=True)
src = os.path.join(work, "src")
if not os.path.exists(src):
    if kind == "index":
        small_index(__import__("pathlib").Path(src))
    else:
        m = rga.nn.Sequential(rga.nn.Linear(4, 8), rga.nn.ReLU(), rga.nn.Linear(8, 2))
        rga.save_checkpoint(m, src)

def use_index(p):
    idx = rga.HNSWIndex.load(p)
    q = np.ones((2, idx.dim), np.float32)
    out = idx.search(q, k=min(5, len(idx)))
    idx.add([10 ** 6], q[0])
    return out

def use_ckpt(p):
    m = rga.load_checkpoint(p)
    return m(np.ones((2, 4), np.float32))

for i in range(start, total):
    rng = np.random.default_rng(i)
    mode = ("truncate", "flip", "flip_resealed", "truncate_resealed")[i % 4]
    # truncation offsets sweep the file (header bytes first), flips hit random bits
    dst = os.path.join(work, f"case{{i}}")
    if kind == "index":
        shutil.copytree(src, dst)
        target = os.path.join(dst, ("index.bin", "ids.npy", "alive.npy", "manifest.json")[int(rng.integers(4)) if mode.startswith("flip") else 0])
    else:
        shutil.copy(src, dst)
        target = dst
    data = bytearray(open(target, "rb").read())
    if mode.startswith("truncate"):
        cut = (i // 4) if (i // 4) < 120 else int(rng.integers(0, len(data)))
        data = data[: min(cut, len(data) - 1)]
    else:
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    open(target, "wb").write(bytes(data))
    if mode.endswith("resealed") and kind == "index" and not target.endswith("manifest.json"):
        reseal(__import__("pathlib").Path(dst), os.path.basename(target))
    print(json.dumps({{"i": i, "start": mode}}), flush=True)
    verdict, detail = classify(lambda: use_index(dst) if kind == "index" else use_ckpt(dst))
    print(json.dumps({{"i": i, "name": mode, "verdict": verdict, "detail": detail}}), flush=True)
    shutil.rmtree(dst, ignore_errors=True) if os.path.isdir(dst) else os.unlink(dst)
"""




def corruption_child_code(kind: str, start: int, total: int, work: str) -> str:
    """Python source of a child that corrupts copies of a saved ``kind`` ("index" or
    "checkpoint") file -- truncations sweeping the first bytes then random offsets, bit
    flips, each also with checksums recomputed -- loads and uses each, and prints one JSON
    line per case (``{"i", "name", "verdict", "detail"}``, verdicts as :func:`classify`)."""
    return _CORRUPTION_CHILD.format(tests=str(Path(__file__).resolve().parent), kind=kind, start=start,
                                    total=total, work=work)
