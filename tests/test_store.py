"""Memory-mapped stores: FeatureStore, MmapCSR and MmapGraph (equal to NetworkXGraph)."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import GraphSource, NetworkXGraph
from ruvector_graph_attn.store import FeatureStore, MmapCSR, MmapGraph


def _assert_same(a, b):
    assert a.node_ids == b.node_ids
    np.testing.assert_array_equal(a.edge_index, b.edge_index)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.dtype == b.x.dtype
    np.testing.assert_array_equal(a.hop, b.hop)
    np.testing.assert_array_equal(a.seeds, b.seeds)
    np.testing.assert_array_equal(a.edge_origin, b.edge_origin)
    assert a.missing == b.missing
    if a.edge_attr is None:
        assert b.edge_attr is None
    else:
        np.testing.assert_array_equal(a.edge_attr, b.edge_attr)


def _graph(kind: str, rng):
    if kind == "directed":
        G = nx.gnm_random_graph(120, 900, seed=2, directed=True)
        G.add_edge(3, 3)
        G.add_edge(4, 5), G.add_edge(5, 4)
    elif kind == "undirected":
        G = nx.gnm_random_graph(120, 500, seed=3)
        G.add_edge(7, 7)
    elif kind == "multi":
        G = nx.MultiDiGraph(nx.gnm_random_graph(80, 400, seed=4, directed=True))
        G.add_edge(1, 2), G.add_edge(1, 2)
    else:  # string ids with edge attributes
        H = nx.gnm_random_graph(90, 400, seed=5, directed=True)
        G = nx.relabel_nodes(H, {i: f"n{i:03d}" for i in H.nodes})
        for u, v in G.edges:
            G.edges[u, v]["w"] = float(rng.normal())
    for n in G.nodes:
        G.nodes[n]["embedding"] = rng.normal(size=6)
    return G


@pytest.mark.parametrize("kind", ["directed", "undirected", "multi", "strings"])
def test_mmap_graph_expand_equals_networkx(kind, tmp_path, rng):
    G = _graph(kind, rng)
    keys = ("w",) if kind == "strings" else ()
    ng = NetworkXGraph(G, edge_feature_keys=keys)
    mg = MmapGraph.from_networkx(ng, tmp_path / "g")
    assert isinstance(mg, GraphSource)
    mg = MmapGraph.open(tmp_path / "g")                  # reopened from the files
    assert (mg.num_nodes, mg.num_edges, mg.dim) == (ng.num_nodes, ng.num_edges, ng.dim)
    nodes = list(G.nodes)
    requests = [nodes[:1], [nodes[5], nodes[9], nodes[5], "absent" if kind != "strings" else 10 ** 9, nodes[40]],
                nodes[10:60], np.asarray(nodes[::7])]
    for ids in requests:
        for hops in (0, 1, 2, 3):
            for direction in ("out", "in", "both"):
                for cap in (None, 0, 2, 5):
                    a = ng.expand(ids, hops, direction, cap, seed=9)
                    b = mg.expand(ids, hops, direction, cap, seed=9)
                    _assert_same(a, b)
    np.testing.assert_array_equal(mg.contains([nodes[3], "zz", None, [1]]), ng.contains([nodes[3], "zz", None, [1]]))
    np.testing.assert_array_equal(mg.features(nodes[:4]), ng.features(nodes[:4]))
    with pytest.raises(rga.UnknownIdError):
        mg.features([nodes[0], "nope"])
    for bad in ([], "abc", None):
        with pytest.raises(rga.InvalidInputError):
            mg.expand(bad)
    with pytest.raises(rga.InvalidInputError):
        mg.expand(nodes[:2], hops=-1)
    with pytest.raises(rga.InvalidInputError):
        mg.expand(nodes[:2], direction="sideways")
    with pytest.raises(rga.InvalidInputError):
        mg.expand(nodes[:2], max_neighbors=-2)


def test_mmap_graph_build_from_arrays_equals_networkx_and_reranks_the_same(tmp_path, rng):
    n = 300
    ei = rng.integers(0, n, (2, 2000))
    x = rng.normal(size=(n, 12)).astype(np.float32)
    ids = np.arange(1000, 1000 + n)
    G = nx.DiGraph()
    G.add_nodes_from((int(i), {"embedding": x[p]}) for p, i in enumerate(ids))
    G.add_edges_from(zip(ids[ei[0]].tolist(), ids[ei[1]].tolist()))
    ng = NetworkXGraph(G)
    mg = MmapGraph.build(tmp_path / "g", ids, ei, x, directed=True)
    assert mg.num_edges == ng.num_edges              # repeated edges collapsed like NetworkX
    probe = np.array([1000, 5, 1299, 1000], dtype=np.int32)
    np.testing.assert_array_equal(mg.positions(probe), [0, -1, 299, 0])
    np.testing.assert_array_equal(mg.positions(probe), ng.positions(probe))
    _assert_same(ng.expand(probe, 1, "both"), mg.expand(probe, 1, "both"))
    seeds = ids[[0, 5, 17, 17, 200]].tolist() + [5]
    for direction in ("out", "in", "both"):
        _assert_same(ng.expand(seeds, 2, direction, 3, seed=1), mg.expand(seeds, 2, direction, 3, seed=1))
    index = rga.HNSWIndex(dim=12, M=8, ef_construction=50)
    index.add(ids[: n - 20], x[: n - 20])
    Q = rng.normal(size=(7, 12)).astype(np.float32)
    r1 = rga.GraphReranker(index=index, graph=ng, candidates=30, hops=2, max_neighbors=4).search_batch(Q, 8)
    r2 = rga.GraphReranker(index=index, graph=mg, candidates=30, hops=2, max_neighbors=4).search_batch(Q, 8)
    assert [[(h.id, h.score, h.attention) for h in r] for r in r1] == \
        [[(h.id, h.score, h.attention) for h in r] for r in r2]


def test_mmap_graph_errors(tmp_path, rng):
    x = rng.normal(size=(4, 3)).astype(np.float32)
    with pytest.raises(rga.InvalidInputError, match="duplicates"):
        MmapGraph.build(tmp_path / "a", [1, 1, 2, 3], np.zeros((2, 0), int), x)
    with pytest.raises(rga.InvalidInputError, match="outside"):
        MmapGraph.build(tmp_path / "b", [1, 2, 3, 4], np.array([[0], [9]]), x)
    with pytest.raises(rga.InvalidInputError, match="rows"):
        MmapGraph.build(tmp_path / "c", [1, 2, 3], np.zeros((2, 0), int), x)
    with pytest.raises(rga.InvalidInputError, match="integers or strings"):
        MmapGraph.build(tmp_path / "d", [1.5, 2, 3, 4], np.zeros((2, 0), int), x)
    MmapGraph.build(tmp_path / "ok", [1, 2, 3, 4], np.array([[0, 1], [1, 2]]), x)
    with pytest.raises(rga.InvalidInputError, match="exists"):
        MmapGraph.build(tmp_path / "ok", [1, 2, 3, 4], np.array([[0, 1], [1, 2]]), x)
    with pytest.raises(rga.CorruptFileError):
        MmapGraph.open(tmp_path / "nothing")
    (tmp_path / "ok" / "out_nbr.npy").write_bytes(b"garbage")
    with pytest.raises(rga.CorruptFileError):
        MmapGraph.open(tmp_path / "ok")
    man = tmp_path / "ok" / "manifest.json"
    raw = json.loads(man.read_text())
    man.write_text(json.dumps(dict(raw, version=99)))
    with pytest.raises(rga.FormatVersionError):
        MmapGraph.open(tmp_path / "ok")


# ---------------------------------------------------------------------------- FeatureStore
@pytest.mark.parametrize("dtype,itemsize", [("float32", 4), ("float16", 2), ("int8", 1)])
def test_feature_store_round_trip(dtype, itemsize, tmp_path, rng):
    x = rng.normal(size=(50, 16)).astype(np.float32) * rng.uniform(0.1, 10, size=(50, 1)).astype(np.float32)
    x[7] = 0.0
    st = FeatureStore.from_array(tmp_path / "s", x, dtype=dtype, chunk_rows=13)
    st = FeatureStore.open(tmp_path / "s")
    assert st.shape == (50, 16) and st.dtype == dtype
    assert st.nbytes == 50 * 16 * itemsize + (50 * 4 if dtype == "int8" else 0)
    y = st[np.arange(50)]
    assert y.dtype == np.float32
    if dtype == "float32":
        np.testing.assert_array_equal(y, x)
    elif dtype == "float16":
        np.testing.assert_array_equal(y, x.astype(np.float16).astype(np.float32))
    else:
        scale = np.abs(x).max(axis=1) / 127.0
        assert (np.abs(y - x) <= scale[:, None] / 2 + 1e-6).all()
        np.testing.assert_array_equal(st.data[7], 0)
        # the row maximum is represented exactly as +-127
        assert (np.abs(st.data[np.arange(50) != 7]).max(axis=1) == 127).all()
    np.testing.assert_array_equal(st[3], y[3:4])
    np.testing.assert_array_equal(st[10:20], y[10:20])


def test_feature_store_errors(tmp_path):
    st = FeatureStore.create(tmp_path / "s", 10, 4)
    with pytest.raises(rga.DimensionMismatchError):
        st.write(0, np.zeros((2, 3)))
    with pytest.raises(rga.InvalidInputError, match="outside"):
        st.write(9, np.zeros((2, 4)))
    with pytest.raises(rga.InvalidInputError, match="NaN"):
        st.write(0, np.full((1, 4), np.nan))
    with pytest.raises(rga.CorruptFileError, match="not finished"):
        FeatureStore.open(tmp_path / "s")               # the writer never called finish()
    st.write(0, np.ones((10, 4)))
    st.finish()
    assert FeatureStore.open(tmp_path / "s")[9].tolist() == [[1.0] * 4]
    with pytest.raises(rga.InvalidInputError):
        FeatureStore.create(tmp_path / "t", 10, 4, dtype="int4")
    with pytest.raises(rga.InvalidInputError, match="exists"):
        FeatureStore.create(tmp_path / "s", 10, 4)
    with pytest.raises(rga.InvalidInputError, match="out of range"):
        FeatureStore.open(tmp_path / "s")[np.array([0, 10])]
    (tmp_path / "s" / "data.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(rga.CorruptFileError):
        FeatureStore.open(tmp_path / "s")


# ---------------------------------------------------------------------------- MmapCSR
def test_csr_build_in_chunks_equals_in_memory_csr(tmp_path, rng):
    from ruvector_graph_attn.graph.utils import build_csr

    n = 500
    ei = rng.integers(0, n, (2, 4000)).astype(np.int64)
    ei[:, 100:110] = ei[:, 90:100]                        # duplicates stay separate
    csr = MmapCSR.from_edge_index(tmp_path / "c", ei, n, chunk_edges=333)
    ref = build_csr(ei, n, by="target")
    np.testing.assert_array_equal(csr.indptr, ref.indptr)
    np.testing.assert_array_equal(csr.indices, ref.col)  # stable: input order within a row
    assert csr.indices.dtype == np.int32
    np.testing.assert_array_equal(csr.row(7), ei[0][ei[1] == 7])
    ptr, col = csr.block(10, 20)
    assert ptr[0] == 0 and ptr[-1] == (ref.indptr[20] - ref.indptr[10])
    back = MmapCSR.open(tmp_path / "c").edge_index()
    assert sorted(map(tuple, back.T.tolist())) == sorted(map(tuple, ei.T.tolist()))
    src = MmapCSR.from_edge_index(tmp_path / "s", ei, n, by="source")
    np.testing.assert_array_equal(src.indices, build_csr(ei, n, by="source").col)


def test_csr_errors(tmp_path):
    with pytest.raises(rga.InvalidInputError, match="outside"):
        MmapCSR.from_edge_index(tmp_path / "a", np.array([[0, 1], [2, 7]]), 5)
    assert not (tmp_path / "a").exists()                  # nothing half-written is left
    calls = iter([[(np.array([0]), np.array([1]))], [(np.array([0, 1]), np.array([1, 2]))]])
    with pytest.raises(rga.InvalidInputError, match="second pass"):
        MmapCSR.build(tmp_path / "b", lambda: next(calls), 5)
    with pytest.raises(rga.InvalidInputError):
        MmapCSR.build(tmp_path / "c", lambda: [(np.array([0.5]), np.array([1]))], 5)
    MmapCSR.from_edge_index(tmp_path / "d", np.array([[0, 1], [2, 3]]), 5)
    idx = np.load(tmp_path / "d" / "indices.npy")
    idx[0] = 99
    np.save(tmp_path / "d" / "indices.npy", idx)
    with pytest.raises(rga.CorruptFileError, match="outside"):
        MmapCSR.open(tmp_path / "d")


def test_store_and_layerwise_import_without_dask():
    import subprocess
    import sys

    code = ("import sys, ruvector_graph_attn as rga; rga.store.MmapGraph; rga.distributed.infer_layerwise; "
            "assert 'dask' not in sys.modules and 'distributed' not in sys.modules, sorted(sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
