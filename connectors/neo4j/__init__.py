"""Neo4j connector over Bolt (official ``neo4j`` driver) and the embedded test-server launcher.

* :class:`Neo4jGraph` -- a :class:`~ruvector_graph_attn.connectors.GraphSource` (one round trip
  per ``expand``), attention traversal, user Cypher as subgraphs, write-back and loaders.
* :class:`Neo4jProjection` -- the graph read once into process memory (the NetworkX connector's
  snapshot), expanded locally, kept fresh by ``refresh`` / ``sync`` / ``max_staleness``.
* :class:`Neo4jVectorIndex` -- Neo4j's vector index with ``HNSWIndex``'s ``search`` contract.
* :class:`TraversalStep`, :class:`TraversalPath` -- the types of :meth:`Neo4jGraph.traverse`.
* :mod:`.server` -- builds and runs an embedded Neo4j 5.26 for tests, demos and benchmarks.

See ``docs/neo4j.md``.
"""
from __future__ import annotations

from .cypher import check_name, quote
from .graph import Neo4jGraph
from .projection import Neo4jProjection
from .traversal import TraversalPath, TraversalStep
from .vector_index import Neo4jVectorIndex

__all__ = ["Neo4jGraph", "Neo4jProjection", "Neo4jVectorIndex", "TraversalStep", "TraversalPath", "check_name", "quote"]
