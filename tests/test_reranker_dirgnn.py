"""DirGNNConv (direction-aware residual layer), hard negatives for RerankerTrainer, and the
layer scorer's handling of direction-aware layers."""
import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.graph import DirGNNConv, SAGEConv
from ruvector_graph_attn.training import Adam, RerankerTrainer, info_nce, mine_hard_negatives

from _rga_gradcheck import check_module_grads


def _graph(n=9, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, 20)
    dst = rng.integers(0, n, 20)
    keep = src != dst
    return np.stack([src[keep], dst[keep]]).astype(np.int64)


def _mean_agg(x, src, dst, n):
    out = np.zeros((n, x.shape[1]))
    cnt = np.zeros(n)
    for s, d in zip(src, dst):
        out[d] += x[s]
        cnt[d] += 1
    return out / np.maximum(cnt, 1)[:, None]


def _reference(layer, x, ei):
    sd = layer.state_dict()
    n = x.shape[0]
    a_in = _mean_agg(x, ei[0], ei[1], n)           # in-neighbours j -> i
    a_out = _mean_agg(x, ei[1], ei[0], n)          # out-neighbours i -> j
    x_in = a_in @ sd["conv_in.lin_l.weight"].T + sd["conv_in.lin_l.bias"]
    x_out = a_out @ sd["conv_out.lin_l.weight"].T + sd["conv_out.lin_l.bias"]
    return layer.alpha * x_out + (1 - layer.alpha) * x_in + x @ sd["lin.weight"].T + sd["lin.bias"]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_dirgnn_matches_numpy_reference(alpha):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 5))
    ei = _graph()
    layer = DirGNNConv(SAGEConv(5, 4, rng=0), alpha=alpha, rng=1).double()
    np.testing.assert_allclose(layer(x, ei), _reference(layer, x, ei), rtol=1e-10, atol=1e-12)
    # parameter names follow PyG (the copies keep their unused root weights)
    assert set(layer.state_dict()) == {
        "conv_in.lin_l.weight", "conv_in.lin_l.bias", "conv_in.lin_r.weight",
        "conv_out.lin_l.weight", "conv_out.lin_l.bias", "conv_out.lin_r.weight", "lin.weight", "lin.bias"}


def test_dirgnn_reads_direction():
    # 0 -> 1: node 1's in-neighbour is 0, node 0's out-neighbour is 1
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    ei = np.array([[0], [1]])
    layer = DirGNNConv(SAGEConv(2, 2), alpha=0.25, root_weight=False).double()
    for c in (layer.conv_in, layer.conv_out):
        c.lin_l.weight.data = np.eye(2)
        c.lin_l.bias.data = np.zeros(2)
    out = layer(x, ei)
    np.testing.assert_allclose(out, [[0.0, 0.25], [0.75, 0.0]])


def test_dirgnn_residual_init_is_identity():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(9, 6)).astype(np.float32)
    layer = DirGNNConv(SAGEConv(6, 6), alpha=0.5).residual_init()
    np.testing.assert_allclose(layer(x, _graph()), x, rtol=1e-6, atol=1e-6)
    with pytest.raises(InvalidInputError):
        DirGNNConv(SAGEConv(6, 4)).residual_init()


def test_dirgnn_gradients_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 4))
    ei = _graph(seed=4)
    layer = DirGNNConv(SAGEConv(4, 3, rng=0), alpha=0.4, rng=1).double()
    errs = check_module_grads(layer, [x], lambda a: layer(a, ei), layer.backward, rng)
    assert {"input0", "conv_in.lin_l.weight", "conv_out.lin_l.bias", "lin.weight"} <= set(errs)
    assert "conv_in.lin_r.weight" not in errs                   # frozen: the copies' root term is off
    # parameters-only backward accumulates the same gradients and returns None
    w = rng.normal(size=(9, 3))
    layer.zero_grad()
    layer(x, ei)
    assert layer.backward(w, need_input_grad=False) is None
    np.testing.assert_allclose(layer.lin.weight.grad, w.T @ x)


def test_dirgnn_matches_pyg_live():
    """Live comparison (bench extra); CI checks the stored fixture (test_torch_reference.py)."""
    torch = pytest.importorskip("torch")
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    ref = pyg.nn.DirGNNConv(pyg.nn.SAGEConv(5, 4), alpha=0.3).double()
    ours = DirGNNConv(SAGEConv(5, 4), alpha=0.3).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 5))
    ei = _graph(seed=6)
    want = ref(torch.from_numpy(x), torch.from_numpy(ei)).detach().numpy()
    np.testing.assert_allclose(ours(x, ei), want, rtol=1e-10, atol=1e-12)


