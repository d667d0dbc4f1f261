"""The ``train`` command end to end, the Cora-shaped dataset and the model factory."""
from __future__ import annotations

import json

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.cli import main
from ruvector_graph_attn.commands.train import load_edge_index
from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.training.datasets import cora_like
from ruvector_graph_attn.training.models import make_model


@pytest.fixture(scope="module")
def small():
    return cora_like(seed=1, num_nodes=600, num_features=200, num_undirected_edges=1500, topic_size=30,
                     train_per_class=20, num_val=150, num_test=200)


def test_cora_like_statistics():
    ds = cora_like(seed=0)
    assert ds.x.shape == (2708, 1433) and ds.edge_index.shape == (2, 10556)
    assert 0.78 < ds.edge_homophily() < 0.86
    assert ds.train_mask.sum() == 140 and ds.val_mask.sum() == 500 and ds.test_mask.sum() == 1000
    assert not (ds.train_mask & ds.test_mask).any() and not (ds.val_mask & ds.test_mask).any()
    np.testing.assert_allclose(ds.x.sum(1)[ds.x.sum(1) > 0], 1.0, rtol=1e-5)
    # symmetric, no self loops, no duplicates
    key = ds.edge_index[0] * 2708 + ds.edge_index[1]
    rkey = ds.edge_index[1] * 2708 + ds.edge_index[0]
    assert np.unique(key).size == key.size and set(key.tolist()) == set(rkey.tolist())
    assert (ds.edge_index[0] != ds.edge_index[1]).all()
    again = cora_like(seed=0)
    np.testing.assert_array_equal(again.edge_index, ds.edge_index)


@pytest.mark.parametrize("kind", ["gat", "sage", "gin"])
def test_make_model_shapes(kind, small):
    m = make_model(kind, small.x.shape[1], 16, 7, heads=4, seed=0).eval()
    assert m(small.x, small.edge_index).shape == (small.num_nodes, 7)
    with pytest.raises(InvalidInputError):
        make_model("mlp", 3, 4, 2)


@pytest.mark.slow
def test_cli_node_classification(tmp_path, small):
    np.save(tmp_path / "x.npy", small.x)
    y = small.y.copy()
    y[:5] = -1  # unlabelled nodes are allowed
    np.save(tmp_path / "y.npy", y)
    with open(tmp_path / "g.txt", "w") as fh:
        fh.write("# src dst\n")
        for s, d in small.edge_index.T[::2]:
            fh.write(f"{s},{d}\n")
    out, met = tmp_path / "m.ckpt", tmp_path / "metrics.json"
    rc = main(["train", "--graph", str(tmp_path / "g.txt"), "--features", str(tmp_path / "x.npy"),
               "--labels", str(tmp_path / "y.npy"), "--task", "node", "--model", "sage", "--epochs", "40",
               "--undirected", "--out", str(out), "--metrics", str(met), "--no-progress", "--hidden", "32"])
    assert rc == 0
    metrics = json.loads(met.read_text())
    assert metrics["task"] == "node" and metrics["epochs_run"] == len(metrics["history"]) > 0
    assert metrics["final"]["test_acc"] > 0.5  # 7 classes: chance is ~0.3 (largest class)
    model = rga.load_checkpoint(out)
    assert model(small.x, small.edge_index).shape == (small.num_nodes, 7)


@pytest.mark.slow
def test_cli_link_prediction_and_minibatch(tmp_path, small):
    np.save(tmp_path / "x.npy", small.x)
    np.save(tmp_path / "g.npy", small.edge_index.T)  # [E, 2] is accepted
    out = tmp_path / "l.ckpt"
    rc = main(["train", "--graph", str(tmp_path / "g.npy"), "--features", str(tmp_path / "x.npy"),
               "--task", "link", "--model", "gin", "--epochs", "15", "--hidden", "32", "--out-dim", "16",
               "--out", str(out), "--no-progress"])
    assert rc == 0 and out.exists()
    np.save(tmp_path / "y.npy", small.y)
    rc = main(["train", "--graph", str(tmp_path / "g.npy"), "--features", str(tmp_path / "x.npy"),
               "--labels", str(tmp_path / "y.npy"), "--model", "gat", "--hidden", "16", "--heads", "4",
               "--epochs", "3", "--batch-size", "64", "--fanouts", "5,5", "--out", str(out), "--no-progress"])
    assert rc == 0


def test_cli_errors(tmp_path, small, capsys):
    np.save(tmp_path / "x.npy", small.x)
    np.save(tmp_path / "y.npy", small.y[:10])
    np.save(tmp_path / "g.npy", small.edge_index)
    rc = main(["train", "--graph", str(tmp_path / "g.npy"), "--features", str(tmp_path / "x.npy"),
               "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "m.ckpt"), "--no-progress"])
    assert rc == 1 and "labels" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n1 x\n")
    with pytest.raises(InvalidInputError, match="bad.txt:2"):
        load_edge_index(str(bad))
    np.save(tmp_path / "gf.npy", small.edge_index.astype(np.float64))
    with pytest.raises(InvalidInputError):
        load_edge_index(str(tmp_path / "gf.npy"))
    rc = main(["train", "--graph", str(tmp_path / "missing.npy"), "--features", str(tmp_path / "x.npy"),
               "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "m.ckpt"), "--no-progress"])
    assert rc == 1
