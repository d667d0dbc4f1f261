"""Graph sources: NetworkX in process (the embedded default) and Neo4j over Bolt.

Installed as ``ruvector_graph_attn.connectors``. Third-party sources register in the
entry-point group ``ruvector_graph_attn.connectors`` and are found by :func:`get_connector`.
"""
from __future__ import annotations

import importlib
from typing import Any

from ruvector_graph_attn._lazy import lazy_getattr

from .base import GraphSource, Subgraph

_LAZY = {
    "NetworkXGraph": ".networkx:NetworkXGraph",
    "Neo4jGraph": ".neo4j:Neo4jGraph",
    "Neo4jVectorIndex": ".neo4j:Neo4jVectorIndex",
    "Neo4jProjection": ".neo4j:Neo4jProjection",
}

ENTRY_POINT_GROUP = "ruvector_graph_attn.connectors"


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def get_connector(name: str) -> Any:
    """The connector class registered under ``name`` in the entry-point group."""
    from importlib.metadata import entry_points

    from ..errors import InvalidInputError

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    raise InvalidInputError(f"no graph connector named {name!r}; registered: {known}")


__all__ = ["GraphSource", "Subgraph", "NetworkXGraph", "Neo4jGraph", "Neo4jVectorIndex", "Neo4jProjection", "get_connector"]
