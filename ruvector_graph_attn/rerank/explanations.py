"""Typed explanations of re-ranking scores: which nodes a candidate's score came from.

A scorer returns one :class:`Explanation` for the whole batch; the re-ranker asks it for the
weights of each hit it returns (``weights(b, c)`` for query ``b``, candidate column ``c``) and
stores them in :attr:`RankedNeighbour.attention <ruvector_graph_attn.RankedNeighbour>`.

* :class:`AttentionExplanation` (``kind = "attention"``): softmax weights over the candidate's
  neighbourhood (the candidate included; they sum to 1, or the kept entries of a sparse scorer).
* :class:`AggregationExplanation` (``kind = "aggregation"``): a graph layer's aggregation
  shares of the edges into the candidate (GAT attention coefficients averaged over heads,
  ``1 / deg`` for mean aggregation, ``1 / (1 + eps + deg)`` for GIN).
* :class:`PageRankExplanation` (``kind = "pagerank"``): personalised-PageRank mass of each node
  of the candidate's neighbourhood, under the query's personalisation.

The classes hold flat arrays for the whole batch and build the per-hit dictionaries only when
asked, so explanations cost nothing for hits that are not returned.
"""
from __future__ import annotations

from typing import Hashable, Optional

import numpy as np

__all__ = ["Explanation", "AttentionExplanation", "AggregationExplanation", "PageRankExplanation"]


class Explanation:
    """Base of the explanation types. Subclasses implement :meth:`weights`.

    Attributes:
        kind: a short name of what the weights mean (``"attention"``, ``"aggregation"``,
            ``"pagerank"``; user scorers may define their own).
    """

    kind: str = "explanation"

    def weights(self, b: int, c: int) -> dict:
        """``{node id: weight}`` explaining candidate column ``c`` of query ``b`` (empty when
        there is nothing to explain)."""
        raise NotImplementedError


class _PairExplanation(Explanation):
    """Shared indexing: ``pair_index[b * C + c]`` is the present-pair number ``p`` (or -1)."""

    def __init__(self, node_ids: list, pair_index: np.ndarray, num_columns: int) -> None:
        self.node_ids = node_ids
        self.pair_index = pair_index
        self.num_columns = int(num_columns)

    def _pair(self, b: int, c: int) -> int:
        return int(self.pair_index[b * self.num_columns + c])


class AttentionExplanation(_PairExplanation):
    """Weights of pair ``p`` sit at ``entry_ptr[p]:entry_ptr[p+1]`` of ``entry_weight``; the node of
    entry ``t`` is ``entry_node[t]`` when given, else ``members[seg_ptr[seg_of[p]] + t -
    entry_ptr[p]]`` (the first entries of the candidate's neighbourhood segment, shared by every
    query that has the candidate)."""

    kind = "attention"

    def __init__(self, node_ids: list, pair_index: np.ndarray, num_columns: int, entry_ptr: np.ndarray,
                 entry_weight: np.ndarray, entry_node: Optional[np.ndarray] = None,
                 seg_of: Optional[np.ndarray] = None, seg_ptr: Optional[np.ndarray] = None,
                 members: Optional[np.ndarray] = None) -> None:
        super().__init__(node_ids, pair_index, num_columns)
        if entry_node is None and (seg_of is None or seg_ptr is None or members is None):
            raise ValueError("AttentionExplanation needs entry_node or (seg_of, seg_ptr, members)")
        self.entry_ptr = entry_ptr
        self.entry_weight = entry_weight
        self.entry_node = entry_node
        self.seg_of, self.seg_ptr, self.members = seg_of, seg_ptr, members

    def weights(self, b: int, c: int) -> dict:
        p = self._pair(b, c)
        if p < 0:
            return {}
        lo, hi = int(self.entry_ptr[p]), int(self.entry_ptr[p + 1])
        if self.entry_node is not None:
            nodes = self.entry_node[lo:hi]
        else:
            s0 = int(self.seg_ptr[self.seg_of[p]])
            nodes = self.members[s0:s0 + (hi - lo)]
        out: dict = {}
        for j, w in zip(nodes.tolist(), self.entry_weight[lo:hi].tolist()):
            key = self.node_ids[j]
            out[key] = out.get(key, 0.0) + w
        return out


class PageRankExplanation(AttentionExplanation):
    """Personalised-PageRank mass of the nodes of each candidate's neighbourhood (same layout
    as :class:`AttentionExplanation`; the weights of a hit need not sum to 1)."""

    kind = "pagerank"


class VoteExplanation(AttentionExplanation):
    """Shares of the terms of each candidate's neighbour vote (:class:`~ruvector_graph_attn.rerank.vote.VoteScorer`):
    the candidate itself and every voter (a best hit of the query that links to it); they sum to 1."""

    kind = "vote"


class AggregationExplanation(_PairExplanation):
    """Aggregation shares of the edges into each candidate: for pair ``p`` with subgraph node
    ``u = pair_node[p]``, the sources ``nbr[indptr[u]:indptr[u+1]]`` with ``share[...]`` (shares of
    parallel edges from one source are added)."""

    kind = "aggregation"

    def __init__(self, node_ids: list, pair_index: np.ndarray, num_columns: int, pair_node: np.ndarray,
                 indptr: np.ndarray, nbr: np.ndarray, share: np.ndarray) -> None:
        super().__init__(node_ids, pair_index, num_columns)
        self.pair_node, self.indptr, self.nbr, self.share = pair_node, indptr, nbr, share

    def weights(self, b: int, c: int) -> dict:
        p = self._pair(b, c)
        if p < 0:
            return {}
        u = int(self.pair_node[p])
        lo, hi = int(self.indptr[u]), int(self.indptr[u + 1])
        out: dict[Hashable, float] = {}
        for j, w in zip(self.nbr[lo:hi].tolist(), self.share[lo:hi].tolist()):
            key = self.node_ids[j]
            out[key] = out.get(key, 0.0) + w
        return out
