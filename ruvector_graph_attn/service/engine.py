"""What the service serves: an index, a graph source, optional trained layers, and the
re-rankers built from them. Every endpoint is a thin call into the same library functions an
in-process caller uses (``GraphReranker.search``/``search_batch``/``rerank``/``embed_subgraph``,
``graph.traverse``); this module only checks the service's limits and turns results into
JSON-ready dicts."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..errors import InputTooLargeError, InvalidInputError
from ..rerank.results import _plain
from ..rerank.pipeline import SCORERS, GraphReranker

__all__ = ["Limits", "Engine"]

_PARAMS = ("scorer", "hops", "candidates", "temperature", "blend", "direction", "max_neighbors")
#: aliases that need a trained layer / loaded module (``layers[name]``)
_LAYER_SCORERS = ("gat", "sage", "gin", "multihead")


@dataclass(frozen=True)
class Limits:
    """Per-request limits; anything larger is refused with :class:`InputTooLargeError` (413).

    Attributes:
        max_batch: query vectors in one ``/search`` request.
        max_ids: ids in one request (rerank candidates, filter, embed ids, traversal starts).
        max_k: hits per query.
        max_steps: traversal steps.
    """

    max_batch: int = 256
    max_ids: int = 10_000
    max_k: int = 1_000
    max_steps: int = 8


def _check_limit(actual: int, limit: int, what: str) -> None:
    if actual > limit:
        raise InputTooLargeError(limit, actual, what)


class Engine:
    """The service's state and its operations (usable without HTTP, e.g. in tests).

    Args:
        index: an :class:`~ruvector_graph_attn.HNSWIndex`.
        graph: a graph source (``NetworkXGraph`` or ``Neo4jGraph``).
        scorer: the default scorer.
        layers: scorer name -> trained layer (for the layer scorers, e.g. ``{"gat": layer}``).
        hops, candidates, temperature, blend, direction, max_neighbors: defaults of the
            re-ranker; a request may override each.
        limits: :class:`Limits`.
    """

    def __init__(self, index: Any, graph: Any, scorer: str = "attention", layers: Optional[dict] = None,
                 hops: Optional[int] = None, candidates: int = 100, temperature: Any = "auto",
                 blend: Any = "auto", direction: str = "both", max_neighbors: Optional[int] = None,
                 limits: Limits = Limits(), max_cached: int = 64):
        self.index = index
        self.graph = graph
        self.layers = dict(layers or {})
        self.limits = limits
        self.defaults = {"scorer": scorer, "hops": hops, "candidates": candidates, "temperature": temperature,
                         "blend": blend, "direction": direction, "max_neighbors": max_neighbors}
        self._cache: "OrderedDict[tuple, GraphReranker]" = OrderedDict()
        self._max_cached = int(max_cached)
        self._lock = threading.Lock()
        self.default = self.reranker(None)   # validates the defaults now (typed errors at start-up)

    # ------------------------------------------------------------------ re-rankers
    @property
    def dim(self) -> int:
        return int(self.index.dim)

    def scorers(self) -> list[str]:
        """Scorer names this server can run (layer scorers only with a loaded layer)."""
        return [s for s in SCORERS if s not in _LAYER_SCORERS or s in self.layers]

    def reranker(self, params: Any) -> GraphReranker:
        """The re-ranker for a request's scorer parameters (the defaults where a field is
        ``None``); built once per distinct parameter set and cached."""
        kw = dict(self.defaults)
        if params is not None:
            for name in _PARAMS:
                v = getattr(params, name, None)
                if v is not None:
                    kw[name] = v
        key = tuple(kw[n] for n in _PARAMS)
        with self._lock:
            rr = self._cache.get(key)
            if rr is not None:
                self._cache.move_to_end(key)
                return rr
        scorer = kw.pop("scorer")
        rr = GraphReranker(self.index, self.graph, scorer=scorer, layer=self.layers.get(scorer), **kw)
        with self._lock:
            self._cache[key] = rr
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return rr

    # ------------------------------------------------------------------ endpoints
    def _check_k(self, k: int) -> None:
        _check_limit(k, self.limits.max_k, "k")

    def search(self, req: Any) -> dict:
        """``/search``: ``{"results": [[hit, ...] per query]}``."""
        if (req.vector is None) == (req.vectors is None):
            raise InvalidInputError("give exactly one of 'vector' (one query) or 'vectors' (a batch)")
        self._check_k(req.k)
        kw = {}
        if req.filter is not None:
            _check_limit(len(req.filter), self.limits.max_ids, "number of filter ids")
            kw["filter"] = req.filter
        rr = self.reranker(req)
        if req.vector is not None:
            rows = [rr.search(req.vector, req.k, **kw)]
        else:
            _check_limit(len(req.vectors), self.limits.max_batch, "number of query vectors")
            if not req.vectors:
                raise InvalidInputError("vectors is empty; expected at least one query vector")
            rows = rr.search_batch(req.vectors, req.k, **kw)
        return {"results": [[h.to_dict() for h in hits] for hits in rows]}

    def vectors(self, req: Any) -> dict:
        """``/vectors``: the index's stored vectors of ``ids`` (unknown ids: UnknownIdError)."""
        if not req.ids:
            raise InvalidInputError("ids is empty; expected at least one index id")
        _check_limit(len(req.ids), self.limits.max_ids, "number of ids")
        vecs = np.asarray(self.index.get(req.ids), dtype=np.float64)
        return {"vectors": vecs.tolist(), "dim": int(vecs.shape[1])}

    def rerank(self, req: Any) -> dict:
        """``/rerank``: ``{"results": [hit, ...]}`` for candidates from another retriever."""
        self._check_k(req.k)
        _check_limit(len(req.ids), self.limits.max_ids, "number of candidate ids")
        if req.scores is not None and len(req.scores) != len(req.ids):
            from ..errors import DimensionMismatchError
            raise DimensionMismatchError(len(req.ids), len(req.scores), "number of scores (must equal number of ids)")
        rr = self.reranker(req)
        hits = rr.rerank(req.vector, req.ids, candidate_scores=req.scores, k=req.k)
        return {"results": [h.to_dict() for h in hits]}

    def embed(self, req: Any) -> dict:
        """``/embed``: ``{"vector": [...], "dim": D}``."""
        _check_limit(len(req.ids), self.limits.max_ids, "number of ids")
        vec = self.default.embed_subgraph(req.ids, method=req.method, query=req.query, hops=req.hops)
        return {"vector": [float(v) for v in vec.tolist()], "dim": int(vec.shape[0])}

    def traverse(self, req: Any) -> dict:
        """``/traverse``: ``{"paths": [{nodes, weights, score, rank}, ...]}``."""
        _check_limit(len(req.start_ids), self.limits.max_ids, "number of start ids")
        _check_limit(len(req.steps), self.limits.max_steps, "number of traversal steps")
        fn = getattr(self.graph, "traverse", None)
        if fn is None:
            raise InvalidInputError(f"the graph source {type(self.graph).__name__} cannot traverse")
        steps = [s.model_dump() for s in req.steps]
        paths = fn(req.start_ids, steps, query=req.query, temperature=req.temperature,
                   allow_revisit=req.allow_revisit)
        return {"paths": [{"nodes": [_plain(n) for n in p.nodes], "weights": [float(w) for w in p.weights],
                           "score": float(p.score), "rank": int(p.rank)} for p in paths]}

    def health(self) -> dict:
        from .. import __version__

        return {"status": "ok", "version": __version__, "dim": self.dim, "index_size": len(self.index),
                "graph": type(self.graph).__name__, "scorers": self.scorers(),
                "default_scorer": self.defaults["scorer"]}

    def warm_up(self) -> None:
        """Run one search per available scorer so kernels are compiled before the first request."""
        import numpy as np

        if len(self.index) == 0:
            return
        q = np.asarray(self.index.get([self.index.ids()[0]])[0], dtype=np.float32)
        for s in self.scorers():
            try:
                rr = self.default if s == self.defaults["scorer"] else self.reranker(_Scorer(s))
                rr.search(q, 1)
            except Exception:  # noqa: BLE001 - warm-up is best effort; real requests report errors
                pass

    def close(self) -> None:
        close = getattr(self.graph, "close", None)
        if callable(close):
            close()


class _Scorer:
    def __init__(self, scorer: str):
        self.scorer = scorer
