"""Ranking metrics against values worked out by hand."""
import math

import numpy as np
import pytest

from ruvector_graph_attn.errors import DimensionMismatchError, InvalidInputError
from ruvector_graph_attn.rerank.metrics import mrr_at_k, ndcg_at_k, ranking_metrics, recall_at_k

RANKED = [[5, 3, 9, 1], [2, 2, 8, 0]]
RELEVANT = [[3, 1, 7], [2]]


def test_hand_computed():
    # query 0: hits at ranks 2 and 4 of 4, |R| = 3; query 1: hit at rank 1 (the repeat counts once)
    ndcg0 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert recall_at_k(RANKED, RELEVANT, 4) == pytest.approx((2 / 3 + 1) / 2)
    assert mrr_at_k(RANKED, RELEVANT, 4) == pytest.approx((0.5 + 1) / 2)
    assert ndcg_at_k(RANKED, RELEVANT, 4) == pytest.approx((ndcg0 + 1) / 2)
    assert ndcg0 == pytest.approx(0.498189, abs=1e-6)
    # k = 2 cuts the second hit of query 0; IDCG uses min(k, |R|) = 2
    m = ranking_metrics(RANKED, RELEVANT, 2)
    assert m["recall@2"] == pytest.approx((1 / 3 + 1) / 2)
    assert m["ndcg@2"] == pytest.approx(((1 / math.log2(3)) / (1 + 1 / math.log2(3)) + 1) / 2)
    assert m["mrr@2"] == pytest.approx(0.75)


def test_array_input_short_rows_and_misses():
    r = np.array([[4, 5, 6]])
    assert ndcg_at_k(r, [[9]], 10) == 0.0 and mrr_at_k(r, [[9]], 10) == 0.0
    assert ndcg_at_k(r, [[6]], 10) == pytest.approx(0.5)          # 1/log2(4) / 1
    assert recall_at_k([[1]], [[1, 2]], 10) == pytest.approx(0.5)  # shorter ranking than k


def test_bad_input():
    with pytest.raises(InvalidInputError):
        ndcg_at_k(RANKED, [[1], []], 4)
    with pytest.raises(DimensionMismatchError):
        ndcg_at_k(RANKED, [[1]], 4)
    with pytest.raises(InvalidInputError):
        ndcg_at_k(RANKED, RELEVANT, 0)
    with pytest.raises(InvalidInputError):
        ndcg_at_k([], [], 3)
