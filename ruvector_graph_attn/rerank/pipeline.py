"""The main job: candidates -> graph expansion -> scoring -> ranked neighbours.

Candidates come from the reranker's index (:meth:`GraphReranker.search`, optionally with an
allow-list or predicate ``filter``) or from anywhere else (:meth:`GraphReranker.rerank` with a
list of ids and, optionally, their scores). The scoring step is a scorer object
(:mod:`ruvector_graph_attn.rerank.scorers`; the protocol and every built-in scorer's equations
are documented there); the strings ``"vector"``, ``"attention"``, ``"hyperbolic"``, ``"gat"``,
``"sage"``, ``"gin"``, ``"sphere"``, ``"euclidean"``, ``"multihead"``, ``"sparse_topk"``, ``"ppr"`` and ``"vote"``
are aliases of configured scorers.

Candidates missing from the graph keep ``score = v_c`` (their vector score) and are flagged
``in_graph=False``. Everything after the candidate step is batched across queries: one
expansion for the union of all candidates, one scoring call for every (query, candidate) pair.
"""
from __future__ import annotations

import math
import time
from typing import Any, Hashable, Optional, Sequence

import numpy as np

from ..connectors.base import GraphSource, Subgraph, check_direction, check_hops
from ..errors import ConfigError, DimensionMismatchError, InvalidInputError, UnknownIdError
from ..validation import DEFAULT_MAX_KEYS, as_float_array, check_int, check_positive_int, check_size
from . import fastpath as _fastpath
from .auto import AUTO, AUTO_GRAPH_CANDIDATES, auto_parameters, graph_statistics
from .cache import array_key, fingerprint, make_cache
from .results import RankedNeighbour
from .vote import VOTE_TEMPERATURE, VoteScorer
from .scorers import (  # noqa: F401  (re-exported: older import paths)
    ALIASES, DEFAULT_BLEND, DEFAULT_TEMPERATURE, HYPERBOLIC_RADIUS, Candidates, Scores, _number, _unit_rows,
    graph_depth, pair_similarity_rows, resolve_scorer, traversed_pairs,
)

__all__ = ["GraphReranker", "SCORERS", "DEFAULT_TEMPERATURE", "DEFAULT_BLEND"]

#: the scorer aliases accepted as strings
SCORERS = ALIASES
_LAYER_SCORERS = ("gat", "sage", "gin")


def _as_id_row(ids: Any, what: str) -> list:
    """A list of candidate ids: integers or strings, distinct."""
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__") or isinstance(ids, dict):
        raise InvalidInputError(f"{what} must be a sequence of ids, got {type(ids).__name__}")
    if isinstance(ids, np.ndarray) and ids.ndim != 1:
        raise InvalidInputError(f"{what} must be one-dimensional, got shape {ids.shape}")
    out = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    for i in out:
        if isinstance(i, bool) or not isinstance(i, (int, str, np.integer, np.str_)):
            raise InvalidInputError(f"{what}: ids must be integers or strings, got {type(i).__name__} ({i!r})")
    out = [i.item() if isinstance(i, np.generic) else i for i in out]
    if len(set(out)) != len(out):
        seen, dup = set(), []
        for i in out:
            if i in seen:
                dup.append(i)
            seen.add(i)
        raise InvalidInputError(f"{what} lists ids more than once: {dup[:5]!r}")
    check_size(len(out), DEFAULT_MAX_KEYS, f"number of {what}")
    return out


