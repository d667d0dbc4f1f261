"""VoteScorer (neighbour vote of the query's best hits) and VoteTrainer (its query map):
hand-computed terms and scores, the re-ranker end to end against an independent numpy
reference, exact gradients against finite differences, training that finds what the untrained
vote misses, and bad input."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.connectors import NetworkXGraph
from ruvector_graph_attn.errors import ConfigError, DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.rerank.vote import VoteScorer, identity_query_map, vote_scores, vote_terms
from ruvector_graph_attn.training import SGD, Adam, VoteTrainer


# ---------------------------------------------------------------------------- terms and scores
def _csr(adj: dict, n: int):
    indptr = np.zeros(n + 1, np.int64)
    rows = []
    for u in range(n):
        rows.extend(adj.get(u, []))
        indptr[u + 1] = len(rows)
    return indptr, np.asarray(rows, np.int64)


def test_terms_by_hand():
    # node 0 reaches 2, 3 and itself; node 1 reaches 3 twice and 4; node 5 reaches 3
    indptr, indices = _csr({0: [2, 3, 0], 1: [3, 3, 4], 2: [0], 5: [3]}, 6)
    # query 0: pairs 0..4 = nodes 0..4; query 1: pairs 5..7 = nodes 3, 5, 0
    pq = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    pn = np.array([0, 1, 2, 3, 4, 3, 5, 0])
    key = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.5, 0.7, 0.6])
    t, s = vote_terms(pq, pn, key, 2, indptr, indices, 6)
    # voters: pairs 0, 1 (query 0) and 6, 7 (query 1); a voter reaching itself or a node twice
    # counts once, a reached node that is not a candidate of that query gives no term
    assert t.tolist() == [0, 1, 2, 2, 3, 3, 3, 4, 4, 5, 5, 5, 6, 7]
    assert s.tolist() == [0, 1, 2, 0, 3, 0, 1, 4, 1, 5, 6, 7, 6, 7]
    # one voter: only the best hit of each query votes
    t1, s1 = vote_terms(pq, pn, key, 1, indptr, indices, 6)
    assert list(zip(t1.tolist(), s1.tolist())) == [(0, 0), (1, 1), (2, 2), (2, 0), (3, 3), (3, 0), (4, 4),
                                                   (5, 5), (5, 6), (6, 6), (7, 7)]


def test_scores_by_hand():
    sim = np.array([0.9, 0.8, 0.1, 0.2])
    t = np.array([0, 1, 2, 2, 3, 3, 3])
    s = np.array([0, 1, 2, 0, 3, 0, 1])
    T = 0.5
    sc, vote, share = vote_scores(sim, t, s, T)
    e = lambda v: math.exp(v / T)  # noqa: E731
    assert sc[0] == pytest.approx(0.9) and sc[1] == pytest.approx(0.8)
    assert sc[2] == pytest.approx(T * math.log(e(0.1) + e(0.9)))
    assert sc[3] == pytest.approx(T * math.log(e(0.2) + e(0.9) + e(0.8)))
    assert math.isnan(vote[0]) and math.isnan(vote[1])
    assert vote[3] == pytest.approx(T * math.log(e(0.9) + e(0.8)))
    tot3 = e(0.2) + e(0.9) + e(0.8)
    np.testing.assert_allclose(share[4:], [e(0.2) / tot3, e(0.9) / tot3, e(0.8) / tot3])
    np.testing.assert_allclose(np.bincount(t, share), 1.0)


# ---------------------------------------------------------------------------- end to end
def _unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _world(seed=0, n=60, d=6):
    rng = np.random.default_rng(seed)
    X = _unit(rng.standard_normal((n, d)))
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(n))
    for i in range(n):
        for j in rng.choice(n, size=3, replace=False).tolist():
            if j != i:
                G.add_edge(i, j)
    index = rga.HNSWIndex(dim=d, space="cosine", M=16, ef_construction=200)
    index.add(np.arange(n), X)
    index.ef = 200
    return X, G, index


def _reference(q, X, G, n_cand, voters, T, direction):
    """Independent numpy reading of the definition: candidates = the n_cand nearest nodes plus
    every node the voters reach; score = T log(exp(sim_c / T) + sum over voters reaching c)."""
    sim = _unit(X) @ _unit(q)
    order = np.argsort(-sim, kind="stable")
    hits = order[:n_cand].tolist()
    V = hits[:voters]

    def reach(h):
        if direction == "out":
            return set(G.successors(h))
        if direction == "in":
            return set(G.predecessors(h))
        return set(G.successors(h)) | set(G.predecessors(h))

    cands = set(hits)
    for h in V:
        cands |= reach(h)
    out = {}
    for c in cands:
        terms = [sim[c]] + [sim[h] for h in V if h != c and c in reach(h)]
        out[c] = (T * math.log(sum(math.exp(v / T) for v in terms)),
                  {c: math.exp(sim[c] / T)} | {h: math.exp(sim[h] / T) for h in V if h != c and c in reach(h)})
    return out


@pytest.mark.parametrize("direction", ["out", "in", "both"])
def test_reranker_matches_the_definition(direction):
    X, G, index = _world(1)
    rng = np.random.default_rng(3)
    T, voters, n_cand = 0.2, 4, 8
    rr = rga.GraphReranker(index, NetworkXGraph(G), scorer=VoteScorer(T, voters), candidates=n_cand,
                           direction=direction, graph_candidates=voters)
    for _ in range(5):
        q = rng.standard_normal(6)
        ref = _reference(q, X, G, n_cand, voters, T, direction)
        hits = rr.search(q, k=len(ref))
        assert {h.id for h in hits} == set(ref)
        for h in hits:
            want, terms = ref[h.id]
            assert h.score == pytest.approx(want, abs=2e-6)   # (vector scores: float32 distances)
            tot = sum(terms.values())
            assert h.attention == pytest.approx({k: v / tot for k, v in terms.items()}, abs=2e-5)
            assert h.context_score == pytest.approx(h.score, abs=1e-12)     # blend 1: the score is the context
            if len(terms) == 1:       # no voter reaches it: its own similarity
                assert h.score == pytest.approx(h.vector_score, abs=1e-9)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)


def test_alias_defaults_and_graph_candidates():
    X, G, index = _world(2)
    rr = rga.GraphReranker(index, NetworkXGraph(G), scorer="vote", direction="out")
    assert isinstance(rr.scorer, VoteScorer)
    assert (rr.scorer.temperature, rr.scorer.voters, rr.scorer.blend) == (0.1, 20, 1.0)
    assert rr.graph_candidates == 20
    off = rga.GraphReranker(index, NetworkXGraph(G), scorer="vote", direction="out", graph_candidates=0)
    q = X[7] + 0.1
    # a node reached by a voter but outside the vector candidates joins only with graph candidates
    with_gc = {h.id for h in rr.search(q, k=60)}
    without = {h.id for h in off.search(q, k=60)}
    assert without <= with_gc


def test_blend_mixes_the_vector_score():
    X, G, index = _world(4)
    q = X[3] * 0.7 + X[9] * 0.3
    full = {h.id: h for h in rga.GraphReranker(index, NetworkXGraph(G), scorer=VoteScorer(0.1, 5, 1.0),
                                                direction="out").search(q, k=20)}
    half = {h.id: h for h in rga.GraphReranker(index, NetworkXGraph(G), scorer=VoteScorer(0.1, 5, 0.5),
                                                direction="out").search(q, k=20)}
    for i in set(full) & set(half):
        assert half[i].score == pytest.approx(0.5 * full[i].vector_score + 0.5 * full[i].score, abs=1e-9)


def test_query_map_identity_equals_no_map_and_a_map_is_applied():
    X, G, index = _world(5)
    graph = NetworkXGraph(G)
    rng = np.random.default_rng(8)
    Q = rng.standard_normal((4, 6))
    plain = rga.GraphReranker(index, graph, scorer=VoteScorer(0.2, 5), direction="out")
    ident = rga.GraphReranker(index, graph, scorer=VoteScorer(0.2, 5, query_map=identity_query_map(6, np.float64)),
                              direction="out")
    a, b = plain.search_batch(Q, k=15), ident.search_batch(Q, k=15)
    for ra, rb in zip(a, b):
        assert [h.id for h in ra] == [h.id for h in rb]
        np.testing.assert_allclose([h.score for h in ra], [h.score for h in rb], atol=2e-6)  # float32 vs float64 similarities
    # a non-identity map: every term uses cos(W q, x); the voters stay the best vector hits
    lin = identity_query_map(6, np.float64)
    lin.weight.data[...] = rng.standard_normal((6, 6))
    mapped = rga.GraphReranker(index, graph, scorer=VoteScorer(0.2, 5, query_map=lin), direction="out",
                               graph_candidates=5)
    q = Q[0]
    hits = mapped.search(q, k=60)
    via_alias = rga.GraphReranker(index, graph, scorer="vote", layer=lin, temperature=0.2, direction="out",
                                  graph_candidates=5)
    assert via_alias.scorer.query_map is lin and via_alias.scorer.voters == 20
    with pytest.raises(InvalidInputError, match="nn.Linear"):
        rga.GraphReranker(index, graph, scorer="vote", layer=np.eye(6))
    u = lin.weight.data @ q
    sim_u = _unit(X) @ _unit(u)
    sim_q = _unit(X) @ _unit(q)
    V = np.argsort(-sim_q, kind="stable")[:5].tolist()
    for h in hits:
        c = h.id
        terms = [sim_u[c]] + [sim_u[v] for v in V if v != c and G.has_edge(v, c)]
        assert h.score == pytest.approx(0.2 * math.log(sum(math.exp(t / 0.2) for t in terms)), abs=1e-6)


def test_scorer_bad_parameters():
    with pytest.raises(InvalidInputError):
        VoteScorer(temperature=0.0)
    with pytest.raises(InvalidInputError):
        VoteScorer(voters=0)
    with pytest.raises(InvalidInputError):
        VoteScorer(blend=1.5)
    with pytest.raises(InvalidInputError, match="nn.Linear"):
        VoteScorer(query_map=np.eye(3))
    X, G, index = _world(6)
    rr = rga.GraphReranker(index, NetworkXGraph(G), scorer=VoteScorer(query_map=identity_query_map(4)))
    with pytest.raises(DimensionMismatchError):
        rr.search(X[0], k=3)
    with pytest.raises(ConfigError):
        rga.GraphReranker(index, NetworkXGraph(G), scorer="votes")


# ---------------------------------------------------------------------------- trainer
def _hierarchy(seed=0, parents=12, children=40, clusters=8, d_sig=4, d_dis=8, dis=2.0, noise=0.3):
    """Children point to their parent. A child's features: its parent's direction on ``d_sig``
    dims plus a strong "distractor" on ``d_dis`` dims shared with the children of other parents
    (one of ``clusters`` directions, like words a query shares with unrelated items), so a
    child's best vector hits are mostly children of other parents; a parent's own features are
    unrelated to its children's."""
    rng = np.random.default_rng(seed)
    P = _unit(rng.standard_normal((parents, d_sig)))
    Dc = _unit(rng.standard_normal((clusters, d_dis)))
    rows = [_unit(rng.standard_normal(d_sig + d_dis)) for _ in range(parents)]
    edges, parent_of = [], []
    for p in range(parents):
        for _ in range(children):
            x = np.concatenate([P[p], dis * Dc[rng.integers(clusters)]])
            x = x + noise * rng.standard_normal(d_sig + d_dis) / math.sqrt(d_sig + d_dis)
            edges.append((len(rows), p))
            parent_of.append(p)
            rows.append(_unit(x))
    return np.asarray(rows), np.asarray(edges).T.copy(), np.asarray(parent_of)


