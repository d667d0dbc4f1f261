"""LangChain adapters: a retriever and a document compressor (re-ranker).

* :class:`LangChainGraphRetriever` -- a ``langchain_core.retrievers.BaseRetriever``: text in,
  ``Document`` s out (``retriever.invoke("question")``), each with the node id, the re-ranked
  score, the vector score, ranks and the attention explanation in ``metadata``.
* :class:`LangChainGraphReranker` -- a ``langchain_core.documents.BaseDocumentCompressor`` that
  re-ranks the documents another retriever returned by the node id in their metadata; use it in
  ``langchain_classic.retrievers.ContextualCompressionRetriever`` (the ``langchain`` extra
  installs ``langchain-classic``, where that class lives since LangChain 1.0).

Documents without a node id follow ``without_id`` (docs/integrations.md): ``"after"`` keeps them
unchanged after the re-ranked ones, in their input order; ``"drop"`` removes them; ``"error"``
raises :class:`~ruvector_graph_attn.InvalidInputError`.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from pydantic import PrivateAttr

from ._common import (
    check_id_key, check_k, check_reranker, check_reranking_fields, hit_metadata, make_query_vector, node_texts,
    read_node_id, rerank_items, text_embedder,
)

__all__ = ["LangChainGraphRetriever", "LangChainGraphReranker"]


class LangChainGraphRetriever(BaseRetriever):
    """Graph re-ranked retrieval as a LangChain retriever.

    Fields:
        reranker: a :class:`~ruvector_graph_attn.GraphReranker`.
        embedder: query text -> vector (callable ``list[str] -> [n, d]`` or an object with
            ``embed_query``, e.g. LangChain ``Embeddings``).
        k: documents per query (``invoke(query, k=...)`` overrides it for one call).
        id_key: metadata key of the node id.
        text_key: node property / attribute used as ``page_content``.
        texts: optional mapping or callable ``node id -> text``.
        filter: optional allow-list of node ids or predicate ``id -> bool`` (``GraphReranker.search``'s
            ``filter``); ``invoke(query, filter=...)`` sets it for one call.
    """

    reranker: Any
    embedder: Any = None
    k: Any = 4
    id_key: str = "node_id"
    text_key: str = "text"
    texts: Any = None
    filter: Any = None
    _embed: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # checked here, after pydantic, so the library's typed errors reach the caller unwrapped
        check_reranker(self.reranker)
        check_k(self.k)
        check_id_key(self.id_key)
        self._embed = text_embedder(self.embedder)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: Optional[int] = None, filter: Any = None) -> list[Document]:
        kk = check_k(self.k if k is None else k)
        q = make_query_vector(self.reranker, self._embed, text=query)
        allow = self.filter if filter is None else filter
        hits = self.reranker.search(q, k=kk) if allow is None else self.reranker.search(q, k=kk, filter=allow)
        texts = node_texts(self.reranker.graph, [h.id for h in hits], texts=self.texts, text_key=self.text_key)
        return [Document(page_content=t, metadata=hit_metadata(h, self.id_key), id=str(h.id))
                for h, t in zip(hits, texts)]


class LangChainGraphReranker(BaseDocumentCompressor):
    """Re-rank another retriever's documents with the graph (a LangChain document compressor).

    Each document's node id is ``metadata[id_key]`` (or ``id_key(document)`` for a callable);
    the distinct ids are re-ranked by ``reranker.rerank`` for the query, and the documents come
    back in that order with the hit's metadata merged into a copy of theirs (several documents of
    one node keep their input order at the node's place). ``top_n`` caps the output length
    (default: all). Unknown ids raise :class:`~ruvector_graph_attn.UnknownIdError`.
    """

    reranker: Any
    embedder: Any = None
    id_key: Any = "node_id"
    top_n: Any = None
    without_id: str = "after"
    _embed: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # checked here, after pydantic, so the library's typed errors reach the caller unwrapped
        self._embed = check_reranking_fields(self)

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Any = None) -> Sequence[Document]:
        docs = list(documents)
        q = make_query_vector(self.reranker, self._embed, text=query)
        if not docs:
            return []
        ids = [read_node_id(d.metadata, self.id_key, d) for d in docs]
        key = self.id_key if isinstance(self.id_key, str) else "node_id"
        return rerank_items(self.reranker, q, docs, ids, self.without_id, self.top_n,
                            lambda d, h: d.model_copy(update={"metadata": {**d.metadata, **hit_metadata(h, key)}}))