def _id_matrix(rows: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """``(ids [B, C], valid [B, C])`` from ragged rows (padding repeats a real id, valid=False)."""
    B = len(rows)
    C = max((len(r) for r in rows), default=0)
    flat = [i for r in rows for i in r]
    all_int = all(isinstance(i, int) for i in flat)
    all_str = all(isinstance(i, str) for i in flat)
    if not (all_int or all_str):
        raise InvalidInputError("candidate ids must be all integers or all strings")
    pad = flat[0] if flat else 0
    ids = np.empty((B, C), dtype=np.int64 if all_int else object)
    valid = np.zeros((B, C), dtype=bool)
    for b, r in enumerate(rows):
        ids[b, :len(r)] = r
        ids[b, len(r):] = pad
        valid[b, :len(r)] = True
    return ids, valid


class GraphReranker:
    """Re-rank candidates with the graph around them.

    Args:
        index: an :class:`~ruvector_graph_attn.HNSWIndex` (anything with ``search(queries,
            k, ef=..., filter=...)`` returning ``(ids, dists)`` hnswlib-style, ``to_similarity``
            and ``dim``) -- the candidate source of :meth:`search`. May be ``None`` when only
            :meth:`rerank` is used (similarities are then cosine).
        graph: a :class:`~ruvector_graph_attn.connectors.GraphSource` whose node ids are the
            candidates' ids and whose features live in the query space.
        scorer: a scorer object (:mod:`ruvector_graph_attn.rerank.scorers`: anything with
            ``hops_needed`` and ``score(queries, candidates, subgraph)``) or an alias:
            ``"vector"``, ``"attention"`` (default), ``"hyperbolic"``, ``"sphere"``,
            ``"euclidean"``, ``"sparse_topk"``, ``"ppr"``, ``"vote"``, ``"gat"``, ``"sage"``, ``"gin"``
            (these three need ``layer=``), ``"multihead"`` (``layer=`` a MultiHeadAttention);
            ``"vote"`` takes an optional ``layer=``, its trained query map (an ``nn.Linear``).
        hops: neighbourhood radius (0..8). Default (``None``): ``max(1, scorer.hops_needed)``
            (an L-layer model reads L hops around each candidate; a smaller radius would
            truncate its receptive field by what else is in the batch, so ``search_batch``
            would differ from ``search``: that is refused).
        candidates: how many index hits are re-ranked per query (at least ``k`` are fetched).
        temperature, blend, curvature, layer: parameters of the alias scorers (softmax
            temperature ``T > 0``; ``beta`` in ``[0, 1]``, the weight of the graph context
            against the vector similarity; the Poincare-ball curvature of ``"hyperbolic"``; the
            trained layer of ``"gat"``/``"sage"``/``"gin"``/``"multihead"``). A scorer object
            carries its own parameters; these are then only used by :meth:`embed_subgraph`.
            ``temperature`` and ``blend`` default to ``"auto"``: for the ``"attention"`` scorer
            they are chosen per graph at the first call from cheap statistics of a sample of
            the index's nodes (degree spread, feature homophily; the rule and its measurements:
            :mod:`ruvector_graph_attn.rerank.auto`, ``docs/quality.md``; the statistics are kept
            in ``auto_statistics``); ``"vote"`` gets ``VOTE_TEMPERATURE`` (0.1) and blend 1;
            every other alias gets ``DEFAULT_TEMPERATURE`` / ``DEFAULT_BLEND``. Numbers are used
            as given.
        direction: ``"both"`` (default: any edge counts as a neighbour), ``"out"`` or ``"in"``.
        max_neighbors: cap on each expanded node's neighbours (deterministic sample).
        ef: HNSW beam width for the candidate search (default: ``max(index.ef, candidates)``).
        seed: sampling seed for ``max_neighbors``.
        embedder: turns text queries into vectors, so every query argument may also be a
            string (or a list of strings for the batch methods): a callable
            ``list[str] -> [n, D]`` array, or an object with ``embed_query(text) -> list[float]``
            (neo4j-graphrag's and LangChain's embedder interface). Its output is checked
            (shape, finite, dimension).
        graph_candidates: candidates from the graph (``search``/``search_batch``/
            ``rerank_arrays``): the neighbours of each query's ``graph_candidates`` best vector
            hits that are not candidates yet join its candidate set, with their feature
            similarity to the query as vector score; filters apply to them too. 0: off.
            Default ``"auto"``: ``AUTO_GRAPH_CANDIDATES`` (5) for the ``"attention"`` scorer,
            the scorer's ``voters`` for a :class:`~ruvector_graph_attn.rerank.vote.VoteScorer`
            (so every node a voter reaches is scored), 0 for every other scorer (measurements:
            ``docs/quality.md``).
        graph_candidate_direction: which neighbours those are (``"out"``, ``"in"``, ``"both"``;
            default ``direction``).
        cache: an LRU cache of results (:mod:`ruvector_graph_attn.rerank.cache`): ``None``
            (default, no cache), ``True`` (4096 entries), a maximum number of entries, or a
            :class:`~ruvector_graph_attn.rerank.cache.ResultCache`. Keyed on the exact query
            bytes and every parameter that changes the answer; emptied when the index or the
            graph snapshot changes (their ``version``). See :meth:`cache_info`.
    """

    def __init__(self, index: Any, graph: Any, scorer: Any = "attention", hops: Optional[int] = None,
                 candidates: int = 100, temperature: Any = AUTO,
                 blend: Any = AUTO, direction: str = "both",
                 max_neighbors: Optional[int] = None, layer: Any = None, ef: Optional[int] = None,
                 seed: int = 0, curvature: float = 1.0, embedder: Any = None,
                 graph_candidates: Any = AUTO, graph_candidate_direction: Optional[str] = None,
                 cache: Any = None) -> None:
        if index is not None and (not hasattr(index, "search") or not callable(index.search)):
            raise InvalidInputError(f"index must have a search(queries, k) method, got {type(index).__name__}")
        if not isinstance(graph, GraphSource):
            raise InvalidInputError(
                f"graph must implement the GraphSource protocol (expand, features, contains, dim), "
                f"got {type(graph).__name__}")
        auto_t, auto_b = (isinstance(v, str) for v in (temperature, blend))
        for name, v in (("temperature", temperature), ("blend", blend)):
            if isinstance(v, str) and v != AUTO:
                raise ConfigError(f"{name} must be a number or {AUTO!r}, got {v!r}")
        # "auto": the attention alias gets per-graph values (rerank/auto.py) at the first call;
        # until then, and for every other scorer, the fixed values below
        self._auto = (auto_t, auto_b) if scorer == "attention" else (False, False)
        self._auto_state: Any = None
        #: the graph statistics the "auto" parameters were chosen from (None: not computed)
        self.auto_statistics: Optional[dict] = None
        if scorer == "attention":
            t0, b0 = auto_parameters(None)
        elif scorer == "vote":
            t0, b0 = VOTE_TEMPERATURE, 1.0
        else:
            t0, b0 = DEFAULT_TEMPERATURE, DEFAULT_BLEND
        self.temperature = self._check_float(t0 if auto_t else temperature, "temperature", lo=0.0, lo_open=True)
        self.blend = self._check_float(b0 if auto_b else blend, "blend", lo=0.0, hi=1.0)
        self.curvature = self._check_float(curvature, "curvature", lo=0.0, lo_open=True)
        self.scorer = resolve_scorer(scorer, layer=layer, temperature=self.temperature, blend=self.blend,
                                     curvature=self.curvature)
        #: the alias the scorer was built from, or the scorer's class name
        self.scorer_name = scorer if isinstance(scorer, str) else type(scorer).__name__
        self.index = index
        self.graph = graph
        self.layer = layer
        depth = int(self.scorer.hops_needed)
        self.hops = max(1, depth) if hops is None else check_hops(hops)
        if self.hops < depth:
            raise ConfigError(
                f"the {self.scorer_name!r} scorer has {depth} graph layers, so it reads {depth} hops around each "
                f"candidate; hops={self.hops} would make scores depend on the rest of the batch. "
                f"Use hops>={depth} (or leave hops unset)")
        self.candidates = check_positive_int(candidates, "candidates")
        check_size(self.candidates, DEFAULT_MAX_KEYS, "candidates")
        self.direction = check_direction(direction)
        if max_neighbors is not None:
            max_neighbors = check_positive_int(max_neighbors, "max_neighbors", allow_zero=True)
        self.max_neighbors = max_neighbors
        self.ef = None if ef is None else check_positive_int(ef, "ef")
        self.seed = check_int(seed, "seed", lo=0)
        self.space = getattr(index, "space", "cosine") if index is not None else "cosine"
        if embedder is not None and not (callable(embedder) or callable(getattr(embedder, "embed_query", None))):
            raise InvalidInputError(f"embedder must be a callable list[str] -> [n, D] array or have "
                                    f"embed_query(text), got {type(embedder).__name__}")
        self.embedder = embedder
        #: candidates from the graph: the neighbours (``graph_candidate_direction``, default
        #: ``direction``) of each query's ``graph_candidates`` best vector hits join its candidates,
        #: with their feature similarity as vector score (0: off)
        if isinstance(graph_candidates, str):
            if graph_candidates != AUTO:
                raise ConfigError(f"graph_candidates must be a non-negative integer or {AUTO!r}, "
                                  f"got {graph_candidates!r}")
            if scorer == "attention":
                graph_candidates = AUTO_GRAPH_CANDIDATES
            else:  # a vote scorer: every node its voters reach is a candidate
                graph_candidates = int(self.scorer.voters) if isinstance(self.scorer, VoteScorer) else 0
        self.graph_candidates = check_positive_int(graph_candidates, "graph_candidates", allow_zero=True)
        self.graph_candidate_direction = check_direction(graph_candidate_direction) \
            if graph_candidate_direction is not None else self.direction
        #: wall time (seconds) of each stage of the last call: index, expand, score, results
        self.last_timings: dict = {}
        self.cache = make_cache(cache)
        if self.space not in ("cosine", "ip", "l2"):
            raise InvalidInputError(f"index.space must be 'cosine', 'ip' or 'l2', got {self.space!r}")

    #: range check of a float parameter (the scorers' check)
    _check_float = staticmethod(_number)

    def __repr__(self) -> str:
        return (f"GraphReranker(scorer={self.scorer!r}, hops={self.hops}, candidates={self.candidates}, "
                f"direction={self.direction!r}, max_neighbors={self.max_neighbors})")

    # ------------------------------------------------------------------ queries
    @property
    def dim(self) -> Optional[int]:
        d = getattr(self.index, "dim", None) if self.index is not None else None
        if d is None:
            try:
                d = int(self.graph.dim)
            except Exception:  # an empty graph has no dimension yet
                d = None
        return d

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), D]`` query vectors from the ``embedder`` (checked: shape, finite, D)."""
        if self.embedder is None:
            raise InvalidInputError("text queries need an embedder: GraphReranker(..., embedder=...)")
        texts = list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidInputError("text queries must be a non-empty list of strings")
        try:
            if callable(getattr(self.embedder, "embed_query", None)):
                raw = [self.embedder.embed_query(t) for t in texts]
            else:
                raw = self.embedder(texts)
        except Exception as exc:  # noqa: BLE001 - reported as the library's error
            raise InvalidInputError(f"the embedder failed: {type(exc).__name__}: {exc}") from exc
        try:
            arr = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"the embedder must return numbers shaped [n, D]: {exc}") from exc
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            raise DimensionMismatchError((len(texts), "D"), arr.shape, "embedder output shape")
        if not np.isfinite(arr).all():
            raise InvalidInputError("the embedder returned NaN or Inf")
        dim = self.dim
        if dim is not None and arr.shape[1] != dim:
            raise DimensionMismatchError(dim, arr.shape[1], "embedder output dimension (index dim)")
        # dtype as for any query (validation.as_float_array): float64 kept, other numbers float32
        kind = np.asarray(raw).dtype
        return np.ascontiguousarray(arr.astype(np.float64 if kind == np.float64 else np.float32))

    def _resolve_auto(self) -> None:
        """Choose the ``"auto"`` temperature / blend from the graph's statistics (once; again
        when the index or the graph reports a new ``version``)."""
        auto_t, auto_b = self._auto
        if not (auto_t or auto_b):
            return
        versions = (id(self.index), getattr(self.index, "version", None), id(self.graph),
                    getattr(self.graph, "version", None))
        if self._auto_state is not None and (self._auto_state == versions or None in versions):
            return
        ids = None
        if self.index is not None and callable(getattr(self.index, "ids", None)):
            ids = self.index.ids()
        stats = None if ids is None else graph_statistics(self.graph, ids, self.direction, self.seed)
        t, b = auto_parameters(stats)
        if auto_t:
            self.temperature = self.scorer.temperature = t
        if auto_b:
            self.blend = self.scorer.blend = b
        self.auto_statistics = stats
        self._auto_state = versions

    def _query(self, q: Any) -> np.ndarray:
        if isinstance(q, str):
            return self.embed([q])[0]
        return as_float_array(q, "query", ndim=1)

    def _queries(self, Q: Any) -> np.ndarray:
        self._resolve_auto()
        if isinstance(Q, (list, tuple)) and Q and all(isinstance(t, str) for t in Q):
            Qa = self.embed(Q)
        elif isinstance(Q, str):
            raise InvalidInputError("queries must be [B, D] vectors or a list of strings, got one string "
                                    "(use search/rerank for a single query)")
        else:
            Qa = as_float_array(Q, "queries", ndim=2)
        dim = self.dim
        if dim is not None and Qa.shape[1] != dim:
            raise DimensionMismatchError(dim, Qa.shape[1], "query dimension (index dim)")
        check_size(Qa.shape[0], DEFAULT_MAX_KEYS, "number of queries")
        return Qa

    # ------------------------------------------------------------------ search
    def search(self, q: Any, k: int = 10, filter: Any = None) -> list[RankedNeighbour]:
        """The ``k`` best re-ranked hits for one query ``[D]`` (or a text, with an embedder).

        ``filter``: an allow-list of ids or a predicate ``id -> bool``, passed to the index;
        only allowed ids are returned.
        """
        qa = self._query(q)
        return self.search_batch(qa.reshape(1, -1), k, filter=filter)[0]

    def search_batch(self, Q: Any, k: int = 10, filter: Any = None) -> list[list[RankedNeighbour]]:
        """Re-ranked hits for queries ``[B, D]`` (or a list of texts): one index search, one graph
        expansion for the union of all candidates, one batched scoring pass."""
        Qa = self._queries(Q)
        k = check_positive_int(k, "k")
        filter = self._check_filter(filter)
        cached = None
        if self.cache is not None:
            fkey = self._filter_key(filter)
            cached = self._cache_lookup(True, None if fkey is None else [("search", array_key(q), k, fkey) for q in Qa],
                                        Qa.shape[0])
        if cached is None:
            ids, own, valid, t_index = self._candidates(Qa, k, filter)
            ids, own, valid = self._add_graph_candidates(Qa, ids, own, valid, filter)
            return self._run(Qa, ids, own, valid, k, t_index)
        state, keys, rows, miss = cached
        if miss:
            sub = Qa[miss]
            ids, own, valid, t_index = self._candidates(sub, k, filter)
            ids, own, valid = self._add_graph_candidates(sub, ids, own, valid, filter)
            self._cache_store(state, keys, rows, miss, self._run(sub, ids, own, valid, k, t_index))
        return rows

    def rerank(self, q: Any, candidate_ids: Sequence[Hashable], candidate_scores: Any = None,
               k: int = 10) -> list[RankedNeighbour]:
        """Re-rank candidates found by any retriever for one query ``[D]`` (or a text).

        Args:
            candidate_ids: distinct ids (integers or strings) of graph nodes.
            candidate_scores: the retriever's similarity of each candidate (larger is better,
                ideally in the index space); ``None``: computed from the graph features in the
                index space (``cos``, ``<q, x>`` or ``-||q - x||^2``).
            k: how many hits to return.

        Policy for ids the graph does not have: with ``candidate_scores`` they are kept with
        their score and flagged ``in_graph=False`` (as in :meth:`search`); without scores they
        raise :class:`~ruvector_graph_attn.UnknownIdError` (there is nothing to score them by).
        An empty list returns no hits.
        """
        qa = self._query(q)
        scores = None if candidate_scores is None else [candidate_scores]
        return self.rerank_batch(qa.reshape(1, -1), [candidate_ids], scores, k)[0]

    def rerank_batch(self, Q: Any, candidate_id_lists: Sequence[Sequence[Hashable]],
                     candidate_scores: Any = None, k: int = 10) -> list[list[RankedNeighbour]]:
        """:meth:`rerank` for queries ``[B, D]`` (or texts), one candidate list per query (lists
        may differ in length); ``candidate_scores`` one score list per query, or ``None``."""
        Qa = self._queries(Q)
        k = check_positive_int(k, "k")
        if isinstance(candidate_id_lists, (str, bytes)) or not hasattr(candidate_id_lists, "__len__"):
            raise InvalidInputError("candidate_id_lists must be a list of id lists, one per query")
        if len(candidate_id_lists) != Qa.shape[0]:
            raise DimensionMismatchError(Qa.shape[0], len(candidate_id_lists), "number of candidate lists (queries)")
        rows = [_as_id_row(r, f"candidate_ids[{b}]") for b, r in enumerate(candidate_id_lists)]
        B = len(rows)
        if candidate_scores is not None:
            if isinstance(candidate_scores, (str, bytes)) or not hasattr(candidate_scores, "__len__") \
                    or len(candidate_scores) != B:
                raise DimensionMismatchError(B, getattr(candidate_scores, "__len__", lambda: "?")(),
                                             "number of candidate score lists (queries)")
            candidate_scores = [self._score_row(s, r, b) for b, (r, s) in enumerate(zip(rows, candidate_scores))]
        if self.cache is not None:
            _id_matrix(rows)  # the same checks as an uncached call
            out = self._rerank_rows(Qa, rows, candidate_scores, k)
            if out is not None:
                return out
        return self._rerank_uncached(Qa, rows, candidate_scores, k)

    @staticmethod
    def _score_row(s: Any, r: list, b: int) -> np.ndarray:
        sa = as_float_array(s, f"candidate_scores[{b}]", ndim=1, dtype=np.float64, allow_empty=True)
        if sa.shape[0] != len(r):
            raise DimensionMismatchError(len(r), sa.shape[0], f"candidate_scores[{b}] length (its ids)")
        return sa

    def _rerank_uncached(self, Qa: np.ndarray, rows: list, candidate_scores: Optional[list], k: int):
        ids, valid = _id_matrix(rows)
        B, C = ids.shape
        own = np.full((B, C), -np.inf)
        if candidate_scores is not None:
            for b, (r, sa) in enumerate(zip(rows, candidate_scores)):
                own[b, :len(r)] = sa
        elif C:
            own[valid] = self._feature_scores(Qa, ids, valid)
        return self._run(Qa, ids, own, valid, k)

    def _rerank_rows(self, Qa: np.ndarray, rows: list, candidate_scores: Any, k: int):
        keys = [("rerank", array_key(q), k, tuple(r),
                 None if candidate_scores is None else array_key(np.asarray(candidate_scores[b], dtype=np.float64)))
                for b, (q, r) in enumerate(zip(Qa, rows))]
        cached = self._cache_lookup(False, keys)
        if cached is None:
            return None
        state, keys, got, miss = cached
        if miss:
            scores = None if candidate_scores is None else [candidate_scores[b] for b in miss]
            out = self._rerank_uncached(Qa[miss], [rows[b] for b in miss], scores, k)
            self._cache_store(state, keys, got, miss, out)
        return got

    # ------------------------------------------------------------------ result cache
    def cache_info(self):
        """Hits, misses, bypassed calls, hit rate and size of the result cache
        (:class:`~ruvector_graph_attn.rerank.cache.CacheInfo`; ``None`` without a cache)."""
        return None if self.cache is None else self.cache.info()

    def clear_cache(self) -> None:
        """Empty the result cache (and reset its counters)."""
        if self.cache is not None:
            self.cache.clear()

    def _cache_state(self, uses_index: bool) -> Any:
        """What every cached entry depends on besides its key; ``None``: untracked (bypass)."""
        gv = getattr(self.graph, "version", None)
        iv = getattr(self.index, "version", None) if uses_index else 0
        if gv is None or iv is None:
            return None
        return (id(self.graph), gv, id(self.index) if uses_index else None, iv)

    def _params_key(self, uses_index: bool) -> tuple:
        return (self.hops, self.candidates if uses_index else None, self.direction, self.max_neighbors, self.seed,
                self.ef if uses_index else None, getattr(self.index, "ef", None) if uses_index else None,
                self.graph_candidates if uses_index else None,
                self.graph_candidate_direction if uses_index else None,
                self.space, id(self.scorer), fingerprint(self.scorer))

    def _cache_lookup(self, uses_index: bool, keys: Optional[list], n: int = 0):
        """``(state, keys, rows, miss)`` with cached rows filled in and the positions to compute,
        or ``None`` when there is no cache or it cannot be used (``keys=None``: a predicate
        filter, ``n`` calls bypassed)."""
        cache = self.cache
        if cache is None:
            return None
        if keys is None:
            cache.note_bypass(n)
            return None
        state = self._cache_state(uses_index)
        if state is None:
            cache.note_bypass(len(keys))
            return None
        t0 = time.perf_counter()
        params = self._params_key(uses_index)
        keys = [(params,) + key for key in keys]
        rows = cache.get_many(state, keys)
        miss = [b for b, r in enumerate(rows) if r is None]
        if not miss:
            self.last_timings = {"index": 0.0, "expand": 0.0, "score": 0.0, "results": 0.0,
                                 "cache": time.perf_counter() - t0}
        return state, keys, rows, miss

    def _cache_store(self, state: Any, keys: list, rows: list, miss: list, computed: list) -> None:
        self.cache.put_many(state, [keys[b] for b in miss], computed)
        for b, r in zip(miss, computed):
            rows[b] = r

    def _feature_scores(self, Q: np.ndarray, ids: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Index-space similarity of each valid (query, candidate) from the graph features."""
        uniq, inverse = np.unique(ids[valid], return_inverse=True)
        present = np.asarray(self.graph.contains(uniq), dtype=bool)
        if not present.all():
            raise UnknownIdError([u.item() if hasattr(u, "item") else u for u in uniq[~present]],
                                 "graph (rerank without candidate_scores scores candidates by their graph features)")
        X = np.asarray(self.graph.features(uniq.tolist()))
        if X.ndim != 2 or X.shape[1] != Q.shape[1]:
            raise DimensionMismatchError(Q.shape[1], X.shape[-1], "graph feature dimension (query dimension)")
        return pair_similarity_rows(Q, X[inverse.reshape(-1)], np.nonzero(valid)[0], self.space)

    @staticmethod
    def _check_filter(filter: Any) -> Any:
        """``None``, a predicate, or the allow-list as a set."""
        if filter is None or callable(filter) or isinstance(filter, (set, frozenset)):
            return filter
        if isinstance(filter, (str, bytes)) or not hasattr(filter, "__iter__"):
            raise InvalidInputError(f"filter must be an allow-list of ids or a predicate id -> bool, "
                                    f"got {type(filter).__name__}")
        try:
            return set(filter.tolist() if isinstance(filter, np.ndarray) else filter)
        except TypeError as exc:
            raise InvalidInputError(f"filter: ids must be hashable (integers or strings): {exc}") from exc

    @staticmethod
    def _filter_key(filter: Any) -> Any:
        """Cache key part of a checked filter (``None`` for a predicate: not cacheable)."""
        if filter is None:
            return ("all",)
        if callable(filter):
            return None
        return ("allow", frozenset(filter))

    def _candidates(self, Q: np.ndarray, k: int, filter: Any = None):
        if self.index is None:
            raise InvalidInputError("this GraphReranker has no index: use rerank(q, candidate_ids) or pass index=")
        n_cand = max(self.candidates, k)
        ef = self.ef if self.ef is not None else max(int(getattr(self.index, "ef", n_cand)), n_cand)
        t0 = time.perf_counter()
        if filter is None:
            ids, dists = self.index.search(Q, n_cand, ef=ef)
        else:
            filter = self._check_filter(filter)
            ids, dists = self.index.search(Q, n_cand, ef=ef, filter=filter)
        ids = np.asarray(ids)
        dists = np.asarray(dists, dtype=np.float64)
        if ids.ndim == 1:
            ids, dists = ids.reshape(1, -1), dists.reshape(1, -1)
        if hasattr(self.index, "to_similarity"):
            own = np.asarray(self.index.to_similarity(dists), dtype=np.float64)
        else:
            own = (1.0 - dists) if self.space in ("cosine", "ip") else -dists
        valid = None
        if filter is not None and ids.size:
            # the result only ever holds allowed ids, whatever the index did with the filter
            ok = filter if callable(filter) else filter.__contains__
            flat = ids.reshape(-1).tolist()
            valid = np.fromiter((bool(ok(i)) for i in flat), dtype=bool, count=len(flat)).reshape(ids.shape)
            own = np.where(valid, own, -np.inf)
        return ids, own, valid, time.perf_counter() - t0

    def _add_graph_candidates(self, Q: np.ndarray, ids: np.ndarray, own: np.ndarray,
                              valid: Optional[np.ndarray], filter: Any = None):
        """Append the graph neighbours of each query's ``graph_candidates`` best vector hits
        (one expansion for the whole batch) that are not candidates yet; rows are padded and
        the padding marked invalid."""
        m = self.graph_candidates
        B, C = ids.shape
        if not m or C == 0:
            return ids, own, valid
        fast = _fastpath.graph_candidates(self, Q, ids, own, valid, filter)
        if fast is not None:  # the same candidates from the array snapshot (rerank/fastpath.py)
            return fast
        top = ids[:, :m]
        if valid is not None:
            top = [t[v] for t, v in zip(top, valid[:, :m])]
        else:
            top = list(top)
        seeds = np.unique(np.concatenate(top)) if any(len(t) for t in top) else ids[:0, 0]
        if seeds.size == 0:
            return ids, own, valid
        present = np.asarray(self.graph.contains(seeds), dtype=bool)
        seeds = seeds[present]
        if seeds.size == 0:
            return ids, own, valid
        sg = self.graph.expand(seeds, hops=1, direction=self.graph_candidate_direction,
                               max_neighbors=self.max_neighbors, seed=self.seed)
        # exact per-seed neighbour lists (not the edges other seeds of the batch brought in),
        # so a query's graph candidates do not depend on the rest of its batch
        a, b = traversed_pairs(sg, self.graph_candidate_direction)
        is_seed = np.zeros(sg.num_nodes, bool)
        is_seed[sg.seeds] = True
        keep = is_seed[a]
        a, b = a[keep], b[keep]
        order = np.argsort(a, kind="stable")
        a, b = a[order], b[order]
        ptr = np.searchsorted(a, np.arange(sg.num_nodes + 1))
        pos_of = dict(zip(seeds.tolist(), np.asarray(sg.seeds).tolist()))
        node_ids = sg.node_ids
        extra = []
        for row, tops in zip(ids, top):
            have = set(row.tolist())
            new = []
            for t in np.asarray(tops).tolist():
                p = pos_of.get(t)
                if p is None:
                    continue
                for j in b[ptr[p]:ptr[p + 1]].tolist():
                    nid = node_ids[j]
                    nid = nid.item() if hasattr(nid, "item") else nid
                    if nid not in have:
                        have.add(nid)
                        new.append(nid)
            extra.append(new)
        return self._append_candidates(Q, ids, own, valid, extra, filter, lambda pad, vext: self._feature_scores(Q, pad, vext))

    def _append_candidates(self, Q: np.ndarray, ids: np.ndarray, own: np.ndarray, valid: Optional[np.ndarray],
                           extra: list, filter: Any, scores: Any):
        """Append each row's new candidates ``extra[r]`` (distinct ids, none in the row yet)
        that pass ``filter`` and that the index holds (an id deleted from the index stays out
        of the results); ``scores(pad, vext)`` gives their vector scores. They follow the
        row's candidates in a batch-independent order -- by vector score, ties by id -- and
        their column is their reported ``vector_rank``; rows are padded, the padding marked
        invalid. Shared by the general and the snapshot (``rerank/fastpath.py``) paths."""
        B, C = ids.shape
        if filter is not None:
            ok = filter if callable(filter) else filter.__contains__
            extra = [[e for e in row if ok(e)] for row in extra]
        contains = getattr(self.index, "contains", None)
        if callable(contains) and any(len(e) for e in extra):
            flat = [e for row in extra for e in row]
            flags = dict(zip(flat, np.asarray(contains(flat), dtype=bool).tolist()))
            extra = [[e for e in row if flags[e]] for row in extra]
        E = max(len(e) for e in extra)
        if E == 0:
            return ids, own, valid
        pad = np.empty((B, E), dtype=ids.dtype)
        pad[:] = ids[:, :1]
        vext = np.zeros((B, E), bool)
        for r, e in enumerate(extra):
            if e:
                pad[r, :len(e)] = np.asarray(e, dtype=ids.dtype)
                vext[r, :len(e)] = True
        ext_own = np.full((B, E), -np.inf)
        ext_own[vext] = scores(pad, vext)
        for r, e in enumerate(extra):
            if len(e) > 1:
                try:
                    by_id = np.asarray(sorted(range(len(e)), key=e.__getitem__), dtype=np.int64)
                except TypeError:  # ids of mixed types: keep the expansion order
                    by_id = np.arange(len(e))
                o = by_id[np.argsort(-ext_own[r, by_id], kind="stable")]
                pad[r, :len(e)] = pad[r, o]
                ext_own[r, :len(e)] = ext_own[r, o]
        ids2 = np.concatenate([ids, pad], axis=1)
        valid2 = np.concatenate([np.ones((B, C), bool) if valid is None else valid, vext], axis=1)
        own2 = np.concatenate([own, ext_own], axis=1)
        return ids2, own2, valid2

    # ------------------------------------------------------------------ the shared flow
    def _run(self, Q: np.ndarray, ids: np.ndarray, own: np.ndarray, valid: Optional[np.ndarray], k: int,
             t_index: float = 0.0):
        ranked = self._rank(Q, ids, own, valid, k, t_index)
        t0 = time.perf_counter()
        out = self._results(*ranked, k=k)
        self.last_timings["results"] = time.perf_counter() - t0
        return out

    def _rank(self, Q: np.ndarray, ids: np.ndarray, own: np.ndarray, valid: Optional[np.ndarray], k: int,
              t_index: float = 0.0):
        """Scores of every candidate of every query; returns what _results needs.

        Wall time of each stage goes to ``self.last_timings`` (seconds): ``index`` (the
        candidate search, 0 for :meth:`rerank`), ``expand`` (graph expansion), ``score``
        (scoring and ordering).
        """
        t1 = time.perf_counter()
        timings = {"index": t_index, "expand": 0.0, "score": 0.0, "results": 0.0}
        self.last_timings = timings
        B, C = ids.shape
        if C == 0:
            return ids, own, own, np.zeros((B, 0), np.int64), None, valid
        fast = _fastpath.rank(self, Q, ids, own, valid, timings, t1)
        if fast is not None:  # the fused kernel on an array snapshot (rerank/fastpath.py)
            return fast
        flat = ids.reshape(-1)
        uniq, inverse = np.unique(flat, return_inverse=True)
        inverse = inverse.reshape(-1)
        scorer = self.scorer
        sg: Optional[Subgraph] = None
        if getattr(scorer, "uses_graph", True):
            sg = self.graph.expand(uniq, hops=self.hops, direction=self.direction,
                                   max_neighbors=self.max_neighbors, seed=self.seed)
            # map unique candidate -> seed position in the subgraph (-1: missing from the graph)
            seed_of = np.full(uniq.shape[0], -1, np.int64)
            if sg.missing:
                miss = set(sg.missing)
                present_u = np.fromiter((u not in miss for u in uniq.tolist()), dtype=bool, count=uniq.shape[0])
            else:
                present_u = np.ones(uniq.shape[0], dtype=bool)
            seed_of[present_u] = sg.seeds
        else:
            present_u = np.asarray(self.graph.contains(uniq), dtype=bool)
            seed_of = np.where(present_u, 0, -1).astype(np.int64)
        t2 = time.perf_counter()
        timings["expand"] = t2 - t1
        pair_seed = seed_of[inverse]                       # [B*C] seed position or -1
        present = pair_seed >= 0
        if valid is not None:
            present &= valid.reshape(-1)
        pair_index = np.cumsum(present) - 1               # flat pair -> present-pair index
        pair_index[~present] = -1
        own_flat = own.reshape(-1)
        cand = Candidates(
            ids=ids, vector_scores=own, present=present.reshape(B, C),
            pair_query=np.repeat(np.arange(B, dtype=np.int64), C)[present],
            pair_node=pair_seed[present], pair_vector_score=own_flat[present], pair_index=pair_index,
            space=self.space, direction=self.direction, hops=self.hops)
        if sg is not None and not present.any():
            res = Scores(own.astype(np.float64, copy=True), None, None)
        else:
            res = scorer.score(Q, cand, sg)
        score = self._checked_scores(res, own, present, B, C)
        context = None if res.context is None else np.asarray(res.context, dtype=np.float64)
        if context is not None and context.shape != (B, C):
            raise InvalidInputError(f"scorer {self.scorer_name!r} returned context of shape {context.shape}, "
                                    f"expected {(B, C)}")
        order = np.argsort(-score, axis=1, kind="stable")
        info = {"present": present.reshape(B, C), "explain": res.explanation, "context": context,
                "graph_used": sg is not None}
        timings["score"] = time.perf_counter() - t2
        return ids, own, score, order, info, valid

    def _checked_scores(self, res: Any, own: np.ndarray, present: np.ndarray, B: int, C: int) -> np.ndarray:
        if not isinstance(res, Scores):
            raise InvalidInputError(f"scorer {self.scorer_name!r} must return a Scores object, got {type(res).__name__}")
        score = np.asarray(res.scores, dtype=np.float64)
        if score.shape != (B, C):
            raise InvalidInputError(f"scorer {self.scorer_name!r} returned scores of shape {score.shape}, "
                                    f"expected {(B, C)}")
        flat = score.reshape(-1)
        if not np.isfinite(flat[present]).all():
            raise InvalidInputError(f"scorer {self.scorer_name!r} returned NaN or Inf scores")
        if not present.all():
            # candidates missing from the graph (and padding) keep their vector score
            flat = flat.copy()
            flat[~present] = own.reshape(-1)[~present]
            score = flat.reshape(B, C)
        return score

    # ------------------------------------------------------------------ results
    def _results(self, ids, own, score, order, info, valid, k: int) -> list[list[RankedNeighbour]]:
        B = ids.shape[0]
        if info is None:
            return [[] for _ in range(B)]
        if "fast" in info:  # a fused call (rerank/fastpath.py): the same hits from its arrays
            return _fastpath.results(ids, own, score, order, info, valid, k)
        present = info["present"]
        expl = info["explain"]
        context = info["context"]
        counts = np.full(B, ids.shape[1], np.int64) if valid is None else valid.sum(axis=1)
        out: list[list[RankedNeighbour]] = []
        # one conversion per row to Python scalars (the same values as per-element float()/item())
        for b in range(B):
            row = []
            top = order[b, :min(k, int(counts[b]))]
            id_row = ids[b, top].tolist()
            score_row = score[b, top].astype(np.float64, copy=False).tolist()
            own_row = own[b, top].astype(np.float64, copy=False).tolist()
            present_row = present[b, top].tolist()
            ctx_row = None if context is None else context[b, top].tolist()
            for r, c in enumerate(top.tolist()):
                att: dict = {}
                ctx = None
                if present_row[r]:
                    if expl is not None:
                        att = expl.weights(b, c)
                    if ctx_row is not None and not math.isnan(ctx_row[r]):
                        ctx = ctx_row[r]
                row.append(RankedNeighbour(
                    id=id_row[r], score=score_row[r], vector_score=own_row[r], rank=r,
                    attention=att, in_graph=present_row[r], vector_rank=c, context_score=ctx))
            out.append(row)
        return out

    def rerank_arrays(self, Q: Any, k: int = 10, filter: Any = None):
        """Array form of :meth:`search_batch`: ``(ids [B, k], scores [B, k])`` without
        building result objects (used by the benchmarks). With a ``filter`` that leaves fewer
        than ``k`` allowed candidates, the missing places hold scores of ``-inf``."""
        Qa = self._queries(Q)
        k = check_positive_int(k, "k")
        ids, own, valid, t_index = self._candidates(Qa, k, filter)
        ids, own, valid = self._add_graph_candidates(Qa, ids, own, valid, filter)
        ids, own, score, order, info, valid = self._rank(Qa, ids, own, valid, k, t_index)
        kk = min(k, order.shape[1])
        sel = order[:, :kk]
        return np.take_along_axis(ids, sel, 1), np.take_along_axis(score, sel, 1)

    # ------------------------------------------------------------------ embeddings
    def embed_subgraph(self, node_ids: Sequence[Hashable], method: str = "attention",
                       query: Any = None, hops: Optional[int] = None) -> np.ndarray:
        """One vector for the subgraph around ``node_ids`` (within ``hops``, default the
        reranker's).

        ``method``: ``"attention"`` -- ``a_j = softmax_j(sim(m, x_j) / T)``, ``sum_j a_j x_j``
        with ``m`` the ``query`` if given, else the mean feature of ``node_ids``;
        ``"mean"``, ``"sum"``, ``"max"`` -- plain readouts over the subgraph's nodes.
        Ids not in the graph raise :class:`UnknownIdError`.
        """
        if method not in ("attention", "mean", "sum", "max"):
            raise InvalidInputError(f"method must be 'attention', 'mean', 'sum' or 'max', got {method!r}")
        if isinstance(node_ids, (str, bytes)) or not hasattr(node_ids, "__len__") or (isinstance(node_ids, np.ndarray) and node_ids.ndim == 0):
            raise InvalidInputError("node_ids must be a sequence of node ids")
        if len(node_ids) == 0:
            raise InvalidInputError("node_ids is empty; expected at least one node id")
        self._resolve_auto()
        h = self.hops if hops is None else check_hops(hops)
        sg = self.graph.expand(node_ids, hops=h, direction=self.direction,
                               max_neighbors=self.max_neighbors, seed=self.seed)
        if sg.missing:
            raise UnknownIdError(sg.missing, "graph")
        X = sg.x
        if method == "mean":
            return X.mean(axis=0)
        if method == "sum":
            return X.sum(axis=0)
        if method == "max":
            return X.max(axis=0)
        if query is None:
            m = X[sg.seeds].mean(axis=0)
        else:
            m = as_float_array(query, "query", ndim=1)
            if m.shape[0] != X.shape[1]:
                raise DimensionMismatchError(X.shape[1], m.shape[0], "query dimension")
        dtype = np.result_type(m.dtype, X.dtype)
        m = m.astype(dtype)
        Xd = X.astype(dtype, copy=False)
        if self.space == "cosine":
            mn = m / max(float(np.linalg.norm(m)), 1e-12)
            sims = _unit_rows(Xd) @ mn
        elif self.space == "ip":
            sims = Xd @ m
        else:
            sims = -((Xd - m) ** 2).sum(axis=1)
        z = sims / self.temperature
        z = np.exp(z - z.max())
        a = z / z.sum()
        return (a[:, None] * Xd).sum(axis=0).astype(dtype)
