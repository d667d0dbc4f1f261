"""ruvector-graph-attn: graph-aware attention on Numba kernels.

The public API is re-exported here (docs/architecture.md lists them). Names are
resolved lazily so that ``import ruvector_graph_attn`` stays cheap and one optional
area never breaks another.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

# Numba's OpenMP threads spin-wait after every parallel region by default, and OpenBLAS's
# threads do the same after every BLAS call; on small machines the two then steal each
# other's cores (measured: GraphSAGE/GIN training steps 1.5-2x slower). Passive waiting
# costs nothing measurable on the large workloads. It must be set before the OpenMP
# runtime starts (Numba's first parallel kernel); a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import (  # noqa: F401  (errors are always importable)
    ConfigError, ConnectionFailedError, CorruptFileError, DimensionMismatchError,
    FormatVersionError, GraphSourceError, InputTooLargeError, InvalidInputError,
    NotFittedError, RgaError, StateDictError, UnknownIdError, UnsafeNameError,
)

__version__ = "0.1.0"

# public name -> "module:attribute" (module relative to this package)
_LAZY: dict[str, str] = {
    # attention
    "ScaledDotProductAttention": "attention.standard:ScaledDotProductAttention",
    "MultiHeadAttention": "attention.multihead:MultiHeadAttention",
    "SparseAttention": "attention.sparse:SparseAttention",
    "SparseMask": "attention.sparse:SparseMask",
    "GeometricAttention": "attention.geometric:GeometricAttention",
    "HyperbolicGraphAttention": "attention.geometric:HyperbolicGraphAttention",
    "AttentionConfig": "config:AttentionConfig",
    # retrieval and re-ranking
    "HNSWIndex": "index.hnsw:HNSWIndex",
    "GraphReranker": "rerank.pipeline:GraphReranker",
    "RankedNeighbour": "rerank.results:RankedNeighbour",
    # checkpoints
    "save_checkpoint": "training.checkpoint:save_checkpoint",
    "load_checkpoint": "training.checkpoint:load_checkpoint",
}

_SUBMODULES = {"attention", "manifold", "graph", "nn", "training", "index", "rerank",
               "kernels", "connectors", "config", "validation", "errors", "cli", "export", "compress", "plot"}
_SUBMODULES.add("integrations")          # framework adapters (optional extras, imported lazily)


#: public submodules that live deeper in the package
_SUBMODULE_PATHS = {"scorers": "rerank.scorers"}
_SUBMODULES |= {"distributed", "store"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULE_PATHS:
        return importlib.import_module(f".{_SUBMODULE_PATHS[name]}", __name__)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'ruvector_graph_attn' has no attribute '{name}'")
    mod_name, attr = target.split(":")
    value = getattr(importlib.import_module(f".{mod_name}", __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES | set(_SUBMODULE_PATHS))


__all__ = sorted(set(_LAZY) | {
    "RgaError", "InvalidInputError", "DimensionMismatchError", "InputTooLargeError",
    "UnknownIdError", "StateDictError", "CorruptFileError", "FormatVersionError",
    "ConfigError", "NotFittedError", "GraphSourceError", "ConnectionFailedError",
    "UnsafeNameError",
})
