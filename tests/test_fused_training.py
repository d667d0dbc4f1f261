"""Counter-based dropout, the project-first SAGE path, GIN's fused combine and the
validate-once model boundary."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn import nn
from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.graph import GINConv, GraphSequential, SAGEConv
from ruvector_graph_attn.kernels.aggregate import gin_combine, sage_combine, scaled_transpose_sum
from ruvector_graph_attn.kernels.dropout import dropout_apply, dropout_scale, dropout_threshold
from ruvector_graph_attn.graph.utils import build_csr
from ruvector_graph_attn.training.datasets import taxonomy_like
from ruvector_graph_attn.validation import as_float_array, trusted_arrays


def _graph(rng, n=40, e=160):
    return np.ascontiguousarray(rng.integers(0, n, size=(2, e)).astype(np.int64))


# ------------------------------------------------------------------ dropout kernel
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_kernel_rate_scale_and_determinism(p):
    x = np.linspace(1.0, 2.0, 200_001, dtype=np.float32)   # odd length: the tail element too
    y = dropout_apply(x, 42, dropout_threshold(p), 1.0 / (1.0 - p))
    dropped = y == 0
    assert abs(dropped.mean() - p) < 0.005                  # 200K Bernoulli draws: sd ~ 0.001
    np.testing.assert_allclose(y[~dropped], x[~dropped] * np.float32(1.0 / (1.0 - p)), rtol=1e-6)
    np.testing.assert_array_equal(dropout_apply(x, 42, dropout_threshold(p), 1.0 / (1.0 - p)), y)
    other = dropout_apply(x, 43, dropout_threshold(p), 1.0 / (1.0 - p)) == 0
    assert 0.0 < (other != dropped).mean()                   # another seed, another mask
    s = dropout_scale(x.size, 42, dropout_threshold(p), 1.0 / (1.0 - p), np.float32)
    np.testing.assert_array_equal(s * x, y)


def test_dropout_kernel_bits_are_independent():
    # neighbouring elements and consecutive seeds must not be correlated
    m = dropout_scale(400_000, 7, dropout_threshold(0.5), 1.0) > 0
    a, b = m[:-1].astype(np.float64), m[1:].astype(np.float64)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    m2 = dropout_scale(400_000, 8, dropout_threshold(0.5), 1.0) > 0
    assert abs(np.corrcoef(m.astype(float), m2.astype(float))[0, 1]) < 0.01
    # the same in both dtypes
    np.testing.assert_array_equal(dropout_scale(1001, 9, dropout_threshold(0.3), 2.0, np.float64),
                                  dropout_scale(1001, 9, dropout_threshold(0.3), 2.0, np.float32))


def test_dropout_threshold_edges():
    assert dropout_threshold(0.0) == 0
    assert dropout_threshold(0.5) == 2**31
    assert dropout_threshold(1.0 - 1e-12) == 2**32 - 1


def test_dropout_module_backward_regenerates_mask(rng):
    d = nn.Dropout(0.4, rng=3)
    x = rng.standard_normal((30, 17)).astype(np.float32) + 5.0
    y = d(x)
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(d.backward(g), np.where(y == 0, 0.0, g / np.float32(0.6)), rtol=1e-6)


# ------------------------------------------------------------------ fused aggregation kernels
def test_sage_combine_and_transpose_match_numpy(rng):
    n, width = 25, 3
    ei = _graph(rng, n, 90)
    csr = build_csr(ei, n)
    h = rng.standard_normal((n, 2 * width))
    bias = rng.standard_normal(width)
    deg = np.bincount(ei[1], minlength=n)
    agg = np.zeros((n, width))
    np.add.at(agg, ei[1], h[ei[0], :width])
    mean = agg / np.maximum(deg, 1)[:, None]
    np.testing.assert_allclose(sage_combine(h[:, :width], h[:, width:], csr.indptr, csr.col, bias, True),
                               mean + h[:, width:] + bias, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sage_combine(h[:, :width].copy(), np.empty((0, width)), csr.indptr, csr.col, bias, False),
                               agg + bias, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal((n, width))
    scale = rng.random(n) + 0.5
    src = build_csr(ei, n, by="source")
    out = np.full((n, 2 * width), 7.0)
    scaled_transpose_sum(g, src.indptr, src.col, scale, out, width)
    ref = np.zeros((n, width))
    np.add.at(ref, ei[0], g[ei[1]] * scale[ei[1], None])
    np.testing.assert_allclose(out[:, :width], ref, rtol=1e-12, atol=1e-12)
    assert (out[:, width:] == 7.0).all()  # only the first `width` columns are written
    x = rng.standard_normal((n, 4))
    agg_x = np.zeros_like(x)
    np.add.at(agg_x, ei[1], x[ei[0]])
    np.testing.assert_allclose(gin_combine(x, csr.indptr, csr.col, 1.25), agg_x + 1.25 * x, rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(aggr="mean"), dict(aggr="sum"), dict(aggr="mean", normalize=True),
                                dict(aggr="mean", root_weight=False, bias=False)])
def test_sage_project_first_equals_aggregate_first(kw, rng, monkeypatch):
    """The fused path (out <= in) gives the aggregate-first outputs and gradients."""
    ei = _graph(rng)
    x = rng.standard_normal((40, 6))
    g = rng.standard_normal((40, 4))
    fused = SAGEConv(6, 4, rng=0, **kw).double()
    plain = SAGEConv(6, 4, rng=0, **kw).double()
    assert fused._project_first()
    y1 = fused(x, ei)
    gx1 = fused.backward(g)
    monkeypatch.setattr(SAGEConv, "_project_first", lambda self: False)
    y2 = plain(x, ei)
    gx2 = plain.backward(g)
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-12, atol=1e-12)
    for (name, p1), (_, p2) in zip(fused.named_parameters(), plain.named_parameters()):
        np.testing.assert_allclose(p1.grad, p2.grad, rtol=1e-12, atol=1e-12, err_msg=name)
    # parameter-only backward accumulates the same gradients and returns None
    fused.zero_grad()
    fused(x, ei)
    assert fused.backward(g, need_input_grad=False) is None
    np.testing.assert_allclose(fused.lin_l.weight.grad, plain.lin_l.weight.grad, rtol=1e-12)


# ------------------------------------------------------------------ validate once at the boundary
def test_trusted_arrays_skips_only_the_finiteness_scan():
    bad = np.array([[1.0, np.nan]])
    with pytest.raises(InvalidInputError):
        as_float_array(bad, "x")
    with trusted_arrays():
        assert np.isnan(as_float_array(bad, "x")).any()
        with pytest.raises(InvalidInputError):
            as_float_array(np.array(["a"]), "x")       # dtype checks still run
    with pytest.raises(InvalidInputError):
        as_float_array(bad, "x")                          # the context is left behind


def test_model_boundary_still_rejects_bad_input(rng):
    ei = _graph(rng)
    model = GraphSequential([SAGEConv(4, 3, rng=0), nn.ReLU(), GINConv(nn.Sequential(nn.Linear(3, 2, rng=1)))])
    x = rng.standard_normal((40, 4))
    y = model(x, ei)
    x_bad = x.copy()
    x_bad[3, 1] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        model(x_bad, ei)
    g = np.ones_like(y)
    g[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        model.backward(g)
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        nn.Sequential(nn.Linear(4, 2, rng=0), nn.ReLU())(x_bad)


# ------------------------------------------------------------------ taxonomy-shaped data
def test_taxonomy_like_shape_and_degrees():
    ds = taxonomy_like(seed=1, num_nodes=3000, num_features=16, num_classes=6, num_undirected_edges=6000)
    assert ds.x.shape == (3000, 16) and ds.x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), 1.0, rtol=1e-5)
    assert ds.edge_index.shape == (2, 12000)
    assert ds.num_classes == 6
    deg = np.bincount(ds.edge_index[1], minlength=3000)
    assert np.median(deg) <= 4 and deg.max() >= 40      # many small degrees, a few hubs
    und = {(min(a, b), max(a, b)) for a, b in ds.edge_index.T}
    assert len(und) == 6000 and all(a != b for a, b in und)  # simple, symmetric
    assert ds.edge_homophily() > 0.6
    assert not (ds.train_mask & ds.test_mask).any()
    again = taxonomy_like(seed=1, num_nodes=3000, num_features=16, num_classes=6, num_undirected_edges=6000)
    np.testing.assert_array_equal(again.edge_index, ds.edge_index)
    with pytest.raises(InvalidInputError):
        taxonomy_like(num_nodes=100, num_classes=26)
