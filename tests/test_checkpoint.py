"""Checkpoints: round trips, every corrupted-file case, architecture mismatch, PyG names."""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import ConfigError, CorruptFileError, FormatVersionError, StateDictError
from ruvector_graph_attn.graph import GINConv, GINEConv, GraphSequential, SAGEConv
from ruvector_graph_attn.nn.module import Module, Parameter
from ruvector_graph_attn.training import checkpoint as C


def _graph():
    ei = np.array([[0, 0, 1, 2, 3, 4, 1], [1, 1, 2, 0, 3, 0, 4]], dtype=np.int64)
    return ei, 6


def _model():
    return GraphSequential([
        SAGEConv(4, 8, aggr="max", normalize=True, rng=0), nn.ELU(alpha=0.7), nn.Dropout(0.3),
        GINConv(nn.Sequential(nn.Linear(8, 8, rng=1), nn.LeakyReLU(0.2), nn.LayerNorm(8), nn.Linear(8, 8, rng=2)),
                eps=0.25, train_eps=True),
        nn.Tanh(), SAGEConv(8, 3, root_weight=False, bias=False, rng=3)])


def _perturb(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data = (p.data + rng.normal(size=p.data.shape)).astype(p.data.dtype)
    return model


def test_round_trip_graph_model(tmp_path, rng):
    ei, n = _graph()
    m = _perturb(_model()).eval()
    x = rng.normal(size=(n, 4)).astype(np.float32)
    path = tmp_path / "m.rgackpt"
    rga.save_checkpoint(m, path, metadata={"epochs": 3, "acc": 0.5})
    m2 = rga.load_checkpoint(path).eval()
    assert isinstance(m2, GraphSequential)
    np.testing.assert_array_equal(m2(x, ei), m(x, ei))
    for (k1, v1), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k1 == k2 and v1.dtype == v2.dtype
        np.testing.assert_array_equal(v1, v2)
    assert C.read_checkpoint_config(path).metadata == {"epochs": 3, "acc": 0.5}
    assert m2[0].aggr == "max" and m2[0].normalize and m2[5].lin_l.bias is None
    assert m2[3].train_eps and m2[3].initial_eps == 0.25 and m2[2].p == 0.3
    # no temporary files left behind; overwriting works
    rga.save_checkpoint(m, path)
    assert [f.name for f in tmp_path.iterdir()] == ["m.rgackpt"]


def test_round_trip_float64_and_gine(tmp_path, rng):
    ei, n = _graph()
    m = GraphSequential([GINEConv(nn.Sequential(nn.Linear(3, 5, rng=1), nn.ReLU()), edge_dim=2, rng=2)]).double()
    _perturb(m)
    path = tmp_path / "g.ckpt"
    C.save_checkpoint(m, path)
    m2 = C.load_checkpoint(path)
    assert m2.parameters()[0].data.dtype == np.float64
    x = rng.normal(size=(n, 3))
    ea = rng.normal(size=(ei.shape[1], 2))
    np.testing.assert_array_equal(m2(x, ei, ea), m(x, ei, ea))


def test_round_trip_plain_modules(tmp_path, rng):
    for m in [nn.Linear(3, 2, bias=False, rng=0), nn.LayerNorm([2, 3], eps=1e-3, elementwise_affine=False),
              nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Identity(), nn.Linear(4, 1, rng=1))]:
        path = tmp_path / "p.ckpt"
        C.save_checkpoint(m, path)
        m2 = C.load_checkpoint(path)
        assert type(m2) is type(m) and C.get_config(m2) == C.get_config(m)
        x = rng.normal(size=(5, 2, 3)).astype(np.float32)
        np.testing.assert_array_equal(m2(x), m(x))


def test_load_into_given_model_and_architecture_mismatch(tmp_path):
    m = _perturb(_model())
    path = tmp_path / "m.ckpt"
    C.save_checkpoint(m, path)
    target = _model()
    C.load_checkpoint(path, model=target)
    for a, b in zip(target.parameters(), m.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    other = GraphSequential([SAGEConv(4, 8), nn.ReLU(), SAGEConv(8, 3)])
    with pytest.raises(StateDictError):
        C.load_checkpoint(path, model=other)
    wider = GraphSequential([SAGEConv(4, 16, aggr="max", normalize=True)])
    with pytest.raises(StateDictError):
        C.load_checkpoint(path, model=wider)


# -- corrupted files -----------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.ckpt"
    C.save_checkpoint(_perturb(_model()), path)
    return path


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)


