"""The GraphSource protocol and the Subgraph type shared by every graph connector.

A connector maps database node ids to dense ``0..N-1`` positions at its boundary: the
``Subgraph`` it returns carries the database ids (``node_ids``) next to dense arrays
(``edge_index`` ``[2, E]`` int64, messages ``edge_index[0] -> edge_index[1]``; features
``x`` ``[N, D]``), so scorers work on arrays and results are mapped back by position.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable, Literal, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..validation import check_int

Direction = Literal["out", "in", "both"]


@dataclass
class Subgraph:
    """A neighbourhood fetched from a graph source.

    Attributes:
        node_ids: database ids, one per dense position ``0..N-1``.
        edge_index: ``[2, E]`` int64 dense positions, source row 0, target row 1.
        x: ``[N, D]`` node features (float32 or float64).
        hop: ``[N]`` int64, the hop at which each node was first reached (seeds: 0).
        seeds: ``[S]`` int64 dense positions of the requested ids that exist, in request order.
        edge_attr: optional ``[E, F]`` edge features.
        missing: requested ids that the source does not have (kept by callers, flagged).
        edge_origin: optional ``[E]`` int64: the dense position of the node whose expansion
            traversed each edge (one of its two endpoints), or -1 when both endpoints
            traversed it. Lets callers recover each seed's own neighbourhood exactly from a
            union expansion (see connectors/networkx.py); ``None`` when a source does not
            record it.
    """

    node_ids: list
    edge_index: np.ndarray
    x: np.ndarray
    hop: np.ndarray
    seeds: np.ndarray
    edge_attr: Optional[np.ndarray] = None
    missing: list = field(default_factory=list)
    edge_origin: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.node_ids = list(self.node_ids)
        n = len(self.node_ids)
        self.edge_index = np.ascontiguousarray(np.asarray(self.edge_index, dtype=np.int64).reshape(2, -1))
        self.x = np.ascontiguousarray(self.x)
        self.hop = np.ascontiguousarray(np.asarray(self.hop, dtype=np.int64).reshape(-1))
        self.seeds = np.ascontiguousarray(np.asarray(self.seeds, dtype=np.int64).reshape(-1))
        if self.x.ndim != 2 or self.x.shape[0] != n:
            raise DimensionMismatchError((n, "D"), self.x.shape, "Subgraph.x shape")
        if self.hop.shape[0] != n:
            raise DimensionMismatchError(n, self.hop.shape[0], "Subgraph.hop length")
        if self.edge_index.size and (self.edge_index.min() < 0 or self.edge_index.max() >= n):
            raise InvalidInputError("Subgraph.edge_index references a node outside 0..N-1")
        if self.seeds.size and (self.seeds.min() < 0 or self.seeds.max() >= n):
            raise InvalidInputError("Subgraph.seeds references a node outside 0..N-1")
        if self.edge_attr is not None:
            self.edge_attr = np.ascontiguousarray(self.edge_attr)
            if self.edge_attr.ndim == 1:
                self.edge_attr = self.edge_attr.reshape(-1, 1)
            if self.edge_attr.shape[0] != self.edge_index.shape[1]:
                raise DimensionMismatchError(self.edge_index.shape[1], self.edge_attr.shape[0],
                                             "Subgraph.edge_attr rows (one per edge)")

        if self.edge_origin is not None:
            self.edge_origin = np.ascontiguousarray(np.asarray(self.edge_origin, dtype=np.int64).reshape(-1))
            if self.edge_origin.shape[0] != self.edge_index.shape[1]:
                raise DimensionMismatchError(self.edge_index.shape[1], self.edge_origin.shape[0],
                                             "Subgraph.edge_origin length (one per edge)")

    @property
    def num_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def position(self) -> dict:
        """Database id -> dense position."""
        return {nid: i for i, nid in enumerate(self.node_ids)}


@runtime_checkable
class GraphSource(Protocol):
    """What the re-ranker needs from a graph: neighbourhoods and features by database id."""

    @property
    def dim(self) -> int:
        """Dimension of the node features."""
        ...

    def expand(self, ids: Sequence[Hashable], hops: int = 1, direction: Direction = "out",
               max_neighbors: Optional[int] = None, seed: int = 0) -> Subgraph:
        """The subgraph induced by ``ids`` and every node within ``hops`` of them."""
        ...

    def features(self, ids: Sequence[Hashable]) -> np.ndarray:
        """``[len(ids), D]`` features; unknown ids raise :class:`~ruvector_graph_attn.UnknownIdError`."""
        ...

    def contains(self, ids: Iterable[Hashable]) -> np.ndarray:
        """Boolean mask: which ids exist in the source."""
        ...


def check_direction(direction: Any) -> str:
    if direction not in ("out", "in", "both"):
        raise InvalidInputError(f"direction must be 'out', 'in' or 'both', got {direction!r}")
    return direction


def check_hops(hops: Any) -> int:
    hops = check_int(hops, "hops", lo=0)
    if hops > 8:
        raise InvalidInputError(f"hops={hops} is over the limit of 8 (neighbourhoods explode); expected 0..8")
    return int(hops)