def _recall_at_1(scorer, X, ei, queries, parents, n_cand, direction="out"):
    G = nx.DiGraph()
    G.add_nodes_from((i, {"embedding": X[i]}) for i in range(X.shape[0]))
    G.add_edges_from(zip(ei[0].tolist(), ei[1].tolist()))
    index = rga.HNSWIndex(dim=X.shape[1], space="cosine", M=16, ef_construction=200)
    index.add(np.arange(X.shape[0]), X)
    index.ef = 200
    rr = rga.GraphReranker(index, NetworkXGraph(G), scorer=scorer, candidates=n_cand + 1, direction=direction)
    hits = rr.search_batch(X[queries], k=2)
    top = [[h.id for h in row if h.id != q][0] for row, q in zip(hits, queries)]
    return float(np.mean(np.asarray(top) == parents))


def test_training_finds_parents_the_untrained_vote_misses():
    X, ei, parent_of = _hierarchy(0)
    n_par = 12
    child = np.arange(n_par, X.shape[0])
    perm = np.random.default_rng(1).permutation(child)
    test, train = np.sort(perm[:60]), np.sort(perm[60:260])     # the other 220 children keep their edge
    ei_eval = ei[:, ~np.isin(ei[0], test)]                       # held-out children lose their edge
    ei_train = ei_eval[:, ~np.isin(ei_eval[0], train)]           # training children too, while training
    par = parent_of[test - n_par]
    T, voters, n_cand = 0.1, 60, 60
    vector = _recall_at_1("vector", X, ei_eval, test, par, n_cand)
    zero = _recall_at_1(VoteScorer(T, voters), X, ei_eval, test, par, n_cand)
    # the map an oracle would pick: the distractor dimensions of the query switched off
    oracle = identity_query_map(X.shape[1], np.float64)
    oracle.weight.data[4:, 4:] = 0.0
    best = _recall_at_1(VoteScorer(T, voters, query_map=oracle), X, ei_eval, test, par, n_cand)
    sc = VoteScorer(T, voters, query_map=identity_query_map(X.shape[1], np.float64))
    tr = VoteTrainer(sc, Adam(sc.query_map.parameters(), lr=0.03), max_epochs=10, temperature=0.1,
                     batch_size=32, candidates=n_cand, progress=False)
    hist = tr.fit(X, ei_train, X[train], [np.array([p]) for p in parent_of[train - n_par]], query_nodes=train)
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"]
    used = {h["queries_used"] for h in hist}          # (a parent no voter reaches is not a candidate)
    assert len(used) == 1 and 0.8 * train.size <= used.pop() <= train.size
    trained = _recall_at_1(sc, X, ei_eval, test, par, n_cand)
    # features alone never rank the parent first; the untrained vote is misled by the
    # distractors; training learns (nearly) the oracle's map from examples alone
    assert vector == 0.0
    assert trained >= zero + 0.12, (zero, trained, best)
    assert trained >= best - 0.05, (zero, trained, best)
    W = sc.query_map.weight.data
    assert np.linalg.norm(W[:, 4:]) < 0.7 * np.linalg.norm(W[:, :4])     # it learnt to damp the distractors


