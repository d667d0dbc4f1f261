"""Result type of the re-ranking pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Optional


def _plain(v: Any) -> Any:
    """numpy scalars -> Python scalars (for JSON)."""
    return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v


@dataclass(frozen=True)
class RankedNeighbour:
    """One re-ranked search hit, with the attention weights that explain its score.

    Attributes:
        id: the item id (as stored in the index / graph).
        score: the final score (larger is better); results are sorted by it.
        vector_score: the index's own similarity to the query (``index.to_similarity`` of
            the HNSW distance: ``cos`` for cosine, ``<q, x>`` for ip, ``-||q - x||^2`` for l2).
        rank: 0-based position in the re-ranked list.
        vector_rank: 0-based position in the index's (vector-only) candidate list.
        attention: neighbour id -> weight; for the ``"attention"`` and ``"hyperbolic"`` scorers
            the softmax weights over the candidate's neighbourhood (the candidate itself
            included, weights sum to 1), for GNN scorers the layer's aggregation weights into
            the candidate. Empty for the ``"vector"`` scorer and for candidates not in the graph.
        context_score: the attended neighbourhood similarity that was blended in (``None``
            when the graph was not used for this hit).
        in_graph: ``False`` when the candidate is missing from the graph (then
            ``score == vector_score``).
    """

    id: Hashable
    score: float
    vector_score: float
    rank: int
    attention: dict = field(default_factory=dict)
    in_graph: bool = True
    vector_rank: int = -1
    context_score: Optional[float] = None

    def top_attention(self, n: int = 3, exclude_self: bool = True) -> list:
        """The ``n`` largest attention weights as ``[(neighbour id, weight), ...]``."""
        items = [(k, w) for k, w in self.attention.items() if not (exclude_self and k == self.id)]
        items.sort(key=lambda kv: -kv[1])
        return items[:n]

    def to_dict(self) -> dict:
        """A JSON-ready dict (attention as a list of ``[id, weight]`` pairs, largest first)."""
        att = sorted(self.attention.items(), key=lambda kv: -kv[1])
        return {
            "id": _plain(self.id),
            "score": float(self.score),
            "vector_score": float(self.vector_score),
            "rank": int(self.rank),
            "vector_rank": int(self.vector_rank),
            "in_graph": bool(self.in_graph),
            "context_score": None if self.context_score is None else float(self.context_score),
            "attention": [[_plain(k), float(w)] for k, w in att],
        }
