"""SparseMask / SparseAttention: every pattern against dense masked attention written here in numpy."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ruvector_graph_attn as rga
from ruvector_graph_attn.attention.sparse import SparseWeights
from ruvector_graph_attn.errors import DimensionMismatchError, InputTooLargeError, InvalidInputError
from ruvector_graph_attn.kernels.sparse import csr_attention


# -- independent references -------------------------------------------------------------------
def dense_masked_attention(Q, K, V, M, scale):
    """softmax(scale * Q K^T with -inf where M is False) V; rows with no allowed key -> 0."""
    S = (Q.astype(np.float64) @ K.astype(np.float64).T) * scale
    S = np.where(M, S, -np.inf)
    has = M.any(axis=1)
    m = np.where(has, S.max(axis=1), 0.0)
    E = np.where(M, np.exp(S - m[:, None]), 0.0)
    Z = E.sum(axis=1)
    W = np.where(has[:, None], E / np.where(Z == 0, 1.0, Z)[:, None], 0.0)
    return W @ V.astype(np.float64), W


def window_mask(B, N, w, offset=0, stride=0, global_tokens=()):
    pos = np.arange(B)[:, None] + offset
    j = np.arange(N)[None, :]
    M = np.abs(pos - j) <= w
    if stride:
        M |= (pos - j) % stride == 0
    for g in global_tokens:
        M[:, g] = True
        M[(pos[:, 0] == g), :] = True
    return M


def block_mask(B, N, bq, bk, blocks):
    M = np.zeros((B, N), dtype=bool)
    for a, b in blocks:
        M[a * bq:(a + 1) * bq, b * bk:(b + 1) * bk] = True
    return M


def data(rng, B, N, d, dv, dtype=np.float64):
    return (rng.standard_normal((B, d)).astype(dtype), rng.standard_normal((N, d)).astype(dtype),
            rng.standard_normal((N, dv)).astype(dtype))


def check_against(att, out, Q, K, V, M, atol=1e-10):
    ref, W = dense_masked_attention(Q, K, V, M, att.scale)
    np.testing.assert_allclose(out, ref, atol=atol, rtol=atol)
    weights = att.attention_weights()
    np.testing.assert_allclose(weights.to_dense(), W, atol=atol, rtol=atol)
    # the pattern itself is exactly M
    dense_pattern = np.zeros(M.shape, dtype=bool)
    dense_pattern[weights.rows, weights.cols] = True
    np.testing.assert_array_equal(dense_pattern, M)


# -- patterns vs dense -------------------------------------------------------------------------
def test_dense_mask_matches_reference(rng):
    Q, K, V = data(rng, 9, 13, 6, 4)
    M = rng.random((9, 13)) < 0.4
    M[3] = False  # an empty row
    att = rga.SparseAttention(dim=6)
    out = att.forward_sparse(Q, K, V, rga.SparseMask.dense(M))
    check_against(att, out, Q, K, V, M)
    assert att.empty_rows().tolist() == (~M.any(axis=1)).tolist()
    # a raw boolean array works too
    np.testing.assert_allclose(att.forward_sparse(Q, K, V, M), out, atol=1e-12)


def test_coo_duplicates_are_merged_and_shape_free(rng):
    Q, K, V = data(rng, 5, 7, 4, 3)
    rows = np.array([0, 0, 1, 4, 4, 4, 2, 0])
    cols = np.array([1, 6, 0, 2, 2, 5, 3, 1])  # (0,1) and (4,2) repeated
    M = np.zeros((5, 7), dtype=bool)
    M[rows, cols] = True
    att = rga.SparseAttention(dim=4)
    mask = rga.SparseMask.coo(rows, cols)
    out = att.forward_sparse(Q, K, V, mask)
    check_against(att, out, Q, K, V, M)
    assert att.attention_weights().values.shape == (M.sum(),)
    assert att.empty_rows().tolist() == [False, False, False, True, False]
    # the same pair list, deduplicated by hand, gives the same result
    out2 = att.forward_sparse(Q, K, V, rga.SparseMask.coo([0, 0, 1, 4, 4, 2], [1, 6, 0, 2, 5, 3], shape=(5, 7)))
    np.testing.assert_allclose(out2, out, atol=1e-12)


@pytest.mark.parametrize("block_size,blocks", [
    (4, [(0, 0), (1, 2), (2, 1), (2, 2), (0, 2)]),     # last blocks truncated (10 x 11)
    ((3, 5), [(3, 0), (0, 1), (1, 2), (1, 0), (1, 0)]),  # rectangular, a duplicate
])
def test_block_mask_matches_reference(rng, block_size, blocks):
    B, N = 10, 11
    Q, K, V = data(rng, B, N, 5, 3)
    bq, bk = (block_size, block_size) if isinstance(block_size, int) else block_size
    M = block_mask(B, N, bq, bk, blocks)
    att = rga.SparseAttention(dim=5)
    out = att.forward_sparse(Q, K, V, rga.SparseMask.block(block_size, blocks))
    check_against(att, out, Q, K, V, M)
    assert att.empty_rows().tolist() == (~M.any(axis=1)).tolist()


@pytest.mark.parametrize("w", [0, 1, 3, 20])
@pytest.mark.parametrize("global_tokens", [(), (0,), (2, 7)])
def test_windowed_matches_reference(rng, w, global_tokens):
    N = 15
    Q, K, V = data(rng, N, N, 6, 5)
    att = rga.SparseAttention(dim=6)
    out = att.forward_windowed(Q, K, V, window_size=w, global_tokens=global_tokens)
    check_against(att, out, Q, K, V, window_mask(N, N, w, global_tokens=global_tokens))


@pytest.mark.parametrize("B,N,offset", [(4, 12, 8), (6, 10, 0), (20, 8, 0), (3, 9, 2)])
def test_windowed_when_queries_and_keys_differ(rng, B, N, offset):
    Q, K, V = data(rng, B, N, 4, 2)
    att = rga.SparseAttention(dim=4)
    out = att.forward_windowed(Q, K, V, window_size=2, query_offset=offset)
    M = window_mask(B, N, 2, offset=offset)
    check_against(att, out, Q, K, V, M)
    # queries past the end of the keys (B > N + w) have no key: zero rows, flagged
    assert att.empty_rows().tolist() == (~M.any(axis=1)).tolist()
    assert np.all(out[att.empty_rows()] == 0)


@pytest.mark.parametrize("w,stride,global_tokens", [(1, 4, ()), (2, 3, (0,)), (0, 5, (1, 11)), (3, 1, ())])
def test_strided_matches_reference(rng, w, stride, global_tokens):
    N = 17
    Q, K, V = data(rng, N, N, 8, 3)
    att = rga.SparseAttention(dim=8)
    out = att.forward_strided(Q, K, V, window_size=w, stride=stride, global_tokens=global_tokens)
    check_against(att, out, Q, K, V, window_mask(N, N, w, stride=stride, global_tokens=global_tokens))


def test_strided_hand_pattern():
    # 6 tokens, window 0, stride 3, global token 5: row 0 -> {0, 3, 5}; row 5 -> everything
    m = rga.SparseMask.strided(0, 3, global_tokens=(5,), shape=(6, 6)).to_dense()
    assert np.flatnonzero(m[0]).tolist() == [0, 3, 5]
    assert np.flatnonzero(m[1]).tolist() == [1, 4, 5]
    assert m[5].all()
    assert rga.SparseMask.windowed(1, shape=(4, 4)).to_coo()[1].tolist() == [0, 1, 0, 1, 2, 1, 2, 3, 2, 3]


def test_float32_default_and_float64_kept(rng):
    Q, K, V = data(rng, 12, 12, 8, 4, dtype=np.float32)
    att = rga.SparseAttention(dim=8)
    out = att.forward_windowed(Q, K, V, 3)
    assert out.dtype == np.float32 and att.attention_weights().values.dtype == np.float32
    ref, _ = dense_masked_attention(Q, K, V, window_mask(12, 12, 3), att.scale)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    out64 = att.forward_windowed(Q.astype(np.float64), K.astype(np.float64), V.astype(np.float64), 3)
    assert out64.dtype == np.float64
    out_int = att.forward_windowed(np.ones((12, 8), dtype=np.int64).tolist(), K, V, 3)
    assert out_int.dtype == np.float32  # integers become float32 (validation.as_float_array)


def test_custom_scale(rng):
    Q, K, V = data(rng, 6, 6, 4, 2)
    att = rga.SparseAttention(dim=4, scale=0.7)
    out = att.forward_windowed(Q, K, V, 1)
    assert att.scale == 0.7
    check_against(att, out, Q, K, V, window_mask(6, 6, 1))


# -- top-k -------------------------------------------------------------------------------------
def topk_mask(Q, K, k):
    S = Q @ K.T
    M = np.zeros(S.shape, dtype=bool)
    for i in range(S.shape[0]):
        order = np.lexsort((np.arange(S.shape[1]), -S[i]))  # by score desc, then index asc
        M[i, order[:k]] = True
    return M


@pytest.mark.parametrize("k", [1, 5, 37, 50])
@pytest.mark.parametrize("score_block", [(1024, 4096), (3, 7)])
def test_topk_equals_dense_on_k_largest(rng, k, score_block):
    Q, K, V = data(rng, 11, 50, 6, 4)
    att = rga.SparseAttention(dim=6, score_block=score_block)
    out = att.forward_topk(Q, K, V, k)
    M = topk_mask(Q, K, k)
    check_against(att, out, Q, K, V, M)
    assert np.all(np.diff(att.attention_weights().rows) >= 0)


def test_topk_ties_prefer_lower_index_and_single_query(rng):
    K = np.repeat(rng.standard_normal((4, 3)), 3, axis=0)  # keys 0,1,2 equal; 3,4,5 equal; ...
    V = rng.standard_normal((12, 2))
    q = rng.standard_normal(3)
    att = rga.SparseAttention(dim=3, score_block=(1, 5))
    out = att.forward_topk(q, K, V, 4)
    assert out.shape == (2,)
    M = topk_mask(q[None, :], K, 4)
    check_against(att, out[None, :], q[None, :], K, V, M)
    best, second = np.argsort(-(K[::3] @ q))[:2]
    # the whole best group, then only the lowest index of the tied second group
    assert att.attention_weights().cols.tolist() == sorted([3 * best, 3 * best + 1, 3 * best + 2, 3 * second])


def test_topk_k_equal_n_is_full_attention(rng):
    Q, K, V = data(rng, 5, 9, 4, 3)
    att = rga.SparseAttention(dim=4)
    out = att.forward_topk(Q, K, V, 9)
    check_against(att, out, Q, K, V, np.ones((5, 9), dtype=bool))


def test_topk_float32_large_blocks(rng):
    Q, K, V = data(rng, 300, 5000, 16, 8, dtype=np.float32)
    att = rga.SparseAttention(dim=16, score_block=(128, 1000))
    out = att.forward_topk(Q, K, V, 32)
    S = Q.astype(np.float64) @ K.astype(np.float64).T
    kth = -np.sort(-S, axis=1)[:, 31]
    chosen = att.attention_weights()
    # every chosen key scores at least the k-th best (allowing float32 rounding of near ties)
    assert np.all(S[chosen.rows, chosen.cols] >= kth[chosen.rows] - 1e-4)
    assert np.bincount(chosen.rows, minlength=300).tolist() == [32] * 300
    ref, _ = dense_masked_attention(Q, K, V, topk_mask(Q.astype(np.float64), K.astype(np.float64), 32), att.scale)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


# -- forward / forward_batch / config ------------------------------------------------------------
def test_forward_and_batch_without_mask_are_dense_attention(rng):
    Q, K, V = data(rng, 4, 10, 5, 3)
    att = rga.SparseAttention(dim=5)
    ref, W = dense_masked_attention(Q, K, V, np.ones((4, 10), dtype=bool), att.scale)
    np.testing.assert_allclose(att.forward_batch(Q, K, V), ref, atol=1e-12)
    one = att.forward(Q[2], K, V)
    assert one.shape == (3,)
    np.testing.assert_allclose(one, ref[2], atol=1e-12)
    np.testing.assert_allclose(att(Q[2], K, V), ref[2], atol=1e-12)
    rows, cols, vals = att.attention_weights()
    assert rows.tolist() == [0] * 10 and cols.tolist() == list(range(10))
    np.testing.assert_allclose(vals, W[2], atol=1e-12)


def test_layer_mask_is_used_by_forward_batch(rng):
    Q, K, V = data(rng, 8, 8, 4, 2)
    att = rga.SparseAttention(dim=4, mask=rga.SparseMask.strided(1, 3, global_tokens=(4,)))
    out = att.forward_batch(Q, K, V)
    check_against(att, out, Q, K, V, window_mask(8, 8, 1, stride=3, global_tokens=(4,)))


def test_config_and_reset():
    att = rga.SparseAttention(dim=16, max_keys=1000)
    cfg = att.config()
    assert isinstance(cfg, rga.AttentionConfig)
    assert cfg.attention_type == "sparse" and cfg.dim == 16 and cfg.max_keys == 1000
    assert cfg.scale == pytest.approx(0.25)
    assert att.attention_weights() is None and att.empty_rows() is None
    assert att.state_dict() == {}


# -- empty rows --------------------------------------------------------------------------------
def test_empty_rows_zero_and_flag_or_raise(rng):
    Q, K, V = data(rng, 3, 4, 2, 2)
    mask = rga.SparseMask.coo([0, 2], [1, 3], shape=(3, 4))
    att = rga.SparseAttention(dim=2)
    out = att.forward_sparse(Q, K, V, mask)
    assert att.empty_rows().tolist() == [False, True, False]
    assert np.all(out[1] == 0)
    np.testing.assert_allclose(out[0], V[1], atol=1e-12)  # one allowed key: weight 1
    np.testing.assert_allclose(out[2], V[3], atol=1e-12)
    strict = rga.SparseAttention(dim=2, on_empty="raise")
    with pytest.raises(InvalidInputError, match="query 1 has no allowed key"):
        strict.forward_sparse(Q, K, V, mask)


# -- errors ------------------------------------------------------------------------------------
def test_out_of_range_masks_raise(rng):
    Q, K, V = data(rng, 4, 5, 3, 2)
    att = rga.SparseAttention(dim=3)
    with pytest.raises(InvalidInputError, match="key 5"):
        att.forward_sparse(Q, K, V, rga.SparseMask.coo([0, 1], [2, 5]))
    with pytest.raises(InvalidInputError, match="query 4"):
        att.forward_sparse(Q, K, V, rga.SparseMask.coo([4], [0]))
    with pytest.raises(InvalidInputError):
        rga.SparseMask.coo([0, 1], [2, 5], shape=(4, 5))
    with pytest.raises(InvalidInputError, match="negative"):
        rga.SparseMask.coo([-1], [0])
    with pytest.raises(InvalidInputError, match="block"):
        att.forward_sparse(Q, K, V, rga.SparseMask.block(2, [(0, 3)]))  # 5 keys -> key blocks 0..2
    with pytest.raises(InvalidInputError, match="global token 5"):
        att.forward_windowed(Q, K, V, 1, global_tokens=(5,))
    with pytest.raises(InvalidInputError, match="global token 9"):
        att.forward_strided(Q, K, V, 1, 2, global_tokens=(0, 9))
    with pytest.raises(InvalidInputError):
        rga.SparseMask.from_csr([0, 1, 2, 2, 2], [0, 7], shape=(4, 5))
    with pytest.raises(InvalidInputError, match="increasing"):
        rga.SparseMask.from_csr([0, 2, 2, 2, 2], [3, 1], shape=(4, 5))
    with pytest.raises(DimensionMismatchError):
        att.forward_sparse(Q, K, V, rga.SparseMask.dense(np.ones((4, 6), dtype=bool)))
    with pytest.raises(DimensionMismatchError):
        att.forward_sparse(Q, K, V, rga.SparseMask.coo([0], [0], shape=(3, 5)))


def test_input_validation(rng):
    Q, K, V = data(rng, 4, 5, 3, 2)
    att = rga.SparseAttention(dim=3)
    bad = Q.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        att.forward_windowed(bad, K, V, 1)
    Kinf = K.copy()
    Kinf[0, 0] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        att.forward_topk(Q, Kinf, V, 2)
    with pytest.raises(DimensionMismatchError):
        att.forward_windowed(Q, K, V[:4], 1)
    with pytest.raises(DimensionMismatchError):
        att.forward_windowed(Q[:, :2], K[:, :2], V, 1)  # dim 2 != layer dim 3
    with pytest.raises(InvalidInputError):
        att.forward_batch(Q[None], K, V)
    with pytest.raises(InvalidInputError, match="empty"):
        att.forward_windowed(Q, K[:0], V[:0], 1)
    with pytest.raises(InvalidInputError, match="boolean"):
        rga.SparseMask.dense(np.ones((4, 5)))
    with pytest.raises(InvalidInputError, match="larger than the number of keys"):
        att.forward_topk(Q, K, V, 6)
    with pytest.raises(InvalidInputError):
        att.forward_topk(Q, K, V, 0)
    with pytest.raises(InvalidInputError):
        att.forward_windowed(Q, K, V, -1)
    with pytest.raises(InvalidInputError):
        att.forward_strided(Q, K, V, 1, 0)
    with pytest.raises(InvalidInputError):
        rga.SparseMask.block(2, [(0, 1, 2)])
    with pytest.raises(InvalidInputError):
        rga.SparseAttention(dim=3, scale=-1.0)
    with pytest.raises(InvalidInputError):
        rga.SparseAttention(dim=0)
    with pytest.raises(InputTooLargeError):
        rga.SparseAttention(dim=3, max_keys=4).forward_windowed(Q, K, V, 1)
    with pytest.raises(InputTooLargeError):
        rga.SparseAttention(dim=3, max_nnz=10).forward_windowed(Q, K, V, 2)


# -- structure, kernel, properties -------------------------------------------------------------
def test_structured_patterns_scale_with_nnz_not_n_squared():
    n = 2_000_000  # a dense bool mask would be 4 TB
    mask = rga.SparseMask.strided(3, 500_000, global_tokens=(7,), shape=(n, n))
    indptr, indices = mask.csr(n, n)
    assert indptr.shape == (n + 1,)
    # interior row: 7 window keys + the other keys with (i - j) % 500000 == 0 + the global token
    assert indices[indptr[1_000_000]:indptr[1_000_001]].tolist() == [
        0, 7, 500_000, 999_997, 999_998, 999_999, 1_000_000, 1_000_001, 1_000_002, 1_000_003, 1_500_000]
    assert indptr[8] - indptr[7] == n  # the global token's own row attends to everything
    blk = rga.SparseMask.block(1000, [(5, 5), (5, 1999)], shape=(n, n))
    assert blk.nnz() == 2 * 1000 * 1000


def test_csr_kernel_hand_case():
    q = np.array([[1.0, 0.0], [0.0, 2.0]])
    k = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    v = np.array([[1.0], [10.0], [100.0]])
    indptr = np.array([0, 2, 2], dtype=np.int64)
    indices = np.array([0, 2], dtype=np.int64)
    out = np.full((2, 1), 99.0)
    w = np.empty(2)
    csr_attention(q, k, v, indptr, indices, 1.0, out, w)
    # row 0 scores: <q0,k0>=1, <q0,k2>=1 -> weights 1/2, 1/2 -> 50.5; row 1 empty -> 0
    np.testing.assert_allclose(w, [0.5, 0.5])
    np.testing.assert_allclose(out, [[50.5], [0.0]])


def test_sparse_weights_unpack():
    w = SparseWeights(np.array([0, 1]), np.array([2, 0]), np.array([1.0, 1.0]), (2, 3))
    rows, cols, vals = w
    assert rows.tolist() == [0, 1] and w.to_dense().tolist() == [[0, 0, 1], [1, 0, 0]]


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 8), N=st.integers(1, 12), density=st.floats(0.05, 1.0),
       seed=st.integers(0, 2**32 - 1), big=st.booleans())
def test_property_rows_sum_to_one_and_match_dense(B, N, density, seed, big):
    rng = np.random.default_rng(seed)
    Q, K, V = data(rng, B, N, 3, 2)
    if big:
        Q *= 30.0  # large scores exercise the max subtraction
    M = rng.random((B, N)) < density
    rows, cols = np.nonzero(M)
    perm = rng.permutation(rows.shape[0])
    att = rga.SparseAttention(dim=3)
    out = att.forward_sparse(Q, K, V, rga.SparseMask.coo(rows[perm], cols[perm], shape=(B, N)))
    w = att.attention_weights()
    assert np.all(w.values >= 0)
    sums = np.bincount(w.rows, weights=w.values, minlength=B)
    np.testing.assert_allclose(sums[M.any(axis=1)], 1.0, atol=1e-12)
    assert np.all(sums[~M.any(axis=1)] == 0)
    ref, _ = dense_masked_attention(Q, K, V, M, att.scale)
    np.testing.assert_allclose(out, ref, atol=1e-9, rtol=1e-9)


# -- backward ----------------------------------------------------------------------------------
def _fd_grads(fn, arrays, g_out, eps=1e-6):
    """Central finite differences of sum(fn(*arrays) * g_out) with respect to each array."""
    grads = []
    for a in arrays:
        ga = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            old = a[idx]
            a[idx] = old + eps
            up = float(np.sum(fn(*arrays) * g_out))
            a[idx] = old - eps
            down = float(np.sum(fn(*arrays) * g_out))
            a[idx] = old
            ga[idx] = (up - down) / (2 * eps)
        grads.append(ga)
    return grads


@pytest.mark.parametrize("pattern", ["coo", "strided", "topk", "single"])
def test_backward_matches_finite_differences(rng, pattern):
    B, N, d, dv = 5, 7, 3, 2
    Q, K, V = data(rng, B, N, d, dv)
    att = rga.SparseAttention(dim=d)
    if pattern == "coo":
        M = rng.random((B, N)) < 0.5
        M[2] = False  # empty row: zero gradient for that query
        rows, cols = np.nonzero(M)
        fn = lambda q, k, v: att.forward_sparse(q, k, v, rga.SparseMask.coo(rows, cols, shape=(B, N)))  # noqa: E731
    elif pattern == "strided":
        fn = lambda q, k, v: att.forward_strided(q, k, v, 1, 3, global_tokens=(0,))  # noqa: E731
    elif pattern == "topk":
        fn = lambda q, k, v: att.forward_topk(q, k, v, 3)  # noqa: E731
    else:
        Q = Q[0].copy()
        fn = lambda q, k, v: att.forward_windowed(q, k, v, 2)  # noqa: E731
    out = fn(Q, K, V)
    g_out = rng.standard_normal(out.shape)
    gq, gk, gv = att.backward(g_out)
    assert gq.shape == Q.shape and gk.shape == K.shape and gv.shape == V.shape
    fq, fk, fv = _fd_grads(fn, [Q, K, V], g_out)
    for got, want in ((gq, fq), (gk, fk), (gv, fv)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    if pattern == "coo":
        assert np.all(gq[2] == 0)


def test_backward_errors(rng):
    att = rga.SparseAttention(dim=3)
    with pytest.raises(rga.NotFittedError):
        att.backward(np.ones((2, 2)))
    Q, K, V = data(rng, 4, 4, 3, 2)
    att.forward_windowed(Q, K, V, 1)
    with pytest.raises(DimensionMismatchError):
        att.backward(np.ones((4, 3)))


def test_pattern_reuse_across_calls_with_changing_sizes_and_params(rng):
    att = rga.SparseAttention(dim=4)
    for (B, N, w, s) in [(9, 9, 1, 0), (9, 9, 1, 0), (6, 11, 1, 0), (9, 9, 2, 0), (9, 9, 1, 3), (6, 11, 1, 3)]:
        Q, K, V = data(rng, B, N, 4, 2)
        if s:
            out = att.forward_strided(Q, K, V, w, s, global_tokens=(1,))
            M = window_mask(B, N, w, stride=s, global_tokens=(1,))
        else:
            out = att.forward_windowed(Q, K, V, w)
            M = window_mask(B, N, w)
        check_against(att, out, Q, K, V, M)


def test_bench_sparse_runs_and_agrees_with_dense(capsys):
    from ruvector_graph_attn.cli import main

    assert main(["bench", "sparse", "--sizes", "300", "--window", "4", "--stride", "7", "--repeat", "1",
                 "--min-time", "0"]) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith("|") and "300" in line]
    assert len(rows) >= 2
    # the last column before the peak ratio is max |sparse - dense|; it must be tiny
    diffs = [float(r.split("|")[-3]) for r in rows[-2:]]
    assert max(diffs) < 1e-5
