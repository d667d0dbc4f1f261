"""Segment kernels and graph utils vs plain numpy references (loops over edges, written here)."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.graph.utils import (
    add_self_loops, build_csr, degree, remove_self_loops, validate_edge_index,
)
from ruvector_graph_attn.kernels import segment as K

N = 7
# duplicates (2->1 twice), a self loop (3->3), node 5 has no in-edges, node 6 isolated
EDGES = np.array([[0, 2, 2, 3, 4, 1, 0, 3, 5, 4],
                  [1, 1, 1, 3, 0, 2, 2, 4, 4, 4]], dtype=np.int64)


def ref_softmax(scores, dst, n):
    out = np.zeros_like(scores, dtype=np.float64)
    for i in range(n):
        m = dst == i
        if m.any():
            s = scores[m].astype(np.float64)
            ex = np.exp(s - s.max(axis=0))
            out[m] = ex / ex.sum(axis=0)
    return out


def ref_scatter(msg, dst, n, how):
    out = np.zeros((n, msg.shape[1]), dtype=np.float64)
    for i in range(n):
        m = dst == i
        if m.any():
            out[i] = getattr(np, how)(msg[m], axis=0)
    return out


@pytest.fixture
def csr():
    return build_csr(EDGES, N)


def test_csr_is_stable_and_complete(csr):
    assert csr.indptr.tolist() == [0, 1, 4, 6, 7, 10, 10, 10]
    # edges grouped by target, original order kept inside a group (duplicates separate)
    assert csr.perm.tolist() == [4, 0, 1, 2, 5, 6, 3, 7, 8, 9]
    assert np.array_equal(csr.col, EDGES[0][csr.perm])
    assert np.array_equal(EDGES[1][csr.perm], np.sort(EDGES[1], kind="stable"))
    src_csr = build_csr(EDGES, N, by="source")
    assert np.array_equal(EDGES[0][src_csr.perm], np.sort(EDGES[0], kind="stable"))
    assert degree(EDGES[1], N).tolist() == [1, 3, 2, 1, 3, 0, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_softmax_matches_reference(csr, rng, dtype):
    s = rng.normal(size=(EDGES.shape[1], 3)).astype(dtype)
    a = K.segment_softmax(s, csr.indptr, csr.perm)
    assert a.dtype == dtype
    np.testing.assert_allclose(a, ref_softmax(s, EDGES[1], N), rtol=1e-5, atol=1e-7)
    sums = K.segment_sum(a, csr.indptr, csr.perm)
    has_in = np.diff(csr.indptr) > 0
    np.testing.assert_allclose(sums[has_in], 1.0, rtol=1e-5)
    assert np.all(sums[~has_in] == 0)


def test_segment_softmax_extreme_values(csr):
    s = np.array([[1e30, -1e30], [5e4, 1e-30], [5e4, -3e38], [1e4, 0.0], [-1e30, 88.0],
                  [0.0, 0.0], [-5e4, 200.0], [3e38, 1.0], [-3e38, 1.0], [0.0, -np.inf]], dtype=np.float32)
    a = K.segment_softmax(s, csr.indptr, csr.perm)
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, ref_softmax(s.astype(np.float64), EDGES[1], N), atol=1e-6)
    # node 1 (edges 0, 1, 2): the 1e30 score takes everything; node 4 (edges 7, 8, 9),
    # column 1: two equal scores split evenly and the -inf edge gets 0
    np.testing.assert_allclose(a[[0, 1, 2], 0], [1.0, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(a[[7, 8, 9], 1], [0.5, 0.5, 0.0], atol=1e-7)
    # a group of only -inf gets zeros (documented), not NaN
    s2 = np.full((EDGES.shape[1], 1), -np.inf)
    assert np.all(K.segment_softmax(s2, csr.indptr, csr.perm) == 0)


def test_segment_softmax_backward_fd(csr, rng):
    s = rng.normal(size=(EDGES.shape[1], 2))
    g = rng.normal(size=s.shape)
    a = K.segment_softmax(s, csr.indptr, csr.perm)
    got = K.segment_softmax_backward(a, g, csr.indptr, csr.perm)
    eps = 1e-6
    num = np.zeros_like(s)
    for idx in np.ndindex(*s.shape):
        sp, sm = s.copy(), s.copy()
        sp[idx] += eps
        sm[idx] -= eps
        num[idx] = ((K.segment_softmax(sp, csr.indptr, csr.perm) * g).sum()
                    - (K.segment_softmax(sm, csr.indptr, csr.perm) * g).sum()) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("how", ["sum", "mean", "max", "min"])
def test_scatter_matches_reference(csr, rng, how):
    msg = rng.normal(size=(EDGES.shape[1], 5)).astype(np.float32)
    fn = getattr(K, f"scatter_{how}")
    out = fn(msg, csr.indptr, csr.perm)
    if how in ("max", "min"):
        out, arg = out
        empty = np.diff(csr.indptr) == 0
        assert np.all(arg[empty] == -1)
        np.testing.assert_array_equal(msg[arg[~empty], np.arange(5)], out[~empty])
    np.testing.assert_allclose(out, ref_scatter(msg, EDGES[1], N, how), rtol=1e-6, atol=1e-6)
    assert np.all(out[[5, 6]] == 0)  # empty groups give 0, as PyG


def test_scatter_extreme_values(csr):
    msg = np.full((EDGES.shape[1], 2), -3e38, dtype=np.float32)
    msg[9, 1] = 3e38
    out, _ = K.scatter_max(msg, csr.indptr, csr.perm)
    assert out[4, 1] == np.float32(3e38) and out[4, 0] == np.float32(-3e38)
    assert np.all(out[5] == 0)
    mean = K.scatter_mean(np.full((EDGES.shape[1], 1), 1e38, dtype=np.float32), csr.indptr, csr.perm)
    assert mean[0, 0] == np.float32(1e38)


def _fd(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


def test_scatter_backwards_fd(csr, rng):
    msg = rng.normal(size=(EDGES.shape[1], 3))
    w = rng.normal(size=(N, 3))
    idx = EDGES[1]
    g_sum = K.scatter_sum_backward(w, idx)
    np.testing.assert_allclose(g_sum, _fd(lambda m: (K.scatter_sum(m, csr.indptr, csr.perm) * w).sum(), msg),
                               rtol=1e-6, atol=1e-8)
    g_mean = K.scatter_mean_backward(w, idx, csr.indptr)
    np.testing.assert_allclose(g_mean, _fd(lambda m: (K.scatter_mean(m, csr.indptr, csr.perm) * w).sum(), msg),
                               rtol=1e-6, atol=1e-8)
    out, arg = K.scatter_max(msg, csr.indptr, csr.perm)
    g_max = K.scatter_arg_backward(w, arg, EDGES.shape[1])
    np.testing.assert_allclose(g_max, _fd(lambda m: (K.scatter_max(m, csr.indptr, csr.perm)[0] * w).sum(), msg),
                               rtol=1e-6, atol=1e-8)
    # without ties the split rule equals the argmax rule
    np.testing.assert_allclose(K.scatter_max_backward_split(w, msg, out, csr.indptr, csr.perm), g_max)


def test_scatter_max_ties():
    ei = np.array([[0, 1, 2], [3, 3, 3]])
    c = build_csr(ei, 4)
    msg = np.array([[1.0], [2.0], [2.0]])
    out, arg = K.scatter_max(msg, c.indptr, c.perm)
    assert out[3, 0] == 2.0 and arg[3, 0] == 1  # first tied edge in CSR order wins
    g = K.scatter_max_backward_split(np.array([[0.0], [0.0], [0.0], [1.0]]), msg, out, c.indptr, c.perm)
    assert g[:, 0].tolist() == [0.0, 0.5, 0.5]


def test_gather_rows(rng):
    x = rng.normal(size=(6, 4)).astype(np.float32)
    idx = np.array([5, 0, 0, 3], dtype=np.int64)
    np.testing.assert_array_equal(K.gather_rows(x, idx), x[idx])


def _gat_ref(a_src, a_dst, a_edge, xs, src, dst, n, slope):
    pre = a_src[src] + a_dst[dst] + (a_edge if a_edge.shape[0] else 0)
    score = np.where(pre > 0, pre, slope * pre)
    alpha = ref_softmax(score, dst, n)
    out = np.zeros((n,) + xs.shape[1:])
    for e in range(src.shape[0]):
        out[dst[e]] += alpha[e][:, None] * xs[src[e]]
    return out, alpha, pre


@pytest.mark.parametrize("with_edge", [False, True])
def test_gat_fused_forward_and_pieces(csr, rng, with_edge):
    H, C = 3, 4
    E = EDGES.shape[1]
    a_src, a_dst = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    a_edge = rng.normal(size=(E, H)) if with_edge else np.zeros((0, H))
    xs = rng.normal(size=(N, H, C))
    src, dst = EDGES
    ref_out, ref_alpha, ref_pre = _gat_ref(a_src, a_dst, a_edge, xs, src, dst, N, 0.2)
    out, alpha = K.gat_fused_forward(a_src, a_dst, a_edge, xs, csr.indptr, csr.perm, csr.col, 0.2, True)
    out_only, no_alpha = K.gat_fused_forward(a_src, a_dst, a_edge, xs, csr.indptr, csr.perm, csr.col, 0.2, False)
    np.testing.assert_array_equal(out_only, out)
    assert no_alpha.shape == (0, H)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-10, atol=1e-12)
    # the unfused pieces agree with the fused kernel
    score = np.where(ref_pre > 0, ref_pre, 0.2 * ref_pre)
    alpha2 = K.segment_softmax(score, csr.indptr, csr.perm)
    np.testing.assert_allclose(alpha2, ref_alpha, rtol=1e-10)
    np.testing.assert_allclose(K.weighted_aggregate(alpha2, xs, csr.indptr, csr.perm, csr.col), ref_out,
                               rtol=1e-10, atol=1e-12)


def test_weighted_aggregate_backward_fd(csr, rng):
    H, C = 2, 3
    E = EDGES.shape[1]
    alpha = rng.random(size=(E, H))
    xs = rng.normal(size=(N, H, C))
    w = rng.normal(size=(N, H, C))
    scsr = build_csr(EDGES, N, by="source")

    def loss_a(a):
        return (K.weighted_aggregate(a, xs, csr.indptr, csr.perm, csr.col) * w).sum()

    def loss_x(x):
        return (K.weighted_aggregate(alpha, x, csr.indptr, csr.perm, csr.col) * w).sum()

    ga = K.weighted_aggregate_backward_alpha(w, xs, csr.indptr, csr.perm, csr.col)
    gx = K.weighted_aggregate_backward_x(w, alpha, scsr.indptr, scsr.perm, scsr.col, N)
    np.testing.assert_allclose(ga, _fd(loss_a, alpha), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gx, _fd(loss_x, xs), rtol=1e-6, atol=1e-9)


def test_gat_fused_backward_fd(csr, rng):
    H, C = 2, 3
    E = EDGES.shape[1]
    a_src, a_dst = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    a_edge = rng.normal(size=(E, H))
    xs = rng.normal(size=(N, H, C))
    w = rng.normal(size=(N, H, C))
    scsr = build_csr(EDGES, N, by="source")
    args = (csr.indptr, csr.perm, csr.col, 0.2)

    def loss(asrc, adst, aedge, x):
        return (K.gat_fused_forward(asrc, adst, aedge, x, *args, False)[0] * w).sum()

    out, alpha = K.gat_fused_forward(a_src, a_dst, a_edge, xs, *args, True)
    no_drop = np.zeros((0, H))
    gpre, gadst = K.gat_fused_backward_targets(w, alpha, no_drop, xs, a_src, a_dst, a_edge, *args)
    gx, gasrc = K.gat_fused_backward_sources(w, alpha, gpre, scsr.indptr, scsr.perm, scsr.col, N)
    np.testing.assert_allclose(gadst, _fd(lambda v: loss(a_src, v, a_edge, xs), a_dst), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gasrc, _fd(lambda v: loss(v, a_dst, a_edge, xs), a_src), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gpre, _fd(lambda v: loss(a_src, a_dst, v, xs), a_edge), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gx, _fd(lambda v: loss(a_src, a_dst, a_edge, v), xs), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("with_edge", [False, True])
def test_gatv2_fused_forward_backward(csr, rng, with_edge):
    H, C = 2, 3
    E = EDGES.shape[1]
    xl, xr = rng.normal(size=(N, H, C)), rng.normal(size=(N, H, C))
    ee = rng.normal(size=(E, H, C)) if with_edge else np.zeros((0, H, C))
    att = rng.normal(size=(H, C))
    src, dst = EDGES
    z = xl[src] + xr[dst] + (ee if with_edge else 0)
    score = (np.where(z > 0, z, 0.2 * z) * att).sum(-1)
    ref_alpha = ref_softmax(score, dst, N)
    ref_out = np.zeros((N, H, C))
    for e in range(E):
        ref_out[dst[e]] += ref_alpha[e][:, None] * xl[src[e]]
    args = (csr.indptr, csr.perm, csr.col, 0.2)
    out, alpha = K.gatv2_fused_forward(xl, xr, ee, att, *args, True)
    assert K.gatv2_fused_forward(xl, xr, ee, att, *args, False)[1].shape == (0, H)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-10, atol=1e-12)

    w = rng.normal(size=(N, H, C))
    scsr = build_csr(EDGES, N, by="source")

    def loss(l, r, e_, a):
        return (K.gatv2_fused_forward(l, r, e_, a, *args, False)[0] * w).sum()

    gs, gxr, gatt, gee = K.gatv2_fused_backward_targets(w, alpha, np.zeros((0, H)), xl, xr, ee, att, *args,
                                                        with_edge)
    gxl = K.gatv2_backward_sources(w, alpha, gs, xl, xr, ee, att, scsr.indptr, scsr.perm, scsr.col, 0.2)
    np.testing.assert_allclose(gxr, _fd(lambda v: loss(xl, v, ee, att), xr), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gxl, _fd(lambda v: loss(v, xr, ee, att), xl), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gatt.sum(0), _fd(lambda v: loss(xl, xr, ee, v), att), rtol=1e-6, atol=1e-9)
    if with_edge:
        np.testing.assert_allclose(gee, _fd(lambda v: loss(xl, xr, v, att), ee), rtol=1e-6, atol=1e-9)
    else:
        assert gee.shape == (0, H, C)


def test_empty_edge_set():
    ei = np.zeros((2, 0), dtype=np.int64)
    c = build_csr(ei, 3)
    assert c.indptr.tolist() == [0, 0, 0, 0]
    assert K.scatter_sum(np.zeros((0, 2)), c.indptr, c.perm).tolist() == [[0, 0]] * 3
    assert K.segment_softmax(np.zeros((0, 2)), c.indptr, c.perm).shape == (0, 2)
    out, alpha = K.gat_fused_forward(np.ones((3, 1)), np.ones((3, 1)), np.zeros((0, 1)), np.ones((3, 1, 2)),
                                     c.indptr, c.perm, c.col, 0.2, True)
    assert np.all(out == 0) and alpha.shape == (0, 1)


# ----------------------------------------------------------------------------- utils
def test_validate_edge_index_errors():
    with pytest.raises(InvalidInputError, match="only 3 nodes"):
        validate_edge_index([[0, 3], [1, 1]], 3)
    with pytest.raises(InvalidInputError, match="negative"):
        validate_edge_index([[0, -1], [1, 1]], 3)
    with pytest.raises(InvalidInputError, match=r"\[2, E\]"):
        validate_edge_index([[0, 1, 2]], 3)
    with pytest.raises(InvalidInputError, match="integer dtype"):
        validate_edge_index(np.array([[0.0, 1.0], [1.0, 2.0]]), 3)
    out = validate_edge_index(np.array([[0, 1], [1, 2]], dtype=np.int32), 3)
    assert out.dtype == np.int64 and out.flags.c_contiguous


def test_remove_and_add_self_loops_with_fill_values():
    attr = np.arange(EDGES.shape[1], dtype=np.float64)[:, None] * np.array([[1.0, -1.0]])
    ei, ea = remove_self_loops(EDGES, attr)
    assert not np.any(ei[0] == ei[1]) and ea.shape == (8, 2)
    assert 3 not in ea[:, 0] and 9 not in ea[:, 0]  # the rows of loops (3,3), (4,4) went too
    for fill in ["mean", "add", "sum", "max", "min", 2.5, None, np.array([7.0, 8.0])]:
        ei2, ea2 = add_self_loops(ei, N, ea, fill_value=fill)
        assert ei2.shape == (2, 8 + N)
        np.testing.assert_array_equal(ei2[:, :8], ei)
        np.testing.assert_array_equal(ei2[:, 8:], np.stack([np.arange(N)] * 2))
        loop = ea2[8:]
        for i in range(N):
            inc = ea[ei[1] == i]
            if isinstance(fill, str):
                how = {"add": "sum"}.get(fill, fill)
                want = getattr(np, how)(inc, axis=0) if len(inc) else np.zeros(2)
            elif fill is None:
                want = np.ones(2)
            else:
                want = np.broadcast_to(np.asarray(fill, dtype=float), (2,))
            np.testing.assert_allclose(loop[i], want)
    # hand-checked: node 1 receives rows 0, 1, 2 -> mean 1, node 4 rows 7, 8 -> max 8
    _, ea_mean = add_self_loops(ei, N, ea, fill_value="mean")
    assert ea_mean[8 + 1, 0] == 1.0
    _, ea_max = add_self_loops(ei, N, ea, fill_value="max")
    assert ea_max[8 + 4, 0] == 8.0 and ea_max[8 + 5, 0] == 0.0
    with pytest.raises(InvalidInputError):
        add_self_loops(ei, N, ea, fill_value="median")
    with pytest.raises(DimensionMismatchError):
        add_self_loops(ei, N, ea, fill_value=np.ones(3))
    with pytest.raises(DimensionMismatchError):
        add_self_loops(ei, N, ea[:3])
    ei3, none = add_self_loops(ei, N)
    assert none is None and ei3.shape[1] == 8 + N


@pytest.mark.parametrize("remove,num_loops", [(True, N), (False, 0), (True, 3), (False, N)])
def test_csr_with_self_loops_equals_csr_of_built_edge_list(remove, num_loops):
    keep = np.flatnonzero(EDGES[0] != EDGES[1]) if remove else np.arange(EDGES.shape[1])
    loops = np.arange(num_loops)
    built = np.concatenate([EDGES[:, keep], np.stack([loops, loops])], axis=1)
    ref = build_csr(built, N)
    indptr, perm, col, kept = K.csr_with_self_loops(EDGES[0], EDGES[1], N, num_loops, remove)
    np.testing.assert_array_equal(indptr, ref.indptr)
    np.testing.assert_array_equal(perm, ref.perm)
    np.testing.assert_array_equal(col, ref.col)
    np.testing.assert_array_equal(kept, keep)