def test_dirgnn_bad_input():
    with pytest.raises(InvalidInputError):
        DirGNNConv(SAGEConv(3, 3), alpha=1.5)
    with pytest.raises(InvalidInputError):
        DirGNNConv(rga.nn.ReLU())
    with pytest.raises(InvalidInputError):
        DirGNNConv(DirGNNConv(SAGEConv(3, 3)))
    layer = DirGNNConv(SAGEConv(3, 3))
    with pytest.raises(InvalidInputError):
        layer(np.full((4, 3), np.nan), np.array([[0], [1]]))
    with pytest.raises(InvalidInputError):
        layer(np.ones((4, 3)), np.array([[0], [7]]))
    with pytest.raises(DimensionMismatchError):
        layer(np.ones((4, 3)), np.array([[0], [1]]))
        layer.backward(np.ones((3, 3)))


# ---------------------------------------------------------------------------- hard negatives
def test_mine_hard_negatives_by_hand():
    q = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])    # pairs 0 and 1 share a query
    pos = np.array([4, 7, 2])
    cand = np.array([[7, 4, 5, 6, 1],
                     [9, 9, 9, 9, 9],                    # ignored: a query's first pair's row is used
                     [2, -1, 3, 8, 0]])
    out = mine_hard_negatives(pos, 2, candidates=cand, queries=q)
    np.testing.assert_array_equal(out, [[5, 6], [5, 6], [3, 8]])
    out = mine_hard_negatives(pos, 4, candidates=cand, query_ids=np.array([0, 1, 2]))
    np.testing.assert_array_equal(out, [[7, 5, 6, 1], [9, 9, 9, 9], [3, 8, 0, -1]])


def test_mine_hard_negatives_from_index():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 8)).astype(np.float32)
    index = rga.HNSWIndex(dim=8, space="cosine", M=16, ef_construction=100, max_elements=50)
    index.add(np.arange(50), X)
    q = X[[3, 3, 10]]
    pos = np.array([3, 20, 10])
    out = mine_hard_negatives(pos, 5, index=index, queries=q)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    for row, (qq, group_pos) in zip(out, [(q[0], {3, 20}), (q[0], {3, 20}), (q[2], {10})]):
        order = np.argsort(-(Xn @ (qq / np.linalg.norm(qq))), kind="stable")
        want = [i for i in order if i not in group_pos][:5]
        np.testing.assert_array_equal(row, want)


def test_mine_hard_negatives_bad_input():
    with pytest.raises(InvalidInputError):
        mine_hard_negatives([1, 2], 2, queries=np.ones((2, 2)))                     # no source
    with pytest.raises(InvalidInputError):
        mine_hard_negatives([1, 2], 2, candidates=np.ones((2, 3), int))              # no grouping
    with pytest.raises(DimensionMismatchError):
        mine_hard_negatives([1, 2], 2, candidates=np.ones((3, 3), int), query_ids=[0, 1])
    with pytest.raises(InvalidInputError):
        mine_hard_negatives([1, 2], 2, candidates=np.ones((2, 3)), query_ids=[0, 1])  # float ids


def test_fit_with_hard_negatives_uses_them():
    """One full batch, no random negatives, plain SGD: the first step's loss is InfoNCE of the
    query against its positive, the batch's other positives and its own hard negatives."""
    rng = np.random.default_rng(4)
    n, d = 40, 6
    x = rng.normal(size=(n, d))
    ei = _graph(n, seed=5)
    q = rng.normal(size=(8, d))
    pos = rng.choice(n, 8, replace=False)
    hard = np.stack([rng.choice(np.setdiff1d(np.arange(n), [p]), 3, replace=False) for p in pos])
    layer = SAGEConv(d, d, rng=0).double()
    h = layer(x, ei)
    want, _ = info_nce(q, h[pos], h[hard], temperature=0.2, in_batch=True)
    tr = RerankerTrainer(layer, rga.training.SGD(layer.parameters(), lr=0.0), max_epochs=1, batch_size=8,
                         num_negatives=0, temperature=0.2, progress=False)
    hist = tr.fit(x, ei, q, pos, hard_negatives=hard)
    assert hist[0]["loss"] == pytest.approx(want, rel=1e-10)
    without = RerankerTrainer(layer, rga.training.SGD(layer.parameters(), lr=0.0), max_epochs=1, batch_size=8,
                              num_negatives=0, temperature=0.2, progress=False).fit(x, ei, q, pos)
    assert without[0]["loss"] < hist[0]["loss"]
    with pytest.raises(DimensionMismatchError):
        tr.fit(x, ei, q, pos, hard_negatives=hard[:3])
    with pytest.raises(InvalidInputError):
        tr.fit(x, ei, q, pos, hard_negatives=np.full((8, 2), n))


