"""neo4j-graphrag adapter: :class:`GraphRAGRetriever`, a ``neo4j_graphrag.retrievers.base.Retriever``.

``get_search_results(query_vector=None, query_text=None, top_k=5, query_params=None)`` returns a
``RawSearchResult`` of ``neo4j.Record`` s, so the framework's ``search()`` gives
``RetrieverResult`` items and the retriever plugs into ``neo4j_graphrag.generation.GraphRAG``:

1. the query text is embedded by ``embedder`` (any callable ``list[str] -> [n, d]``, or an object
   with ``embed_query`` such as a neo4j-graphrag ``Embedder``);
2. the :class:`~ruvector_graph_attn.GraphReranker` fetches candidates from its index (an
   :class:`~ruvector_graph_attn.HNSWIndex` or a
   :class:`~ruvector_graph_attn.connectors.Neo4jVectorIndex`), expands the graph around them and
   re-ranks them with its scorer;
3. without ``retrieval_query`` each hit becomes one record ``{node, id, score, metadata}``
   (``node``: the node's stored properties without the embedding; ``metadata``: id, score,
   vector score, ranks, and the attention explanation);
   with ``retrieval_query`` (a Cypher tail, as for neo4j-graphrag's ``VectorCypherRetriever``) the
   hits are matched in Neo4j and the tail runs with ``node`` (the matched node), ``score`` (the
   re-ranked score) and ``rga`` (the hit's metadata map) in scope, in re-ranked order. Hits whose
   node is not in Neo4j do not reach the tail.

The default formatter puts the hit's metadata into each item's metadata (from the ``metadata``
column, or the ``rga`` column when a tail returns it); every hit's metadata is also in the
``RetrieverResult.metadata["rga_hits"]`` list, whatever the tail returns.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import neo4j
from neo4j_graphrag.retrievers.base import Retriever
from neo4j_graphrag.types import RawSearchResult, RetrieverResultItem

from ..errors import ConfigError, ConnectionFailedError, GraphSourceError, InvalidInputError
from ._common import check_k, check_reranker, hit_metadata, make_query_vector, node_properties, node_texts, plain, \
    text_embedder

__all__ = ["GraphRAGRetriever"]

#: parameter name of the hit list in the Cypher of ``retrieval_query``
HITS_PARAM = "rga_hits"


class GraphRAGRetriever(Retriever):
    """Graph re-ranked retrieval for neo4j-graphrag (``GraphRAG(retriever=GraphRAGRetriever(...))``).

    Args:
        reranker: a :class:`~ruvector_graph_attn.GraphReranker` (its index gives the candidates,
            its graph and scorer re-rank them).
        embedder: turns ``query_text`` into a vector (callable ``list[str] -> [n, d]``, or an
            object with ``embed_query``); not needed when callers pass ``query_vector``.
        driver: the ``neo4j.Driver`` for ``retrieval_query`` and node properties; default: the
            driver of the reranker's graph when it is a ``Neo4jGraph``.
        neo4j_database: database of ``driver`` (default: the graph's, else the server default).
        retrieval_query: optional Cypher tail run on the hits (``node``, ``score``, ``rga``).
        result_formatter: optional ``neo4j.Record -> RetrieverResultItem``.
        label, id_property: how a hit id is matched in Neo4j (``MATCH (node:label
            {id_property: id})``); default: the ``Neo4jGraph``'s.
        text_property: node property used as the item text by the default formatter (falls back
            to all properties as a string).
        texts: optional mapping or callable ``node id -> text`` (a graph without stored texts).
    """

    VERIFY_NEO4J_VERSION = False

    def __init__(self, reranker: Any, embedder: Any = None, driver: Optional[neo4j.Driver] = None,
                 neo4j_database: Optional[str] = None, retrieval_query: Optional[str] = None,
                 result_formatter: Optional[Callable[[neo4j.Record], RetrieverResultItem]] = None,
                 label: Optional[str] = None, id_property: Optional[str] = None, text_property: str = "text",
                 texts: Any = None) -> None:
        self.reranker = check_reranker(reranker)
        graph = reranker.graph
        self._embed = text_embedder(embedder)
        self.embedder = embedder
        if driver is None:
            driver = getattr(graph, "driver", None) if hasattr(graph, "read") else None
            if neo4j_database is None and driver is not None:
                neo4j_database = getattr(graph, "database", None)
        if driver is not None and not isinstance(driver, neo4j.Driver):
            raise InvalidInputError(f"driver must be a neo4j.Driver, got {type(driver).__name__}")
        if retrieval_query is not None:
            if not isinstance(retrieval_query, str) or not retrieval_query.strip():
                raise InvalidInputError("retrieval_query must be a non-empty Cypher string")
            if driver is None:
                raise ConfigError("retrieval_query needs Neo4j: pass driver=... or use a Neo4jGraph")
        if result_formatter is not None and not callable(result_formatter):
            raise InvalidInputError("result_formatter must be callable (neo4j.Record -> RetrieverResultItem)")
        if driver is not None:
            super().__init__(driver, neo4j_database)
        else:
            self.driver = None
            self.neo4j_database = None
        from ..connectors.neo4j.cypher import quote

        self._label = quote(label, "label") if label is not None else getattr(graph, "_label", None)
        self._idp = quote(id_property, "id property") if id_property is not None else getattr(graph, "_idp", None)
        if retrieval_query is not None and (self._label is None or self._idp is None):
            raise ConfigError("retrieval_query needs label= and id_property= to find the hits in Neo4j "
                              "(taken from the graph when it is a Neo4jGraph)")
        self.retrieval_query = retrieval_query
        self.result_formatter = result_formatter
        self.text_property = text_property
        self.texts = texts
        self.index_name = getattr(reranker.index, "name", None)

    def __repr__(self) -> str:
        return f"GraphRAGRetriever({self.reranker!r}, retrieval_query={'yes' if self.retrieval_query else 'no'})"

    def get_search_results(self, query_vector: Optional[list[float]] = None, query_text: Optional[str] = None,
                           top_k: int = 5, query_params: Optional[dict[str, Any]] = None,
                           filters: Optional[dict[str, Any]] = None) -> RawSearchResult:
        """The ``top_k`` graph re-ranked nodes for ``query_vector`` or ``query_text`` (exactly one).

        Args:
            query_vector: the query embedding.
            query_text: the query text (needs an ``embedder`` here or on the reranker).
            top_k: how many re-ranked hits to return.
            query_params: extra Cypher parameters for ``retrieval_query``.
            filters: neo4j-graphrag metadata filters on node properties (``{"year": {"$gte":
                2020}}``, same operators as its vector retrievers); the matching node ids become the
                re-ranker's allow-list, so only they are candidates and results. Needs Neo4j.

        Returns:
            RawSearchResult: one ``neo4j.Record`` per hit (or per row of ``retrieval_query``);
            metadata ``query_vector`` and ``rga_hits`` (every hit's scores and explanation).
        """
        k = check_k(top_k, "top_k")
        q = make_query_vector(self.reranker, self._embed, text=query_text, vector=query_vector)
        if filters is not None:
            hits = self.reranker.search(q, k=k, filter=self._filter_ids(filters))
        else:
            hits = self.reranker.search(q, k=k)
        metas = [hit_metadata(h, "id") for h in hits]
        if self.retrieval_query is not None:
            records = self._run_tail(metas, query_params)
        else:
            if query_params:
                raise InvalidInputError("query_params are only used by a retrieval_query")
            records = self._plain_records(hits, metas)
        return RawSearchResult(records=records, metadata={"query_vector": q.tolist(), "rga_hits": metas})

    # ------------------------------------------------------------------ records
    def _plain_records(self, hits: list, metas: list) -> list:
        ids = [h.id for h in hits]
        props = node_properties(self.reranker.graph, ids) if self.texts is None else [None] * len(ids)
        texts = node_texts(self.reranker.graph, ids, texts=self.texts, text_key=self.text_property, props=props)
        return [neo4j.Record({"node": p, "id": plain(h.id), "text": t, "score": float(h.score), "metadata": m})
                for h, p, t, m in zip(hits, props, texts, metas)]

    def _filter_ids(self, filters: Any) -> list:
        """Ids of the nodes matching neo4j-graphrag metadata ``filters`` (one query)."""
        from neo4j_graphrag.exceptions import FilterValidationError
        from neo4j_graphrag.filters import get_metadata_filter

        if self.driver is None or self._label is None or self._idp is None:
            raise ConfigError("filters are evaluated in Neo4j: use a Neo4jGraph or pass driver=, label= and "
                              "id_property=")
        if not isinstance(filters, dict) or not filters:
            raise InvalidInputError(f"filters must be a non-empty dict of property conditions, got {filters!r}")
        try:
            where, params = get_metadata_filter(filters, node_alias="node")
        except (FilterValidationError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"bad filters {filters!r}: {exc}") from None
        records = self._execute(f"MATCH (node:{self._label}) WHERE {where} RETURN node.{self._idp} AS id",
                                params, "the filters")
        return [r["id"] for r in records]

    def _execute(self, cypher: str, params: dict, what: str) -> list:
        try:
            records, _, _ = self.driver.execute_query(cypher, params, database_=self.neo4j_database,
                                                      routing_=neo4j.RoutingControl.READ)
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired) as exc:
            raise ConnectionFailedError(f"Neo4j is unreachable while running {what}: {exc}") from None
        except neo4j.exceptions.Neo4jError as exc:
            raise GraphSourceError(f"Neo4j refused {what}: {exc.code}: {exc.message}") from None
        return list(records)

    def _run_tail(self, metas: list, query_params: Optional[dict]) -> list:
        params: dict = {}
        if query_params is not None:
            if not isinstance(query_params, dict) or not all(isinstance(k, str) for k in query_params):
                raise InvalidInputError("query_params must be a dict with string keys")
            if HITS_PARAM in query_params:
                raise InvalidInputError(f"query_params may not use the reserved name {HITS_PARAM!r}")
            params.update(query_params)
        params[HITS_PARAM] = metas
        cypher = (f"UNWIND ${HITS_PARAM} AS rga MATCH (node:{self._label} {{{self._idp}: rga.id}}) "
                  f"WITH node, rga.score AS score, rga ORDER BY rga.rank\n{self.retrieval_query}")
        return self._execute(cypher, params, "the retrieval_query")

    def default_record_formatter(self, record: neo4j.Record) -> RetrieverResultItem:
        """Item text: the ``text`` column (no tail: the node's ``text_property``); otherwise the
        record without its ``rga`` column. Metadata: the ``metadata`` column, updated with ``rga``."""
        keys = record.keys()
        meta: dict = {}
        if isinstance(record.get("rga"), dict):
            meta.update(record["rga"])
        if isinstance(record.get("metadata"), dict):
            meta.update(record["metadata"])
        if "text" in keys and record["text"] is not None:
            content = str(record["text"])
        else:
            content = str(neo4j.Record({k: record[k] for k in keys if k != "rga"}))
        return RetrieverResultItem(content=content, metadata=meta or None)
