"""Out-of-core storage: memory-mapped node features, CSR adjacency and whole graphs.

``FeatureStore`` (float32 / float16 / int8 with per-row scales), ``MmapCSR`` (edges grouped
by target, built out of core from edge chunks) and ``MmapGraph`` (a GraphSource over mapped
arrays, expansion identical to ``NetworkXGraph``). See docs/scale.md.
"""
from __future__ import annotations

from .csr import MmapCSR
from .features import STORE_DTYPES, FeatureStore, quantize_int8
from .graph import MmapGraph

__all__ = ["FeatureStore", "MmapCSR", "MmapGraph", "STORE_DTYPES", "quantize_int8"]
