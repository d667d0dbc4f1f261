"""Neighbour-vote scoring: a candidate is supported by the query's best vector hits that link to it.

For a query ``q`` let ``V`` be its ``voters`` candidates with the highest vector score (the
query's best hits) and ``sim(q, x)`` the index space's similarity. Each candidate ``c`` gets

    s_c = T * log( exp(sim(q, x_c) / T) + sum_{h in V, h != c, h reaches c} exp(sim(q, x_h) / T) )

("``h`` reaches ``c``": an edge followed in the re-ranker's ``direction`` leads from ``h`` to
``c``), and ``score = (1 - blend) v_c + blend s_c``. The candidate's own similarity is one term
of the sum (a skip connection): a candidate no voter links to keeps ``s_c = sim(q, x_c)``, and
each voter that links to ``c`` adds its evidence, weighted by how close that voter is to the
query. ``T`` sets how the evidence adds up: small ``T`` -> the best single term, large ``T`` ->
every term counts. This is item-to-item collaborative filtering written as attention: the
shares ``exp(term / T) / sum`` are the explanation (which hits vouched for the candidate).

The task it is built for is "find what things like the query are linked to": the dependencies
of a package from its description (hits = similar packages, candidates = what they depend on),
the parent class of a class, the category of an item. With ``graph_candidates`` equal to
``voters`` (the re-ranker's default for this scorer) every node a voter reaches is a candidate.

A trained variant maps the query first (``query_map``, an ``nn.Linear`` fitted by
:class:`~ruvector_graph_attn.training.VoteTrainer`): ``sim(W q, x)`` replaces ``sim(q, x)`` in
every term (the voters stay the retriever's best hits).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..validation import check_float, check_positive_int
from .explanations import VoteExplanation

__all__ = ["VoteScorer", "VOTE_TEMPERATURE", "VOTE_VOTERS", "vote_terms", "with_own_terms", "vote_scores",
           "mapped_queries", "identity_query_map"]

#: defaults of the ``"vote"`` alias, chosen on the Debian tuning split (docs/quality.md)
VOTE_TEMPERATURE = 0.1
VOTE_VOTERS = 20


def vote_terms(pair_query: np.ndarray, pair_node: np.ndarray, rank_key: np.ndarray, voters: int,
               indptr: np.ndarray, indices: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """The terms of every pair's vote: ``(target, source)`` pair numbers, sorted by target, each
    target's own term ``(t, t)`` first, then its voters in pair order.

    Pairs are ``(pair_query[p], pair_node[p])`` with ``pair_query`` non-decreasing; a query's
    voters are its ``voters`` pairs with the largest ``rank_key`` (ties: pair order); voter ``h``
    gives a term to pair ``t`` of the same query when ``indices[indptr[node_h]:indptr[node_h+1]]``
    holds ``node_t`` and ``t != h`` (a voter reaching a node twice counts once). ``num_nodes``
    bounds the node positions."""
    P = int(pair_query.shape[0])
    if P == 0:
        z = np.zeros(0, np.int64)
        return z, z
    pq = np.asarray(pair_query, np.int64)
    pn = np.asarray(pair_node, np.int64)
    order = np.lexsort((np.arange(P), -np.asarray(rank_key, np.float64), pq))
    sq = pq[order]
    first = np.r_[0, np.flatnonzero(sq[1:] != sq[:-1]) + 1]
    rank = np.arange(P) - np.repeat(first, np.diff(np.r_[first, P]))
    vp = np.sort(order[rank < voters])                                  # voter pairs
    vn = pn[vp]
    deg = (indptr[vn + 1] - indptr[vn]).astype(np.int64)
    src = np.repeat(vp, deg)
    if src.size:
        starts = np.repeat(indptr[vn].astype(np.int64) - np.r_[0, np.cumsum(deg)[:-1]], deg)
        reached = np.asarray(indices, np.int64)[starts + np.arange(src.size)]
        nn = np.int64(num_nodes)
        pair_key = pq * nn + pn
        srt = np.argsort(pair_key, kind="stable")
        sk = pair_key[srt]
        key = pq[src] * nn + reached
        pos = np.minimum(np.searchsorted(sk, key), P - 1)
        hit = sk[pos] == key
        tgt = srt[pos[hit]]
        src = src[hit]
        keep = tgt != src
        tgt, src = tgt[keep], src[keep]
        if tgt.size:
            tv = np.unique(tgt * np.int64(P) + src)            # each (target, voter) once
            tgt, src = tv // P, tv % P
    else:
        tgt = src = np.zeros(0, np.int64)
    return with_own_terms(P, tgt, src)       # (tv was sorted: voters by pair number within a target)


def with_own_terms(P: int, tgt: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of the ``P`` pairs' own term ``(t, t)`` added to the voter terms ``(tgt, src)`` (voters
    in pair order within a target): ``(target, source)`` sorted by target, the own term first."""
    own = np.arange(P, dtype=np.int64)
    t_all = np.concatenate([own, tgt])
    s_all = np.concatenate([own, src])
    o = np.argsort(t_all, kind="stable")
    return t_all[o], s_all[o]


def mapped_queries(query_map: Any, queries: np.ndarray) -> np.ndarray:
    """``W q + b`` of every query row (float64), from the map's weights (no forward call: the
    layer keeps no input, so the scorer's fingerprint does not change with every query)."""
    U = np.asarray(queries, np.float64) @ query_map.weight.data.T.astype(np.float64)
    if query_map.bias is not None:
        U = U + query_map.bias.data
    return U