def _reseal(members):
    """Recompute the manifest's checksums (a forger who knows the format)."""
    man = json.loads(members["manifest.json"])
    for name in ("config.json", "arrays.npz"):
        man["files"][name] = {"sha256": hashlib.sha256(members[name]).hexdigest(), "size": len(members[name])}
    members["manifest.json"] = json.dumps(man).encode()
    return members


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)


def test_empty_and_not_a_zip(saved):
    saved.write_bytes(b"")
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)
    saved.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)


def test_flipped_byte_in_arrays(saved):
    data = bytearray(saved.read_bytes())
    raw = bytes(data)
    off = raw.find(b"arrays.npz") + 200  # inside the stored npz payload
    data[off] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)


def test_tampered_member_detected_by_checksum(saved):
    mem = _members(saved)
    cfg = json.loads(mem["config.json"])
    cfg["model"]["modules"]["0"]["args"]["out_channels"] = 9
    mem["config.json"] = json.dumps(cfg).encode()
    _write(saved, mem)  # zip CRCs are fine, the manifest checksum is not
    with pytest.raises(CorruptFileError, match="checksum"):
        C.load_checkpoint(saved)


def test_resealed_config_for_other_architecture(saved):
    mem = _members(saved)
    cfg = json.loads(mem["config.json"])
    cfg["model"]["modules"]["0"]["args"]["out_channels"] = 9
    mem["config.json"] = json.dumps(cfg).encode()
    _write(saved, _reseal(mem))
    with pytest.raises(StateDictError):
        C.load_checkpoint(saved)


def test_resealed_missing_array(saved):
    mem = _members(saved)
    with np.load(io.BytesIO(mem["arrays.npz"])) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.pop("0.lin_l.weight")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    mem["arrays.npz"] = buf.getvalue()
    man = json.loads(mem["manifest.json"])
    man["num_arrays"] -= 1
    mem["manifest.json"] = json.dumps(man).encode()
    _write(saved, _reseal(mem))
    with pytest.raises(StateDictError):
        C.load_checkpoint(saved)


def test_pickled_array_refused(saved):
    mem = _members(saved)
    buf = io.BytesIO()
    np.savez(buf, evil=np.array([{"a": 1}], dtype=object))
    mem["arrays.npz"] = buf.getvalue()
    man = json.loads(mem["manifest.json"])
    man["num_arrays"] = 1
    mem["manifest.json"] = json.dumps(man).encode()
    _write(saved, _reseal(mem))
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)


def test_format_version_and_foreign_format(saved):
    mem = _members(saved)
    man = json.loads(mem["manifest.json"])
    man["format_version"] = 99
    mem["manifest.json"] = json.dumps(man).encode()
    _write(saved, mem)
    with pytest.raises(FormatVersionError):
        C.load_checkpoint(saved)
    man["format_version"] = 1
    man["format"] = "something-else"
    mem["manifest.json"] = json.dumps(man).encode()
    _write(saved, mem)
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)


def test_missing_members_and_bad_manifest(saved):
    mem = _members(saved)
    _write(saved, {k: v for k, v in mem.items() if k != "config.json"})
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)
    _write(saved, {k: v for k, v in mem.items() if k != "manifest.json"})
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)
    mem["manifest.json"] = b"{not json"
    _write(saved, mem)
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)


def test_foreign_layer_type_refused(saved):
    mem = _members(saved)
    cfg = json.loads(mem["config.json"])
    cfg["model"]["modules"]["1"]["type"] = "os:system"
    mem["config.json"] = json.dumps(cfg).encode()
    _write(saved, _reseal(mem))
    with pytest.raises(StateDictError):
        C.load_checkpoint(saved)


