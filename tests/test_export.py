"""ONNX and PyG export: onnxruntime runs the exported file and matches the library's forward."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import ExportError
from tests._require import import_or_unavailable

G, nn = rga.graph, rga.nn
F, D = 5, 3


def _graph(n: int, e: int, seed: int):
    """Random graph with duplicate edges, self loops and an isolated last node."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, F)).astype(np.float32)
    ei = rng.integers(0, n - 1, size=(2, e)).astype(np.int64)
    if e >= 3:
        ei[:, 1] = ei[:, 0]
        ei[1, 2] = ei[0, 2]
    ea = rng.normal(size=(e, D)).astype(np.float32)
    return x, ei, ea


def _mlp(out: int = 4):
    return nn.Sequential(nn.Linear(F, 8, rng=1), nn.ReLU(), nn.Linear(8, out, rng=2))


CASES = {
    "gat": lambda: G.GATConv(F, 4, heads=2, rng=0),
    "gat_mean_heads_edge": lambda: G.GATConv(F, 4, heads=3, concat=False, edge_dim=D, rng=0),
    "gat_no_loops_residual": lambda: G.GATConv(F, 4, heads=2, add_self_loops=False, residual=True, rng=0),
    "gat_fill_const": lambda: G.GATConv(F, 4, heads=2, edge_dim=D, fill_value=0.5, rng=0),
    "gat_fill_min": lambda: G.GATConv(F, 4, heads=2, edge_dim=D, fill_value="min", rng=0),
    "gatv2": lambda: G.GATv2Conv(F, 4, heads=2, rng=0),
    "gatv2_edge_max_fill": lambda: G.GATv2Conv(F, 4, heads=2, edge_dim=D, fill_value="max", rng=0),
    "gatv2_shared": lambda: G.GATv2Conv(F, 4, heads=2, share_weights=True, concat=False, rng=0),
    "sage_mean": lambda: G.SAGEConv(F, 6, rng=0),
    "sage_max_norm_proj": lambda: G.SAGEConv(F, 6, aggr="max", normalize=True, project=True, rng=0),
    "sage_sum_no_root": lambda: G.SAGEConv(F, 6, aggr="sum", root_weight=False, rng=0),
    "gin": lambda: G.GINConv(_mlp(), eps=0.3),
    "gin_train_eps": lambda: G.GINConv(nn.Sequential(nn.Linear(F, 8, rng=3), nn.LeakyReLU(0.1), nn.Tanh()),
                                       eps=-0.2, train_eps=True),
    "gine_edge_dim": lambda: G.GINEConv(nn.Sequential(nn.Linear(F, 8, rng=4), nn.ELU(), nn.LayerNorm(8)),
                                        edge_dim=D, rng=5),
    "gine_same_width": lambda: G.GINEConv(_mlp()),
    "sequential": lambda: G.GraphSequential([G.GATConv(F, 4, heads=2, rng=0), nn.ELU(), nn.Dropout(0.5),
                                             G.SAGEConv(8, 6, rng=1), nn.ReLU(),
                                             G.GINConv(nn.Sequential(nn.Linear(6, 3, rng=2)))]),
}


@pytest.fixture(scope="module")
def ort():
    import_or_unavailable("onnx")
    return import_or_unavailable("onnxruntime")


