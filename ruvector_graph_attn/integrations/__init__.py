"""Adapters for retrieval frameworks (optional extras; see docs/integrations.md).

=======================================  =====================  ===================================
class                                    extra                  framework base class
=======================================  =====================  ===================================
``GraphRAGRetriever``                    ``graphrag``           ``neo4j_graphrag`` ``Retriever``
``LangChainGraphRetriever``              ``langchain``          ``langchain_core`` ``BaseRetriever``
``LangChainGraphReranker``               ``langchain``          ``BaseDocumentCompressor``
``LlamaIndexGraphRetriever``             ``llamaindex``         ``llama_index.core`` ``BaseRetriever``
``LlamaIndexGraphReranker``              ``llamaindex``         ``BaseNodePostprocessor``
=======================================  =====================  ===================================

Names resolve lazily: importing this package does not import any framework; using a class whose
framework is not installed raises an ``ImportError`` naming the extra to install.
``HashingEmbedder`` is a deterministic test embedder with no dependency.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "GraphRAGRetriever": ("graphrag", "graphrag"),
    "LangChainGraphRetriever": ("langchain", "langchain"),
    "LangChainGraphReranker": ("langchain", "langchain"),
    "LlamaIndexGraphRetriever": ("llamaindex", "llamaindex"),
    "LlamaIndexGraphReranker": ("llamaindex", "llamaindex"),
    "HashingEmbedder": ("hashing", None),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'ruvector_graph_attn.integrations' has no attribute '{name}'")
    mod, extra = target
    try:
        module = importlib.import_module(f".{mod}", __name__)
    except ImportError as exc:
        if extra is None:
            raise
        raise ImportError(f"{name} needs the {extra!r} extra: pip install 'ruvector-graph-attn[{extra}]' "
                          f"({exc})") from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