@pytest.mark.parametrize("space", ["cosine", "ip", "l2"])
def test_gradient_matches_finite_differences(space):
    X, ei, parent_of = _hierarchy(3, parents=5, children=6, clusters=3, d_sig=3, d_dis=3)
    n_par = 5
    qn = np.arange(n_par, X.shape[0])[::3]
    rel = [np.array([parent_of[q - n_par]]) for q in qn]
    rng = np.random.default_rng(4)
    sc = VoteScorer(0.3, 4, blend=0.8, query_map=identity_query_map(X.shape[1], np.float64))
    sc.query_map.weight.data[...] += 0.3 * rng.standard_normal(sc.query_map.weight.data.shape)
    tr = VoteTrainer(sc, SGD(sc.query_map.parameters(), lr=0.0), max_epochs=1, temperature=0.2, candidates=6,
                     space=space, progress=False)
    from ruvector_graph_attn.training.vote import VoteCandidates

    indptr, indices = tr._adjacency(ei, X.shape[0])
    vc = VoteCandidates(X, indptr, indices, X[qn], rel, qn, 6, 4, space)
    qs = np.arange(qn.size)
    tr._seed_everything()
    loss0, nu = tr._batch(X, X[qn], vc, qs, train=True)
    assert nu > 0
    g = sc.query_map.weight.grad.copy()
    W = sc.query_map.weight.data
    eps = 1e-6
    num = np.zeros_like(W)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            old = W[i, j]
            W[i, j] = old + eps
            lp, _ = tr._batch(X, X[qn], vc, qs, train=True)
            W[i, j] = old - eps
            lm, _ = tr._batch(X, X[qn], vc, qs, train=True)
            W[i, j] = old
            num[i, j] = (lp - lm) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)
    assert np.abs(g).max() > 1e-4


