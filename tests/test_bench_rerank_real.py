"""bench rerank-real end to end on the shipped Packages sample.

The embedding cache is filled beforehand (file name = hash of the texts), so the pipeline runs
without the sentence-transformers model; the cache key and its corruption check are tested too."""
import json
import os

import numpy as np
import pytest

from tests._require import import_or_unavailable

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "Packages_sample")


def _fill_cache(tmp_path, texts):
    from ruvector_graph_attn.bench.embeddings import texts_key

    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(texts), 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    d = tmp_path / "embeddings"
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / (texts_key(texts) + ".npy"), X)
    return X


def test_cache_key_and_corruption(tmp_path):
    from ruvector_graph_attn.bench.embeddings import embed_texts, texts_key
    from ruvector_graph_attn.errors import CorruptFileError

    assert texts_key(["a", "b"]) != texts_key(["ab"]) and texts_key(["a"]) == texts_key(["a"])
    X = _fill_cache(tmp_path, ["x", "y"])
    assert np.array_equal(embed_texts(["x", "y"], cache_dir=str(tmp_path)), X)
    np.save(tmp_path / "embeddings" / (texts_key(["p", "q", "r"]) + ".npy"), X)   # 2 rows for 3 texts
    with pytest.raises(CorruptFileError):
        embed_texts(["p", "q", "r"], cache_dir=str(tmp_path))


def test_bench_runs_on_sample(tmp_path, capsys):
    import_or_unavailable("scipy")
    from ruvector_graph_attn.bench import rerank_real
    from ruvector_graph_attn.datasets.debian import dependency_graph, read_packages_file

    g = dependency_graph(read_packages_file(SAMPLE))
    _fill_cache(tmp_path, g.texts)
    args = rerank_real.build_parser().parse_args(
        ["--lists", SAMPLE, "--holdout", "0.5", "--train-epochs", "1", "--cache-dir", str(tmp_path),
         "--task", "deps", "--json"])
    assert rerank_real.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in out["deps"]}
    assert out["deps_dataset"]["nodes"] == 25
    vec = rows["HNSW vector-only"]
    assert vec["ndcg_vs_vector"] == pytest.approx(1.0)
    for r in out["deps"]:
        assert 0.0 <= r["ndcg@10"] <= 1.0 and 0.0 <= r["recall@10"] <= 1.0
    # with every other package among the candidates, candidate recall is 1
    assert vec["cand_recall"] == pytest.approx(1.0)
    # the trained re-rankers: hard negatives and random only, each without and with graph candidates
    for name in ("DirGNN trained, hard negatives", "DirGNN trained, random negatives only"):
        assert name in rows and name + " + graph_candidates=10" in rows
        assert "blend=" in rows[name]["params"] and "tune_ndcg@10" in rows[name]
    # the ensemble of the hard-negative layer with the attention scorer, and that part alone
    for suffix in ("", " + graph_candidates=10"):
        ens = rows["ensemble: trained layer + attention" + suffix]
        alone = rows["attention alone (the ensemble's other part)" + suffix]
        assert "w_layer=" in ens["params"] and "beats both:" in ens["params"]
        # the tuning figure of the chosen weight is the best of the grid, so at least both parts'
        assert ens["tune_ndcg@10"] >= alone["tune_ndcg@10"] - 1e-12
    _check_vote_rows(rows)


def _check_vote_rows(rows):
    """The vote rows of the sample run (random features: the vote ranks what the packages
    nearest the query depend on, measured 0.130 / 0.130 / 0.130 against vector-only 0.071)."""
    vec = rows["HNSW vector-only"]
    for name in ("vote (alias defaults)", "vote (tuned)", "vote, trained query map (VoteTrainer)"):
        assert rows[name]["ndcg@10"] > 1.5 * vec["ndcg@10"], (name, rows[name]["ndcg@10"], vec["ndcg@10"])
        assert rows[name]["ndcg_vs_vector"] == pytest.approx(rows[name]["ndcg@10"] / vec["ndcg@10"])
    alias = rows["vote (alias defaults)"]
    assert alias["params"] == "T=0.1, voters=20, graph_candidates=20, out"
    # 25 packages, 24 candidates: every other package is a candidate already (recall 1, size 24)
    assert alias["cand_recall"] == pytest.approx(1.0) and alias["cand_size"] == pytest.approx(24.0)
    assert rows["vote (tuned)"]["cand_size"] == pytest.approx(24.0) and "tune_ndcg@10" in rows["vote (tuned)"]
    trained = rows["vote, trained query map (VoteTrainer)"]
    assert "pairs / " in trained["params"] and "lr=" in trained["params"] and "tune_ndcg@10" in trained


def test_skip_dirgnn_quick(tmp_path, capsys):
    """--skip-dirgnn leaves out the DirGNN-trained rows (and their ensembles), keeps the trained vote;
    --quick shrinks the vote grid to T (0.1, 0.2), 20 voters, direction out."""
    import_or_unavailable("scipy")
    from ruvector_graph_attn.bench import rerank_real
    from ruvector_graph_attn.datasets.debian import dependency_graph, read_packages_file

    g = dependency_graph(read_packages_file(SAMPLE))
    _fill_cache(tmp_path, g.texts)
    args = rerank_real.build_parser().parse_args(
        ["--lists", SAMPLE, "--holdout", "0.5", "--train-epochs", "1", "--cache-dir", str(tmp_path),
         "--task", "deps", "--json", "--quick", "--skip-dirgnn"])
    assert rerank_real.run(args) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)["deps"]}
    assert not any("DirGNN" in m or "ensemble" in m or "attention alone" in m for m in rows)
    _check_vote_rows(rows)
    p = rows["vote (tuned)"]["params"]
    assert p in ("temperature=0.1, voters=20, direction=out", "temperature=0.2, voters=20, direction=out"), p


def test_split_and_removed_edges():
    from ruvector_graph_attn.bench.rerank_real import split_queries
    from ruvector_graph_attn.datasets.debian import dependency_graph, read_packages_file

    g = dependency_graph(read_packages_file(SAMPLE))
    tune, test = split_queries(g, 0.5, 0)
    outdeg = np.bincount(g.edge_index[0], minlength=g.num_nodes)
    assert np.intersect1d(tune, test).size == 0 and (outdeg[np.concatenate([tune, test])] > 0).all()
    assert tune.size + test.size == round(0.5 * (outdeg > 0).sum())
