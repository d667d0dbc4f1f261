"""Ranking quality metrics with binary relevance and relevant sets of any size.

For one query with ranked ids ``r_1, r_2, ...`` (best first) and relevant set ``R``
(``hit_i = 1`` when ``r_i`` is in ``R``):

``recall@k``  ``sum_{i<=k} hit_i / |R|``.
``MRR@k``     ``1 / i`` for the first ``i <= k`` with ``hit_i = 1``, else 0.
``nDCG@k``    ``DCG / IDCG`` with ``DCG = sum_{i<=k} hit_i / log2(i + 1)`` and the ideal
              ``IDCG = sum_{i <= min(k, |R|)} 1 / log2(i + 1)``.

Each function returns the mean over queries; queries with an empty relevant set are refused
(their recall is undefined). Ids repeated in a ranking count once (the first time).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError

__all__ = ["hit_matrix", "recall_at_k", "mrr_at_k", "ndcg_at_k", "ranking_metrics"]


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return int(k)


def hit_matrix(ranked: Any, relevant: Sequence[Any], k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hits [B, k] bool, sizes [B])``: which of the first ``k`` ranked ids are relevant
    (rows shorter than ``k`` are padded with misses) and each relevant set's size."""
    k = _check_k(k)
    rows = list(ranked) if not isinstance(ranked, np.ndarray) else [ranked[i] for i in range(ranked.shape[0])] \
        if ranked.ndim == 2 else None
    if rows is None:
        raise InvalidInputError(f"ranked must be a 2-d array or a sequence of rankings, got shape {ranked.shape}")
    if len(rows) != len(relevant):
        raise DimensionMismatchError(len(rows), len(relevant), "number of relevant sets (one per ranking)")
    if len(rows) == 0:
        raise InvalidInputError("no rankings given")
    hits = np.zeros((len(rows), k), dtype=bool)
    sizes = np.empty(len(rows), dtype=np.int64)
    for b, (row, rel) in enumerate(zip(rows, relevant)):
        rel_set = set(np.asarray(rel).reshape(-1).tolist())
        if not rel_set:
            raise InvalidInputError(f"query {b} has no relevant items; recall is undefined")
        sizes[b] = len(rel_set)
        seen = set()
        for i, item in enumerate(np.asarray(row).reshape(-1)[:k].tolist()):
            if item in rel_set and item not in seen:
                hits[b, i] = True
            seen.add(item)
    return hits, sizes


def _recall(hits, sizes):
    return hits.sum(1) / sizes


def _mrr(hits):
    first = np.where(hits.any(1), hits.argmax(1), np.inf)
    return 1.0 / (first + 1.0)


def _ndcg(hits, sizes):
    k = hits.shape[1]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * disc).sum(1)
    ideal = np.cumsum(disc)[np.minimum(sizes, k) - 1]
    return dcg / ideal


def recall_at_k(ranked: Any, relevant: Sequence[Any], k: int = 10) -> float:
    """Mean recall@k (see the module docstring)."""
    return float(_recall(*hit_matrix(ranked, relevant, k)).mean())


def mrr_at_k(ranked: Any, relevant: Sequence[Any], k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant item within the top ``k``."""
    return float(_mrr(hit_matrix(ranked, relevant, k)[0]).mean())


def ndcg_at_k(ranked: Any, relevant: Sequence[Any], k: int = 10) -> float:
    """Mean binary-relevance nDCG@k (see the module docstring)."""
    return float(_ndcg(*hit_matrix(ranked, relevant, k)).mean())


def ranking_metrics(ranked: Any, relevant: Sequence[Any], k: int = 10) -> dict:
    """``{"recall@k", "mrr@k", "ndcg@k"}`` in one pass."""
    hits, sizes = hit_matrix(ranked, relevant, k)
    return {f"recall@{k}": float(_recall(hits, sizes).mean()), f"mrr@{k}": float(_mrr(hits).mean()),
            f"ndcg@{k}": float(_ndcg(hits, sizes).mean())}