def test_trainer_bad_input():
    X, ei, parent_of = _hierarchy(5, parents=4, children=4, clusters=2)
    D = X.shape[1]
    sc = VoteScorer(query_map=identity_query_map(D))
    opt = Adam(sc.query_map.parameters(), lr=1e-2)
    with pytest.raises(InvalidInputError, match="VoteScorer"):
        VoteTrainer("vote", opt)
    with pytest.raises(InvalidInputError, match="query_map"):
        VoteTrainer(VoteScorer(), opt)
    with pytest.raises(InvalidInputError):
        VoteTrainer(sc, opt, temperature=0.0)
    with pytest.raises(InvalidInputError):
        VoteTrainer(sc, opt, space="hamming")
    with pytest.raises(InvalidInputError):
        VoteTrainer(sc, opt, direction="sideways")
    tr = VoteTrainer(sc, opt, max_epochs=1, progress=False, candidates=5)
    q = X[4:8]
    with pytest.raises(DimensionMismatchError):
        tr.fit(X, ei, q[:, :3], [[0]] * 4)
    with pytest.raises(DimensionMismatchError):
        tr.fit(X, ei, q, [[0]] * 3)
    with pytest.raises(InvalidInputError, match="at least one relevant"):
        tr.fit(X, ei, q, [[0], [], [1], [2]])
    with pytest.raises(InvalidInputError, match="node rows"):
        tr.fit(X, ei, q, [[0], [99], [1], [2]])
    with pytest.raises(InvalidInputError):
        tr.fit(X, ei, q, [[0]] * 4, query_nodes=np.array([4, 5]))
    bad = q.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError):
        tr.fit(X, ei, bad, [[0]] * 4)
    with pytest.raises(InvalidInputError):
        tr.fit(X, np.array([[0], [999]]), q, [[0]] * 4)          # an edge to a node that does not exist
    W0 = sc.query_map.weight.data.copy()
    hist = tr.fit(X, ei, q, [[0], [1], [2], [3]], query_nodes=np.arange(4, 8))
    assert len(hist) == 1 and np.isfinite(hist[0]["loss"])
    assert not np.array_equal(W0, sc.query_map.weight.data)


