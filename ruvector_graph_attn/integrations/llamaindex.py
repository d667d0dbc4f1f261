"""LlamaIndex adapters: a retriever and a node postprocessor (re-ranker).

* :class:`LlamaIndexGraphRetriever` -- a ``llama_index.core.retrievers.BaseRetriever`` returning
  ``NodeWithScore`` (``TextNode`` with the node id, scores and the attention explanation in
  ``metadata``; those keys are kept out of the LLM and embedding text).
* :class:`LlamaIndexGraphReranker` -- a ``llama_index.core.postprocessor.types.BaseNodePostprocessor``
  that re-ranks retrieved nodes by the node id in their metadata, for
  ``RetrieverQueryEngine(..., node_postprocessors=[...])`` or ``postprocess_nodes``.

The query vector is ``QueryBundle.embedding`` when present, else the adapter's ``embedder``
applied to ``QueryBundle.query_str``. Nodes without a node id follow ``without_id``
(docs/integrations.md): ``"after"`` keeps them unchanged (original score) after the re-ranked
ones; ``"drop"`` removes them; ``"error"`` raises.
"""
from __future__ import annotations

from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ..errors import InvalidInputError
from ._common import (
    EXPLANATION_KEYS, check_k, check_reranker, check_reranking_fields, hit_metadata, make_query_vector,
    node_texts, read_node_id, rerank_items, text_embedder,
)

__all__ = ["LlamaIndexGraphRetriever", "LlamaIndexGraphReranker"]

#: metadata key that keeps a node's incoming score when the re-ranker replaces it
RETRIEVER_SCORE_KEY = "retriever_score"


def _bundle_vector(reranker: Any, embed: Any, query_bundle: Optional[QueryBundle]):
    if query_bundle is None:
        raise InvalidInputError("a query is needed: pass query_bundle= or query_str=")
    if not isinstance(query_bundle, QueryBundle):
        raise InvalidInputError(f"query_bundle must be a QueryBundle, got {type(query_bundle).__name__}")
    if query_bundle.embedding is not None:
        return make_query_vector(reranker, embed, vector=query_bundle.embedding)
    return make_query_vector(reranker, embed, text=query_bundle.query_str)


class LlamaIndexGraphRetriever(BaseRetriever):
    """Graph re-ranked retrieval as a LlamaIndex retriever (``retriever.retrieve("question")``).

    Args:
        reranker: a :class:`~ruvector_graph_attn.GraphReranker`.
        embedder: query text -> vector (callable ``list[str] -> [n, d]``, an object with
            ``embed_query`` or a LlamaIndex embedding with ``get_query_embedding``).
        k: nodes per query.
        id_key: metadata key of the node id.
        text_key: node property / attribute used as the node text.
        texts: optional mapping or callable ``node id -> text``.
        filter: optional allow-list of node ids or predicate ``id -> bool`` (``GraphReranker.search``'s
            ``filter``).
    """

    def __init__(self, reranker: Any, embedder: Any = None, k: int = 4, id_key: str = "node_id",
                 text_key: str = "text", texts: Any = None, filter: Any = None, **kwargs: Any) -> None:
        self.reranker = check_reranker(reranker)
        self.embedder = embedder
        self._embed = text_embedder(embedder)
        self.k = check_k(k)
        if not isinstance(id_key, str) or not id_key:
            raise InvalidInputError(f"id_key must be a non-empty string, got {id_key!r}")
        self.id_key = id_key
        self.text_key = text_key
        self.texts = texts
        self.filter = filter
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        q = _bundle_vector(self.reranker, self._embed, query_bundle)
        hits = self.reranker.search(q, k=self.k) if self.filter is None else \
            self.reranker.search(q, k=self.k, filter=self.filter)
        texts = node_texts(self.reranker.graph, [h.id for h in hits], texts=self.texts, text_key=self.text_key)
        hidden = list(EXPLANATION_KEYS)
        return [NodeWithScore(node=TextNode(id_=str(h.id), text=t, metadata=hit_metadata(h, self.id_key),
                                            excluded_llm_metadata_keys=hidden,
                                            excluded_embed_metadata_keys=hidden),
                              score=float(h.score))
                for h, t in zip(hits, texts)]


class LlamaIndexGraphReranker(BaseNodePostprocessor):
    """Re-rank retrieved nodes with the graph (a LlamaIndex node postprocessor).

    Each node's id is ``node.metadata[id_key]`` (or ``id_key(node_with_score)`` for a callable);
    the distinct ids are re-ranked by ``reranker.rerank`` for the query and the nodes come back in
    that order, each a copy whose ``score`` is the re-ranked score, with the hit's metadata merged
    in and the incoming score kept as ``metadata["retriever_score"]``. ``top_n`` caps the output
    (default: all). Unknown ids raise :class:`~ruvector_graph_attn.UnknownIdError`.

    ``use_retriever_scores=True`` passes the incoming scores to ``rerank`` as the candidates' own
    scores (first node of each id) instead of computing them from the graph features; use it when
    the retriever's score is a similarity in the index space. Ids the graph does not have are then
    kept with their score (``in_graph=False``) instead of raising.
    """

    reranker: Any = Field(exclude=True)
    embedder: Any = Field(default=None, exclude=True)
    id_key: Any = "node_id"
    top_n: Optional[int] = None
    without_id: str = "after"
    use_retriever_scores: bool = False
    _embed: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # checked here, after pydantic, so the library's typed errors reach the caller unwrapped
        self._embed = check_reranking_fields(self)

    @classmethod
    def class_name(cls) -> str:
        return "LlamaIndexGraphReranker"

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        q = _bundle_vector(self.reranker, self._embed, query_bundle)
        nodes = list(nodes)
        if not nodes:
            return []
        ids = [read_node_id(n.node.metadata, self.id_key, n) for n in nodes]
        key = self.id_key if isinstance(self.id_key, str) else "node_id"

        def own_scores(uniq: list) -> list:
            first: dict = {}
            for i, n in zip(ids, nodes):
                if i is not None and i not in first:
                    if n.score is None:
                        raise InvalidInputError(f"node {i!r} has no score; use_retriever_scores needs one per node")
                    first[i] = float(n.score)
            return [first[i] for i in uniq]

        def rebuild(n: NodeWithScore, h: Any) -> NodeWithScore:
            hide = [*EXPLANATION_KEYS, RETRIEVER_SCORE_KEY]
            node = n.node.model_copy(update={
                "metadata": {**n.node.metadata, **hit_metadata(h, key), RETRIEVER_SCORE_KEY: n.score},
                "excluded_llm_metadata_keys": list(dict.fromkeys([*n.node.excluded_llm_metadata_keys, *hide])),
                "excluded_embed_metadata_keys": list(dict.fromkeys([*n.node.excluded_embed_metadata_keys, *hide]))})
            return NodeWithScore(node=node, score=float(h.score))

        return rerank_items(self.reranker, q, nodes, ids, self.without_id, self.top_n, rebuild,
                            own_scores if self.use_retriever_scores else None)
