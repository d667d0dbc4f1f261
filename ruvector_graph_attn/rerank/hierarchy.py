"""Re-ranking with learned Poincaré positions of a hierarchy
(:class:`~ruvector_graph_attn.training.poincare.PoincareEmbedding`).

A query is a text vector with no position of its own; its best vector hits stand for it in the
ball. :class:`PoincareScorer` ranks each candidate ``c`` by its hyperbolic relation to those
anchors: for query ``q`` with candidates' vector scores ``v``, the ``anchors`` best candidates
that have a position are ``a_1..a_m``, weighted ``w = softmax(v_a / T)``;

    g_c = - sum_a w_a [ d(u_a, u_c) + alpha * max(0, s (|u_c| - |u_a|)) ]   (a != c)
    score = (1 - blend) v_c + blend g_c

with ``d`` the Poincaré distance (unit ball) and ``s = +1`` for ``relation="ancestor"`` (a
candidate deeper in the ball than the anchors -- a larger norm -- is penalised: ancestors sit
closer to the origin, as the trained embedding puts general nodes there), ``s = -1`` for
``"descendant"``, ``alpha = 0`` for ``"related"``. An anchor that is itself the candidate is
left out of its own sum (weights renormalised). Candidates without a position get the row's
smallest ``g``. The graph is not expanded (``uses_graph = False``) unless ``base`` is given: a
scorer whose score replaces ``v_c`` in the blend (``score = (1 - blend) base_c + blend g_c``; the
anchors are still the best vector hits).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..errors import ConfigError, DimensionMismatchError, InvalidInputError
from ..validation import check_float, check_positive_int
from .scorers import Candidates, Scores

__all__ = ["PoincareScorer", "poincare_distance", "RELATIONS"]

RELATIONS = ("ancestor", "descendant", "related")


def poincare_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``arcosh(1 + 2 |u - v|^2 / ((1 - |u|^2)(1 - |v|^2)))`` over the last axis (broadcast)."""
    uu = np.einsum("...i,...i->...", u, u)
    vv = np.einsum("...i,...i->...", v, v)
    sq = np.einsum("...i,...i->...", u - v, u - v)
    g = 1.0 + 2.0 * sq / np.maximum((1.0 - uu) * (1.0 - vv), 1e-15)
    return np.arccosh(np.maximum(g, 1.0))


class PoincareScorer:
    """See the module docstring. ``ids``: the node id of each row of ``positions [N, d]``
    (points strictly inside the unit ball)."""

    def __init__(self, ids: Sequence[Any], positions: Any, relation: str = "ancestor", anchors: int = 5,
                 temperature: float = 0.05, alpha: float = 1.0, blend: float = 0.5, base: Any = None) -> None:
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[0] == 0 or not np.isfinite(pos).all():
            raise InvalidInputError(f"positions must be a finite, non-empty [N, d] array, got shape {pos.shape}")
        if (np.einsum("ij,ij->i", pos, pos) >= 1.0).any():
            raise InvalidInputError("positions must lie strictly inside the unit ball")
        ids = list(ids.tolist() if isinstance(ids, np.ndarray) else ids)
        if len(ids) != pos.shape[0]:
            raise DimensionMismatchError(pos.shape[0], len(ids), "number of ids (rows of positions)")
        self.row_of = {}
        for r, i in enumerate(ids):
            i = i.item() if isinstance(i, np.generic) else i
            if i in self.row_of:
                raise InvalidInputError(f"ids lists {i!r} more than once")
            self.row_of[i] = r
        if relation not in RELATIONS:
            raise ConfigError(f"relation must be one of {', '.join(RELATIONS)}; got {relation!r}")
        self.positions = pos
        self.relation = relation
        self.anchors = check_positive_int(anchors, "anchors")
        self.temperature = check_float(temperature, "temperature", lo=0.0, lo_open=True)
        self.alpha = check_float(alpha, "alpha", lo=0.0)
        self.blend = check_float(blend, "blend", lo=0.0, hi=1.0)
        if base is not None and not (callable(getattr(base, "score", None)) and hasattr(base, "hops_needed")):
            raise ConfigError(f"base must be a scorer object, got {type(base).__name__}")
        self.base = base
        self.hops_needed = 0 if base is None else int(base.hops_needed)
        self.uses_graph = base is not None and bool(getattr(base, "uses_graph", True))

    def __repr__(self) -> str:
        return (f"PoincareScorer({len(self.row_of)} positions of dim {self.positions.shape[1]}, "
                f"relation={self.relation!r}, anchors={self.anchors}, temperature={self.temperature}, "
                f"alpha={self.alpha}, blend={self.blend})")

    def context(self, vector_scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``g [B, C]`` from vector scores and position rows (``-1``: no position)."""
        B, C = rows.shape
        has = rows >= 0
        v = np.where(has & np.isfinite(vector_scores), vector_scores, -np.inf)
        m = min(self.anchors, C)
        top = np.argsort(-v, axis=1, kind="stable")[:, :m]                    # [B, m]
        va = np.take_along_axis(v, top, 1)
        ok = np.isfinite(va)
        z = np.where(ok, va / self.temperature, -np.inf)
        z = z - np.where(ok.any(1, keepdims=True), np.max(np.where(ok, z, -np.inf), 1, keepdims=True), 0.0)
        w = np.where(ok, np.exp(z), 0.0)                                      # [B, m]
        P = self.positions
        uc = P[np.where(has, rows, 0)]                                        # [B, C, d]
        ua = P[np.where(ok, np.take_along_axis(rows, top, 1), 0)]             # [B, m, d]
        d = poincare_distance(ua[:, :, None, :], uc[:, None, :, :])            # [B, m, C]
        if self.relation == "related":
            pen = np.zeros_like(d)
        else:
            s = 1.0 if self.relation == "ancestor" else -1.0
            nc = np.sqrt(np.einsum("bcd,bcd->bc", uc, uc))
            na = np.sqrt(np.einsum("bmd,bmd->bm", ua, ua))
            pen = self.alpha * np.maximum(0.0, s * (nc[:, None, :] - na[:, :, None]))
        self_pair = top[:, :, None] == np.arange(C)[None, None, :]            # anchor a is candidate c
        W = np.where(self_pair, 0.0, w[:, :, None])                           # [B, m, C]
        tot = W.sum(1)
        g = -(W * (d + pen)).sum(1) / np.where(tot > 0, tot, 1.0)
        g = np.where(has & (tot > 0), g, np.nan)
        lo = np.nanmin(np.where(np.isnan(g), np.inf, g), axis=1, keepdims=True)
        lo = np.where(np.isfinite(lo), lo, 0.0)
        return np.where(np.isnan(g), lo, g)

    def score(self, queries: np.ndarray, candidates: Candidates, subgraph: Optional[Any]) -> Scores:
        ids = candidates.ids
        flat = ids.reshape(-1).tolist()
        rows = np.fromiter((self.row_of.get(i, -1) for i in flat), dtype=np.int64, count=len(flat)).reshape(ids.shape)
        rows = np.where(candidates.present, rows, -1)
        g = self.context(candidates.vector_scores, rows)
        first = candidates.vector_scores
        if self.base is not None:
            first = np.asarray(self.base.score(queries, candidates, subgraph).scores, dtype=np.float64)
        s = (1.0 - self.blend) * first + self.blend * g
        return Scores(np.where(candidates.present, s, candidates.vector_scores), np.where(candidates.present, g, np.nan))