# ---------------------------------------------------------------------------- snapshot path
def _both_paths(rr, Q, k, **kw):
    from ruvector_graph_attn.rerank import fastpath

    fast = rr.search_batch(Q, k=k, **kw)
    assert fastpath.applies_vote(rr)
    fastpath.ENABLED = False
    try:
        slow = rr.search_batch(Q, k=k, **kw)
    finally:
        fastpath.ENABLED = True
    return fast, slow


@pytest.mark.parametrize("direction", ["out", "in", "both"])
@pytest.mark.parametrize("cap", [None, 2])
@pytest.mark.parametrize("mapped", [False, True])
def test_snapshot_path_equals_the_general_path(direction, cap, mapped):
    rng = np.random.default_rng(11)
    n, d = 80, 6
    X = _unit(rng.standard_normal((n, d))).astype(np.float32)
    G = nx.DiGraph()
    names = [f"pkg-{i}" for i in range(n)]            # string ids: the position lookup by search
    G.add_nodes_from((names[i], {"embedding": X[i]}) for i in range(n))
    for i in range(n):
        for j in rng.choice(n, size=int(rng.integers(0, 7)), replace=False).tolist():
            G.add_edge(names[i], names[j])             # (self-loops included: a voter never votes for itself)
    G.add_edge(names[3], names[3])
    index = rga.HNSWIndex(dim=d, space="cosine", M=16, ef_construction=200)
    index.add(names, X)
    qm = None
    if mapped:
        qm = identity_query_map(d, np.float64)
        qm.weight.data[...] += 0.4 * rng.standard_normal((d, d))
    rr = rga.GraphReranker(index, NetworkXGraph(G), scorer=VoteScorer(0.15, 6, 0.9, query_map=qm), candidates=15,
                           direction=direction, max_neighbors=cap, graph_candidates=6)
    Q = rng.standard_normal((7, d)).astype(np.float32)
    Q[2] = X[3]
    allowed = set(names[::2])
    for kw in ({}, {"filter": allowed}):
        fast, slow = _both_paths(rr, Q, 40, **kw)
        for a, b in zip(fast, slow):
            assert [h.id for h in a] == [h.id for h in b]
            assert [h.score for h in a] == [h.score for h in b]           # the same sums in the same order
            assert [h.context_score for h in a] == [h.context_score for h in b]
            assert [h.attention for h in a] == [h.attention for h in b]
            assert [(h.in_graph, h.vector_rank) for h in a] == [(h.in_graph, h.vector_rank) for h in b]
        assert any(len(h.attention) > 1 for row in fast for h in row)      # voters did vote
    rr0 = rga.GraphReranker(index, NetworkXGraph(G), scorer=VoteScorer(0.15, 6), candidates=15, hops=0,
                            direction=direction)
    fast, slow = _both_paths(rr0, Q, 15)
    for a, b in zip(fast, slow):
        assert [h.id for h in a] == [h.id for h in b] and [h.score for h in a] == [h.score for h in b]
        assert all(set(h.attention) == {h.id} for h in a)                 # radius 0: nothing is reached