def _run(ort, path, x, ei, ea=None):
    feeds = {"x": x, "edge_index": ei}
    if ea is not None:
        feeds["edge_attr"] = ea
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _train_weights(model):
    """Perturb every parameter so that no parameter is at a symmetric init value (zero bias ...)."""
    rng = np.random.default_rng(9)
    for _, p in model.named_parameters():
        p.data[...] = p.data + rng.normal(scale=0.3, size=p.data.shape).astype(p.data.dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_matches_forward(ort, tmp_path, name):
    model = CASES[name]()
    _train_weights(model)
    model.eval()
    edge = rga.export.uses_edge_features(model)
    path = rga.export.export_onnx(model, tmp_path / f"{name}.onnx")
    # one file, three graph sizes (dynamic inputs): tricky small graph, a larger one, no edges
    for n, e, seed in ((7, 9, 0), (40, 150, 1), (4, 0, 2)):
        x, ei, ea = _graph(n, e, seed)
        if name == "gine_same_width":
            ea = np.random.default_rng(seed).normal(size=(e, F)).astype(np.float32)
        ref = model(x, ei, ea) if edge else model(x, ei)
        out = _run(ort, path, x, ei, ea if edge else None)
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
        assert np.isfinite(out).all()


def test_onnx_duplicates_and_loops_matter(ort, tmp_path):
    """The exported file does not merely agree on easy graphs: dropping the duplicate edge or the
    self loop changes both outputs the same way."""
    model = G.GATConv(F, 4, heads=2, rng=0)
    _train_weights(model)
    model.eval()
    path = rga.export.export_onnx(model, tmp_path / "gat.onnx")
    x = _graph(4, 0, 0)[0]
    ei = np.array([[0, 0, 1, 2], [1, 1, 2, 2]], dtype=np.int64)      # 0->1 twice, a loop at 2
    dedup = np.array([[0, 1], [1, 2]], dtype=np.int64)
    a, b = _run(ort, path, x, ei), _run(ort, path, x, dedup)
    assert np.abs(a[1] - b[1]).max() > 1e-3                            # the duplicate counts twice
    np.testing.assert_allclose(a[2], b[2], atol=1e-6)                 # the loop is replaced, as in PyG
    np.testing.assert_allclose(a, model(x, ei), atol=1e-5, rtol=0)
    np.testing.assert_allclose(b, model(x, dedup), atol=1e-5, rtol=0)


def test_export_refuses_unsupported(tmp_path):
    import_or_unavailable("onnx")
    with pytest.raises(ExportError, match="not exportable"):
        rga.export.export_onnx(G.GraphSequential([G.SAGEConv(F, 4), nn.Linear(4, 2)]).__class__(
            [G.SAGEConv(F, 4), rga.GeometricAttention(manifold=rga.manifold.PoincareBall())]), tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="source, target"):
        rga.export.export_onnx(G.GATConv((F, 3), 4), tmp_path / "bip.onnx")
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "bip.onnx").exists()


def test_export_pyg_roundtrip(tmp_path):
    model = CASES["sequential"]()
    _train_weights(model)
    npz, cfg = rga.export.export_pyg(model, tmp_path / "model")
    arrays = dict(np.load(npz, allow_pickle=False))
    sd = model.state_dict()
    assert set(arrays) == set(sd)
    meta = json.loads(cfg.read_text())
    assert meta["layout"] == "torch" and meta["parameters"]["0.att_src"] == [1, 2, 4]
    fresh = CASES["sequential"]()
    fresh.load_state_dict(arrays)
    fresh.eval(), model.eval()
    x, ei, _ = _graph(9, 20, 3)
    np.testing.assert_array_equal(fresh(x, ei), model(x, ei))


def test_cli_export(ort, tmp_path):
    model = CASES["gine_edge_dim"]()
    _train_weights(model)
    ckpt = tmp_path / "m.ckpt"
    rga.save_checkpoint(model, ckpt)
    cli = [sys.executable, "-m", "ruvector_graph_attn.cli", "export", str(ckpt)]
    r = subprocess.run(cli + ["--verify", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["out"].endswith("m.onnx") and info["max_abs_diff"] < 1e-5
    x, ei, ea = _graph(11, 30, 4)
    model.eval()
    np.testing.assert_allclose(_run(ort, info["out"], x, ei, ea), model(x, ei, ea), atol=1e-5, rtol=0)
    r = subprocess.run(cli + ["--format", "pyg", "--out", str(tmp_path / "w.npz"), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert set(np.load(tmp_path / "w.npz")) == set(model.state_dict())
    r = subprocess.run(cli[:-1] + [str(tmp_path / "missing.ckpt")], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