def test_hard_negatives_separate_near_duplicates():
    """Each query's positive has a near-duplicate twin that only the graph tells apart (the twin
    has other in-neighbours). Random negatives rarely include the twin; hard negatives always
    do, so training with them ranks the positive above its twin far more often."""
    rng = np.random.default_rng(6)
    m, d = 60, 12
    base = rng.normal(size=(m, d))
    ctx_a = rng.normal(size=(m, d))
    ctx_b = rng.normal(size=(m, d))
    # nodes: targets 0..m-1, twins m..2m-1, context a 2m..3m-1 -> target, context b 3m.. -> twin
    x = np.vstack([base, base + 0.01 * rng.normal(size=(m, d)), ctx_a, ctx_b])
    t, tw = np.arange(m), np.arange(m, 2 * m)
    ei = np.concatenate([np.stack([2 * m + t, t]), np.stack([3 * m + t, tw])], axis=1)
    q = base + 0.3 * ctx_a                                 # the query says "base, in context a"
    pos = t
    hard = tw[:, None]
    res = {}
    for name, hn in (("random", None), ("hard", hard)):
        layer = DirGNNConv(SAGEConv(d, d), alpha=0.5).residual_init().double()
        tr = RerankerTrainer(layer, Adam(layer.parameters(), lr=0.01), max_epochs=8, batch_size=20,
                             num_negatives=4, temperature=0.1, progress=False, seed=1)
        tr.fit(x, ei, q, pos, hard_negatives=hn)
        h = layer(x, ei)
        h /= np.linalg.norm(h, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        gap = (qn * h[t]).sum(1) - (qn * h[tw]).sum(1)
        res[name] = (float((gap > 0).mean()), float(gap.mean()))
    assert res["hard"][0] >= 0.95 and res["hard"][0] > res["random"][0], res
    assert res["hard"][1] > 3 * res["random"][1] > 0, res


def test_directed_layer_subgraph_batches_equal_full_graph():
    """The trainer samples both directions for a direction-aware layer: with exact
    neighbourhoods the losses and weights equal the full-graph run."""
    rng = np.random.default_rng(7)
    n, d = 120, 6
    ei = np.unique(rng.integers(0, n, size=(2, 400)), axis=1)
    ei = ei[:, ei[0] != ei[1]]
    x = rng.normal(size=(n, d))
    q = rng.normal(size=(90, d))
    pos = rng.integers(0, n, 90)
    hard = rng.integers(-1, n, size=(90, 3))
    runs = {}
    for full in (False, True):
        layer = DirGNNConv(SAGEConv(d, d, rng=0), alpha=0.3, rng=1).double()
        tr = RerankerTrainer(layer, Adam(layer.parameters(), lr=0.01), max_epochs=2, batch_size=30,
                             num_negatives=8, progress=False, full_graph=full, restore_best=False)
        runs[full] = ([h["loss"] for h in tr.fit(x, ei, q, pos, hard_negatives=hard)], layer.state_dict())
    np.testing.assert_allclose(runs[False][0], runs[True][0], rtol=1e-9)
    for name in runs[True][1]:
        np.testing.assert_allclose(runs[False][1][name], runs[True][1][name], rtol=1e-7, atol=1e-9, err_msg=name)


# ---------------------------------------------------------------------------- layer scorer
def test_layer_scorer_gives_directed_layer_stored_orientation():
    """direction="both": a direction-aware layer sees the edges as stored (p -> d), so its
    in- and out-aggregations differ; the score equals cos(q, layer(x_sub, edges)[c])."""
    rng = np.random.default_rng(8)
    n, d = 30, 8
    X = rng.normal(size=(n, d)).astype(np.float32)
    edges = [(i, (i * 7 + 3) % n) for i in range(n)] + [(i, (i * 11 + 5) % n) for i in range(0, n, 2)]
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(n))
    G.add_edges_from(edges)
    index = rga.HNSWIndex(dim=d, space="cosine", M=16, ef_construction=100, max_elements=n)
    index.add(np.arange(n), X)
    ei = np.array(edges).T
    full = {}
    for alpha in (0.0, 1.0):
        layer = DirGNNConv(SAGEConv(d, d, rng=0), alpha=alpha, rng=1)
        rr = rga.GraphReranker(index, NetworkXGraph(G), scorer="sage", layer=layer, blend=1.0,
                               direction="both", candidates=n)
        ids, scores = rr.rerank_arrays(X[:2], 5)
        H = layer(X, ei).astype(np.float64)      # 1 hop from every node covers the whole graph
        H /= np.linalg.norm(H, axis=1, keepdims=True)
        qn = X[:2] / np.linalg.norm(X[:2], axis=1, keepdims=True)
        want = qn @ H.T
        for b in range(2):
            np.testing.assert_allclose(scores[b], want[b, ids[b]], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(ids[b], np.argsort(-want[b], kind="stable")[:5])
        full[alpha] = ids
    assert not np.array_equal(full[0.0], full[1.0])      # in- and out-neighbours are told apart


def test_dirgnn_checkpoint_round_trip(tmp_path):
    from ruvector_graph_attn.training import load_checkpoint, save_checkpoint

    rng = np.random.default_rng(9)
    layer = DirGNNConv(SAGEConv(5, 5, aggr="sum", rng=0), alpha=0.2, rng=1)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    ei = _graph()
    path = tmp_path / "dir.rga"
    save_checkpoint(layer, path)
    back = load_checkpoint(path)
    assert isinstance(back, DirGNNConv) and back.alpha == 0.2 and back.conv_in.aggr == "sum"
    assert back.conv_in.root_weight is False
    np.testing.assert_array_equal(back(x, ei), layer(x, ei))