def vote_scores(sim: np.ndarray, target: np.ndarray, source: np.ndarray, temperature: float):
    """``(s [P], vote [P], share [terms])``: ``s_t = T log sum exp(sim[source] / T)`` over the
    terms of each pair ``t`` (each pair has its own term), ``vote`` the same over the voter terms
    only (NaN without any), ``share`` each term's softmax weight within its pair."""
    P = sim.shape[0]
    z = sim[source] / temperature
    m = np.full(P, -np.inf)
    np.maximum.at(m, target, z)
    e = np.exp(z - m[target])
    tot = np.bincount(target, e, minlength=P)
    s = temperature * (m + np.log(tot))
    share = e / tot[target]
    voter = target != source
    ev = np.bincount(target[voter], e[voter], minlength=P)
    with np.errstate(divide="ignore"):
        vote = np.where(ev > 0, temperature * (m + np.log(np.where(ev > 0, ev, 1.0))), np.nan)
    return s, vote, share


def identity_query_map(dim: int, dtype: Any = np.float32):
    """An ``nn.Linear(dim, dim, bias=False)`` equal to the identity: the starting point of
    :class:`~ruvector_graph_attn.training.VoteTrainer` (the untrained vote)."""
    from ..nn import Linear

    lin = Linear(dim, dim, bias=False, dtype=dtype)
    lin.weight.data[...] = np.eye(dim, dtype=lin.weight.data.dtype)
    return lin


def _query_map_weights(query_map: Any):
    from ..nn import Linear

    if not isinstance(query_map, Linear):
        raise InvalidInputError(f"query_map must be an nn.Linear (e.g. identity_query_map(dim) trained by "
                                f"VoteTrainer), got {type(query_map).__name__}")
    return query_map


class VoteScorer:
    """Neighbour vote (module docstring): ``s_c = T log(exp(sim(q, x_c)/T) + sum over the query's
    ``voters`` best hits that reach c of exp(sim(q, x_h)/T))``, ``score = (1 - blend) v_c +
    blend s_c``; ``context`` is ``s_c`` (as the attention scorers' context, it includes the
    candidate itself: ``sim(q, x_c)`` when no voter reaches it); the explanation gives each
    term's share (the candidate itself and every voter).

    Args:
        temperature: ``T > 0``.
        voters: how many of each query's best hits (by vector score) vote.
        blend: weight of ``s_c`` against the plain vector score ``v_c`` (default 1).
        query_map: ``None`` (similarities = the vector scores for the candidate's own term and
            the voters') or a trained ``nn.Linear(D, D')``: every term then uses
            ``sim(W q + b, x)`` computed from the node features (unit rows for cosine).
    """

    hops_needed = 0
    uses_graph = True

    def __init__(self, temperature: float = VOTE_TEMPERATURE, voters: int = VOTE_VOTERS, blend: float = 1.0,
                 query_map: Any = None) -> None:
        self.temperature = check_float(temperature, "temperature", lo=0.0, lo_open=True)
        self.voters = check_positive_int(voters, "voters")
        self.blend = check_float(blend, "blend", lo=0.0, hi=1.0)
        self.query_map = None if query_map is None else _query_map_weights(query_map)

    def __repr__(self) -> str:
        qm = "" if self.query_map is None else f", query_map={self.query_map!r}"
        return f"VoteScorer(temperature={self.temperature}, voters={self.voters}, blend={self.blend}{qm})"

    def similarities(self, queries: np.ndarray, candidates: Any, subgraph: Any) -> np.ndarray:
        """``[P]`` float64: each present pair's similarity used in the terms."""
        if self.query_map is None:
            return candidates.pair_vector_score.astype(np.float64)
        from .scorers import pair_similarity_rows

        lin = self.query_map
        if queries.shape[1] != lin.in_features:
            raise DimensionMismatchError(lin.in_features, queries.shape[1], "query_map input features")
        if subgraph.x.shape[0] and subgraph.x.shape[1] != lin.out_features:
            raise DimensionMismatchError(lin.out_features, subgraph.x.shape[1],
                                         "graph feature dimension (query_map output)")
        return pair_similarity_rows(mapped_queries(lin, queries), subgraph.x[candidates.pair_node], candidates.pair_query, candidates.space)

    def score(self, queries: np.ndarray, candidates: Any, subgraph: Optional[Any]):
        from .scorers import Scores

        sg = subgraph
        sim = self.similarities(queries, candidates, sg)
        indptr, indices = candidates.traversal_adjacency(sg)
        tgt, src = vote_terms(candidates.pair_query, candidates.pair_node, candidates.pair_vector_score,
                              self.voters, indptr, indices, sg.num_nodes)
        s, _, share = vote_scores(sim, tgt, src, self.temperature)
        total = (1.0 - self.blend) * candidates.pair_vector_score + self.blend * s
        entry_ptr = np.searchsorted(tgt, np.arange(sim.shape[0] + 1)).astype(np.int64)
        expl = VoteExplanation(sg.node_ids, candidates.pair_index, candidates.ids.shape[1], entry_ptr,
                               share, entry_node=np.asarray(candidates.pair_node)[src])
        return Scores(candidates.to_matrix(total), candidates.to_matrix(s, fill=np.nan), expl)
