"""Pictures: valid PNG/SVG files that contain the expected nodes, from the API and the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import InvalidInputError
from tests._require import import_or_unavailable


@pytest.fixture(scope="module")
def hits():
    import_or_unavailable("matplotlib")
    from ruvector_graph_attn.rerank.synthetic import latent_citation_graph

    data = latent_citation_graph(n=400, dim=16, seed=3)
    index = rga.HNSWIndex(dim=16, space="cosine")
    index.add(np.arange(data.n), data.x)
    rr = rga.GraphReranker(index, rga.connectors.NetworkXGraph(data.to_networkx()), candidates=30)
    Q, _, _ = data.queries(1, seed=5)
    return rr.search(Q[0], k=8)


def _svg_texts(path):
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter() if t.tag.endswith("text")]


def test_rerank_figure_svg_has_every_hit_and_neighbour(hits, tmp_path):
    out = rga.plot.rerank_figure(hits, tmp_path / "q.svg", max_neighbours=2)
    texts = " ".join(_svg_texts(out))
    for h in hits:
        assert f"#{h.rank + 1} (vec #{h.vector_rank + 1})" in texts
        assert str(h.id) in texts
        for nb, _ in h.top_attention(2):
            if nb != h.id:
                assert str(nb) in texts
    # a neighbour outside the top-2 attention of every hit is not drawn
    drawn = {str(h.id) for h in hits} | {str(nb) for h in hits for nb, _ in h.top_attention(2)}
    extra = {str(nb) for h in hits for nb, _ in h.top_attention(50)} - drawn
    root = ET.parse(out).getroot()
    node_groups = {e.get("id")[5:] for e in root.iter() if (e.get("id") or "").startswith("node-")}
    assert node_groups == drawn
    assert extra and not (extra & node_groups)


def test_rerank_figure_png_from_dicts(hits, tmp_path):
    import matplotlib.image as mpimg

    out = rga.plot.rerank_figure([h.to_dict() for h in hits], tmp_path / "q.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
    assert img[..., :3].std() > 0.05          # not a blank canvas


def test_plot_errors(hits, tmp_path):
    with pytest.raises(InvalidInputError, match=".png or .svg"):
        rga.plot.rerank_figure(hits, tmp_path / "q.jpg")
    with pytest.raises(InvalidInputError, match="no hits"):
        rga.plot.rerank_figure([], tmp_path / "q.png")
    with pytest.raises(InvalidInputError, match="lacks"):
        rga.plot.rerank_figure([{"id": 1}], tmp_path / "q.png")
    with pytest.raises(InvalidInputError, match="history"):
        rga.plot.training_figure({"history": []}, tmp_path / "t.png")
    with pytest.raises(InvalidInputError, match="does not exist"):
        rga.plot.training_figure({"history": [{"loss": 1.0}]}, tmp_path / "nope" / "t.png")
    assert not list(tmp_path.iterdir())


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", "visualize", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_visualize(hits, tmp_path):
    res = tmp_path / "search.json"
    res.write_text(json.dumps({"scorer": "attention", "k": 8,
                               "queries": [{"query": "q0", "results": [h.to_dict() for h in hits]}]}))
    r = _cli("rerank", str(res), "--out", str(tmp_path / "r.svg"))
    assert r.returncode == 0, r.stderr
    assert str(hits[0].id) in " ".join(_svg_texts(tmp_path / "r.svg"))
    history = [{"epoch": e, "loss": 1.0 / (e + 1), "train_acc": e / 10, "val_loss": 1.2 / (e + 1),
                "val_acc": e / 12, "lr": 0.01, "seconds": 0.1} for e in range(10)]
    met = tmp_path / "metrics.json"
    met.write_text(json.dumps({"model": "sage", "task": "node", "best_epoch": 7, "history": history}))
    r = _cli("training", str(met), "--out", str(tmp_path / "t.svg"))
    assert r.returncode == 0, r.stderr
    texts = _svg_texts(tmp_path / "t.svg")
    for series in ("loss", "val_loss", "train_acc", "val_acc"):
        assert series in texts
    assert "lr" not in texts and "seconds" not in texts
    # bad inputs: one line, no traceback
    for args in (("rerank", str(met), "--out", str(tmp_path / "x.png")),
                 ("rerank", str(res), "--query", "3", "--out", str(tmp_path / "x.png")),
                 ("training", str(res), "--out", str(tmp_path / "x.png")),
                 ("training", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.png"))):
        r = _cli(*args)
        assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.startswith("error:"), r.stderr
