"""Training the query map of a neighbour-vote re-ranker (:class:`VoteTrainer`)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..graph.utils import check_edge_index
from ..kernels.csr import csr_of_pairs
from ..rerank.scorers import _unit_rows, pair_similarity_rows
from ..rerank.vote import VoteScorer, vote_scores, vote_terms
from ..validation import as_float_array, check_float, check_int
from .optim import LRScheduler, Optimizer
from .trainers import _BaseTrainer

__all__ = ["VoteTrainer", "VoteCandidates"]

_SPACES = ("cosine", "ip", "l2")


def _similarity(U: np.ndarray, X: np.ndarray, space: str, x_unit: bool = False,
                xsq: Optional[np.ndarray] = None) -> np.ndarray:
    """``[B, N]`` index-space similarity of every row of ``U`` with every row of ``X``
    (``x_unit``: ``X`` already has unit rows; ``xsq``: its squared row norms, for ``"l2"``)."""
    if space == "cosine":
        U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
        if not x_unit:
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    S = U @ X.T
    if space == "l2":
        if xsq is None:
            xsq = np.einsum("ij,ij->i", X, X)
        S = 2.0 * S - np.einsum("ij,ij->i", U, U)[:, None] - xsq[None, :]
    return S


class VoteCandidates:
    """The candidate sets of a batch of queries as the re-ranker builds them, in node rows:
    the ``candidates`` best vector hits, plus every node the query's ``voters`` best hits reach
    (``direction``), minus the query's own node; with the vote's terms (:func:`vote_terms`) and
    each query's relevant pairs. Built once per :meth:`VoteTrainer.fit` (retrieval does not
    depend on the query map).

    Attributes: ``pair_ptr [Q+1]`` (query ``i`` owns pairs ``pair_ptr[i]:pair_ptr[i+1]``),
    ``pair_node``, ``pair_score`` (vector score), ``positive`` (bool per pair), ``term_ptr [Q+1]``,
    ``target``, ``source`` (global pair numbers), ``n_relevant [Q]`` (relevant items in all,
    found or not).
    """

    def __init__(self, x: np.ndarray, indptr: np.ndarray, indices: np.ndarray, queries: np.ndarray,
                 relevant: Sequence[np.ndarray], query_nodes: Optional[np.ndarray], n_candidates: int, voters: int,
                 space: str, index: Any = None, chunk: int = 256) -> None:
        n = x.shape[0]
        Q = queries.shape[0]
        nodes = []
        xd = xsq = None
        if index is None:           # exact search: the features converted (and normalised) once
            xd = x.astype(np.float64)
            if space == "cosine":
                xd = xd / np.maximum(np.linalg.norm(xd, axis=1, keepdims=True), 1e-12)
            elif space == "l2":
                xsq = np.einsum("ij,ij->i", xd, xd)
        for s0 in range(0, Q, chunk):
            qb = queries[s0:s0 + chunk]
            if index is None:
                S = _similarity(qb.astype(np.float64), xd, space, x_unit=True, xsq=xsq)
                k = min(n_candidates + 1, n)
                top = np.argpartition(-S, k - 1, axis=1)[:, :k]
                top = np.take_along_axis(top, np.argsort(-np.take_along_axis(S, top, 1), axis=1, kind="stable"), 1)
            else:
                lab, _ = index.search(qb, k=min(n_candidates + 1, n))
                top = np.asarray(lab, dtype=np.int64)
                if top.size and (top.min() < 0 or top.max() >= n):
                    raise InvalidInputError(f"index labels must be node rows in 0..{n - 1}")
            for r in range(qb.shape[0]):
                i = s0 + r
                hits = top[r]
                if query_nodes is not None:
                    hits = hits[hits != query_nodes[i]]
                hits = hits[:n_candidates]
                hv = [indices[indptr[h]:indptr[h + 1]] for h in hits[:voters].tolist()]
                extra = np.unique(np.concatenate(hv)) if hv else np.zeros(0, np.int64)
                extra = extra[~np.isin(extra, hits)]
                if query_nodes is not None:
                    extra = extra[extra != query_nodes[i]]
                nodes.append(np.concatenate([hits, extra]).astype(np.int64))
        sizes = np.array([r.size for r in nodes], np.int64)
        self.pair_ptr = np.zeros(Q + 1, np.int64)
        np.cumsum(sizes, out=self.pair_ptr[1:])
        self.pair_node = np.concatenate(nodes) if nodes else np.zeros(0, np.int64)
        pq = np.repeat(np.arange(Q, dtype=np.int64), sizes)
        self.pair_score = pair_similarity_rows(queries, x[self.pair_node], pq, space)
        self.pair_query = pq
        self.positive = np.zeros(self.pair_node.shape[0], bool)
        self.n_relevant = np.array([len(r) for r in relevant], np.int64)
        for i, r in enumerate(relevant):
            lo, hi = self.pair_ptr[i], self.pair_ptr[i + 1]
            self.positive[lo:hi] = np.isin(self.pair_node[lo:hi], r)
        self.target, self.source = vote_terms(pq, self.pair_node, self.pair_score, voters, indptr, indices, n)
        self.term_ptr = np.searchsorted(pq[self.target], np.arange(Q + 1)).astype(np.int64)

    @property
    def num_queries(self) -> int:
        return int(self.pair_ptr.shape[0] - 1)


class VoteTrainer(_BaseTrainer):
    """Fit the query map ``W`` of a :class:`~ruvector_graph_attn.rerank.vote.VoteScorer`
    (``scorer.query_map``, an ``nn.Linear``; start it at :func:`~ruvector_graph_attn.rerank.vote.identity_query_map`,
    the untrained vote) on (query, relevant nodes) examples.

    For each query the trainer builds the candidate set the re-ranker will see -- the
    ``candidates`` best vector hits (from ``index``, or exact search over ``x``) plus every node
    that the query's ``voters`` best hits reach along ``direction`` -- and minimises the listwise
    softmax cross-entropy of the vote scores ``score / temperature`` over that whole set, averaged
    over the query's relevant candidates (every other candidate is a hard negative: it is what
    the re-ranker has to push down). Queries none of whose relevant nodes is a candidate are
    skipped (``history[i]["queries_used"]``). Gradients are exact (closed form through the
    log-sum-exp and the similarity). Validation (``val_queries`` / ``val_relevant``) reports MRR
    and recall@``k`` of the re-ranked candidate sets (``val_mrr``, ``val_recall``).

    Pass the graph the re-ranker will use, minus the edges that give the training answers away:
    for (package description, its dependencies) examples, the training packages' own
    dependency edges (``query_nodes`` drops each query's own node from its candidates).
    """

    def __init__(self, scorer: VoteScorer, optimizer: Optimizer, max_epochs: int = 4, patience: Optional[int] = None,
                 monitor: str = "loss", temperature: float = 0.05, batch_size: int = 64, candidates: int = 100,
                 direction: str = "out", space: str = "cosine", k: int = 10, scheduler: Optional[LRScheduler] = None,
                 clip_grad_norm: Optional[float] = None, seed: int = 0, progress: bool = True,
                 restore_best: bool = True) -> None:
        from ..connectors.base import check_direction

        if not isinstance(scorer, VoteScorer):
            raise InvalidInputError(f"scorer must be a VoteScorer, got {type(scorer).__name__}")
        if scorer.query_map is None:
            raise InvalidInputError("scorer.query_map is None: give the scorer a map to train, e.g. "
                                    "VoteScorer(query_map=identity_query_map(dim))")
        super().__init__(scorer.query_map, optimizer, max_epochs, patience, monitor, scheduler, clip_grad_norm,
                         seed, progress, restore_best)
        self.scorer = scorer
        self.temperature = check_float(temperature, "temperature", lo=0.0, lo_open=True)
        self.batch_size = check_int(batch_size, "batch_size", lo=1)
        self.candidates = check_int(candidates, "candidates", lo=1)
        self.direction = check_direction(direction)
        if space not in _SPACES:
            raise InvalidInputError(f"space must be one of {', '.join(_SPACES)}, got {space!r}")
        self.space = space
        self.k = check_int(k, "k", lo=1)

    # -------------------------------------------------------------------- inputs
    def _adjacency(self, ei: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """CSR of "``a`` reaches ``b``" along ``direction``."""
        if self.direction == "out":
            a, b = ei[0], ei[1]
        elif self.direction == "in":
            a, b = ei[1], ei[0]
        else:
            a, b = np.concatenate([ei[0], ei[1]]), np.concatenate([ei[1], ei[0]])
        indptr, indices, _ = csr_of_pairs(np.ascontiguousarray(a, np.int64), np.ascontiguousarray(b, np.int64), n)
        return indptr, indices

    def _examples(self, x, queries, relevant, query_nodes, what: str):
        n = x.shape[0]
        q = as_float_array(queries, f"{what} queries", ndim=2)
        if q.shape[0] == 0:
            raise InvalidInputError(f"{what} queries are empty")
        if q.shape[1] != self.model.in_features:
            raise DimensionMismatchError(self.model.in_features, q.shape[1], f"{what} query dimension (query_map input)")
        if isinstance(relevant, np.ndarray) and relevant.ndim == 1 and relevant.dtype != object:
            relevant = [relevant[i:i + 1] for i in range(relevant.shape[0])]
        try:
            rel = [np.asarray(r, dtype=np.int64).reshape(-1) for r in relevant]
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{what} relevant must be one sequence of node rows per query: {exc}") from None
        if len(rel) != q.shape[0]:
            raise DimensionMismatchError(q.shape[0], len(rel), f"number of {what} relevant lists (one per query)")
        for r in rel:
            if r.size == 0:
                raise InvalidInputError(f"every {what} query needs at least one relevant node")
            if r.min() < 0 or r.max() >= n:
                raise InvalidInputError(f"{what} relevant nodes must be node rows in 0..{n - 1}")
        qn = None
        if query_nodes is not None:
            qn = np.asarray(query_nodes)
            if qn.shape != (q.shape[0],) or qn.dtype.kind not in "iu":
                raise InvalidInputError(f"{what} query_nodes must be one integer node row per query (-1: none)")
            qn = qn.astype(np.int64)
            if qn.min() < -1 or qn.max() >= n:
                raise InvalidInputError(f"{what} query_nodes must be node rows in 0..{n - 1} or -1")
        return q, rel, qn

    # -------------------------------------------------------------------- forward / backward
    def _batch(self, x: np.ndarray, q: np.ndarray, vc: VoteCandidates, qs: np.ndarray, train: bool):
        """Scores of the candidate pairs of queries ``qs`` (and, when ``train``, the loss and
        the gradients accumulated into the query map)."""
        qs = qs[vc.pair_ptr[qs + 1] > vc.pair_ptr[qs]]          # (a query with no candidate scores nothing)
        if qs.size == 0:
            return (np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), qs) if not train else (0.0, 0)
        pr = np.concatenate([np.arange(vc.pair_ptr[i], vc.pair_ptr[i + 1]) for i in qs.tolist()])
        tr = np.concatenate([np.arange(vc.term_ptr[i], vc.term_ptr[i + 1]) for i in qs.tolist()])
        # global pair numbers -> positions in this batch (terms never cross queries)
        lookup = np.full(vc.pair_node.shape[0], -1, np.int64)
        lookup[pr] = np.arange(pr.size)
        tgt, src = lookup[vc.target[tr]], lookup[vc.source[tr]]
        bq = np.repeat(np.arange(qs.size, dtype=np.int64), vc.pair_ptr[qs + 1] - vc.pair_ptr[qs])
        lin = self.model
        U = lin(q[qs]).astype(np.float64)                        # [b, D'] (stores the input for backward)
        X = x[vc.pair_node[pr]].astype(np.float64)
        if self.space == "cosine":
            un = np.maximum(np.linalg.norm(U, axis=1), 1e-12)
            Uh = U / un[:, None]
            Xh = _unit_rows(X)
            sim = np.einsum("ij,ij->i", Uh[bq], Xh)
        elif self.space == "ip":
            sim = np.einsum("ij,ij->i", U[bq], X)
        else:
            d = U[bq] - X
            sim = -np.einsum("ij,ij->i", d, d)
        s, _, share = vote_scores(sim, tgt, src, self.scorer.temperature)
        blend = self.scorer.blend
        total = (1.0 - blend) * vc.pair_score[pr] + blend * s
        if not train:
            return total, bq, pr, qs
        z = total / self.temperature
        starts = np.r_[0, np.cumsum(vc.pair_ptr[qs + 1] - vc.pair_ptr[qs])[:-1]]
        zmax = np.maximum.reduceat(z, starts)[bq]
        e = np.exp(z - zmax)
        den = np.add.reduceat(e, starts)[bq]
        p = e / den
        pos = vc.positive[pr]
        npos = np.add.reduceat(pos.astype(np.float64), starts)
        used = npos > 0
        nu = int(used.sum())
        if nu == 0:
            return 0.0, 0
        logp = (z - zmax) - np.log(den)
        loss = -float(np.sum(np.where(pos, logp, 0.0) / np.maximum(npos, 1.0)[bq])) / nu
        g = np.where(used[bq], p - pos / np.maximum(npos, 1.0)[bq], 0.0) / (self.temperature * nu)   # dL/dtotal
        gs = blend * g                                                                              # dL/ds
        gsim = np.bincount(src, gs[tgt] * share, minlength=pr.size)                                 # dL/dsim
        if self.space == "cosine":
            gx = (Xh - sim[:, None] * Uh[bq]) / un[bq][:, None]
        elif self.space == "ip":
            gx = X
        else:
            gx = -2.0 * (U[bq] - X)
        GU = np.zeros_like(U)
        np.add.at(GU, bq, gsim[:, None] * gx)
        lin.zero_grad()
        lin.backward(GU.astype(lin.weight.data.dtype), need_input_grad=False)
        self._step()
        return loss, nu

    def _metrics(self, x, q, vc: VoteCandidates) -> dict[str, float]:
        self.model.eval()
        mrr, rec = [], []
        for s0 in range(0, vc.num_queries, 512):
            total, bq, pr, qs = self._batch(x, q, vc, np.arange(s0, min(s0 + 512, vc.num_queries)), train=False)
            mrr.extend([0.0] * (min(s0 + 512, vc.num_queries) - s0 - qs.size))    # queries without candidates
            rec.extend([0.0] * (min(s0 + 512, vc.num_queries) - s0 - qs.size))
            for j, i in enumerate(qs.tolist()):
                m = bq == j
                order = np.argsort(-total[m], kind="stable")
                hit = vc.positive[pr[m]][order]
                first = np.flatnonzero(hit)
                mrr.append(1.0 / (first[0] + 1) if first.size else 0.0)
                rec.append(hit[: self.k].sum() / vc.n_relevant[i])
        return {"mrr": float(np.mean(mrr)), "recall": float(np.mean(rec))}

    def fit(self, x: Any, edge_index: Any, queries: Any, relevant: Any, query_nodes: Any = None, index: Any = None,
            val_queries: Any = None, val_relevant: Any = None, val_query_nodes: Any = None) -> list[dict[str, Any]]:
        """Train; returns the history (``epoch, loss, queries_used, [val_mrr, val_recall,] lr,
        seconds``).

        Args:
            x: ``[N, D']`` node features (rows = node numbers).
            edge_index: ``[2, E]`` the graph the re-ranker will use (stored orientation).
            queries: ``[Q, D]`` query vectors.
            relevant: one sequence of relevant node rows per query (or ``[Q]`` ints, one each).
            query_nodes: optional ``[Q]`` node row of each query's own item (``-1``: none),
                left out of its candidates.
            index: optional index whose ``search(queries, k)`` labels are node rows (the
                candidates the re-ranker will see); default exact search over ``x``.
        """
        x = as_float_array(x, "x", ndim=2)
        n = x.shape[0]
        if x.shape[1] != self.model.out_features:
            raise DimensionMismatchError(self.model.out_features, x.shape[1], "feature dimension (query_map output)")
        ei = check_edge_index(edge_index, n)
        q, rel, qn = self._examples(x, queries, relevant, query_nodes, "training")
        indptr, indices = self._adjacency(ei, n)
        voters = self.scorer.voters
        vc = VoteCandidates(x, indptr, indices, q, rel, qn, self.candidates, voters, self.space, index)
        val = None
        if val_queries is not None:
            vq, vrel, vqn = self._examples(x, val_queries, val_relevant, val_query_nodes, "validation")
            val = (vq, VoteCandidates(x, indptr, indices, vq, vrel, vqn, self.candidates, voters, self.space, index))
        elif self.monitor.startswith("val_"):
            self.monitor = "loss"
        self._seed_everything()

        def epoch_fn(epoch: int) -> dict[str, Any]:
            self.model.train()
            order = self._rng.permutation(vc.num_queries)
            total, used = 0.0, 0
            for s0 in range(0, order.size, self.batch_size):
                loss, nu = self._batch(x, q, vc, np.sort(order[s0:s0 + self.batch_size]), train=True)
                total += loss * nu
                used += nu
            rec: dict[str, Any] = {"loss": total / max(used, 1), "queries_used": used}
            if val is not None:
                m = self._metrics(x, val[0], val[1])
                rec["val_mrr"], rec["val_recall"] = m["mrr"], m["recall"]
            return rec

        return self._loop(epoch_fn, "train (vote query map)")
