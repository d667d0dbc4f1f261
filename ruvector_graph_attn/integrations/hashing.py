"""A small deterministic text embedder for tests and offline examples -- NOT a semantic model.

``HashingEmbedder(dim)`` maps a text to the signed feature-hashing vector of its lower-cased word
tokens (each token adds ``+1`` or ``-1`` to one of ``dim`` buckets, both chosen by a BLAKE2b hash
of the token, so the result is the same in every process), normalised to unit length. Texts that
share words get a positive cosine; that is all it knows. Use a real embedding model in
applications (docs/integrations.md shows a sentence-transformers one).
"""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError
from ..validation import check_positive_int

__all__ = ["HashingEmbedder"]

_TOKEN = re.compile(r"[0-9a-z]+")


class HashingEmbedder:
    """Deterministic bag-of-words feature hashing (for tests and examples only).

    Callable as ``embedder(list_of_texts) -> [n, dim]`` float32, and with the one-text methods
    frameworks look for: ``embed_query(text)`` / ``embed_documents(texts)``.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = check_positive_int(dim, "dim")

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim})"

    def _bucket(self, token: str) -> tuple:
        h = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        v = int.from_bytes(h, "little")
        return v % self.dim, (1.0 if (v >> 63) & 1 else -1.0)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str) or not hasattr(texts, "__len__"):
            raise InvalidInputError("texts must be a list of strings")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            if not isinstance(t, str):
                raise InvalidInputError(f"texts[{r}] must be a string, got {type(t).__name__}")
            tokens = _TOKEN.findall(t.lower()) or ["<empty>"]
            for tok in tokens:
                b, s = self._bucket(tok)
                out[r, b] += s
            n = float(np.linalg.norm(out[r]))
            if n == 0.0:                      # every token cancelled out: fall back to one bucket
                b, s = self._bucket("<empty>")
                out[r, b] = s
            else:
                out[r] /= n
        return out

    def embed_query(self, text: str) -> list:
        return self([text])[0].tolist()

    def embed_documents(self, texts: Sequence[str]) -> list:
        return self(list(texts)).tolist()