def test_unregistered_layer_refused_at_save(tmp_path):
    class Custom(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(np.ones(2))

    with pytest.raises(ConfigError):
        C.save_checkpoint(Custom(), tmp_path / "c.ckpt")
    assert not list(tmp_path.iterdir())


def test_pyg_layouts_round_trip():
    m = _perturb(_model())
    sd = C.export_pyg_state_dict(m)
    assert "3.nn.0.weight" in sd and "0.lin_l.weight" in sd and all(isinstance(v, np.ndarray) for v in sd.values())
    seq = C.export_pyg_state_dict(m, layout="pyg_sequential")
    assert set(seq) == {k.replace("0.", "module_0.", 1) if k.startswith("0.") else
                        k.replace("3.", "module_3.", 1) if k.startswith("3.") else
                        k.replace("5.", "module_5.", 1) for k in sd}
    fresh = _model()
    C.import_pyg_state_dict(fresh, seq, layout="pyg_sequential")
    for a, b in zip(fresh.parameters(), m.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    gm = GraphSequential([SAGEConv(4, 8, rng=0), nn.ReLU(), nn.Dropout(0.5), SAGEConv(8, 3, rng=1)])
    basic = C.export_pyg_state_dict(gm, layout="basic_gnn")
    assert sorted(basic) == ["convs.0.lin_l.bias", "convs.0.lin_l.weight", "convs.0.lin_r.weight",
                             "convs.1.lin_l.bias", "convs.1.lin_l.weight", "convs.1.lin_r.weight"]
    g2 = GraphSequential([SAGEConv(4, 8, rng=5), nn.ReLU(), nn.Dropout(0.5), SAGEConv(8, 3, rng=6)])
    C.import_pyg_state_dict(g2, basic, layout="basic_gnn")
    np.testing.assert_array_equal(g2[3].lin_l.weight.data, gm[3].lin_l.weight.data)
    with pytest.raises(StateDictError):
        C.import_pyg_state_dict(g2, {**basic, "convs.9.x": np.ones(1)}, layout="basic_gnn")


@pytest.mark.torch
def test_pyg_load_both_ways():
    torch = pytest.importorskip("torch")
    pyg = pytest.importorskip("torch_geometric")
    from torch_geometric.nn import GINConv as PGIN, SAGEConv as PSAGE

    import random

    random.seed()  # torch_geometric.nn.Sequential names its generated module with a random draw;
    # hypothesis reseeds `random`, which would make two tests' Sequentials collide
    ours = GraphSequential([SAGEConv(4, 8, rng=0), nn.ReLU(),
                            GINConv(nn.Sequential(nn.Linear(8, 8, rng=1), nn.ReLU(), nn.Linear(8, 3, rng=2)))])
    _perturb(ours)
    theirs = pyg.nn.Sequential("x, edge_index", [
        (PSAGE(4, 8), "x, edge_index -> x"), torch.nn.ReLU(),
        (PGIN(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))),
         "x, edge_index -> x")])
    sd = C.export_pyg_state_dict(ours, layout="pyg_sequential")
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    ei, n = _graph()
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x), torch.from_numpy(ei)).numpy()
    np.testing.assert_allclose(ours(x, ei), ref, rtol=1e-4, atol=1e-5)
    back = GraphSequential([SAGEConv(4, 8), nn.ReLU(),
                            GINConv(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)))])
    C.import_pyg_state_dict(back, {k: v for k, v in theirs.state_dict().items()}, layout="pyg_sequential")
    np.testing.assert_allclose(back(x, ei), ref, rtol=1e-4, atol=1e-5)


def test_round_trip_attention_layers(tmp_path, rng):
    from ruvector_graph_attn.attention.multihead import MultiHeadAttention
    from ruvector_graph_attn.graph import GATConv, GATv2Conv

    ei, n = _graph()
    x = rng.normal(size=(n, 6)).astype(np.float32)
    ea = rng.normal(size=(ei.shape[1], 3)).astype(np.float32)
    model = GraphSequential([GATConv(6, 4, heads=3, edge_dim=3, fill_value=0.5, rng=0), nn.ELU(),
                             GATv2Conv(12, 5, heads=2, concat=False, share_weights=True, edge_dim=3, rng=1)])
    _perturb(model)
    path = tmp_path / "gat.ckpt"
    C.save_checkpoint(model, path)
    m2 = C.load_checkpoint(path).eval()
    model.eval()
    np.testing.assert_array_equal(m2(x, ei, ea), model(x, ei, ea))
    assert m2[2].share_weights and m2[0].fill_value == 0.5 and m2[0].heads == 3
    for mha in [MultiHeadAttention(8, 2, rng=0), MultiHeadAttention(8, 4, bias=False, kdim=5, vdim=3, rng=1)]:
        _perturb(mha)
        C.save_checkpoint(mha, path)
        back = C.load_checkpoint(path)
        q = rng.normal(size=(2, 3, 8)).astype(np.float32)
        k = rng.normal(size=(2, 4, mha.kdim)).astype(np.float32)
        v = rng.normal(size=(2, 4, mha.vdim)).astype(np.float32)
        a = mha(q, k, v)
        b = back(q, k, v)
        np.testing.assert_array_equal(a[0] if isinstance(a, tuple) else a, b[0] if isinstance(b, tuple) else b)
