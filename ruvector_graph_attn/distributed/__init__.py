"""Beyond one machine: batch re-ranking and sharded indexes on Dask, layer-wise GNN inference.

``rerank`` (batch re-ranking into a Dask DataFrame), ``ShardedIndex`` (shards on different
workers, merged top-k), ``RerankerPlugin`` (loads index, graph and model once per worker) and
``infer_layerwise`` (exact full-graph inference over node blocks, out of core). Dask
(``pip install "ruvector-graph-attn[distributed]"``) is imported only by the functions that
need it; ``infer_layerwise`` without a client runs without it. See docs/scale.md.
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "infer_layerwise": ".layerwise:infer_layerwise",
    "rerank": ".batch:rerank",
    "RerankSpec": ".batch:RerankSpec",
    "RerankerPlugin": ".batch:RerankerPlugin",
    "ShardedIndex": ".sharded:ShardedIndex",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
