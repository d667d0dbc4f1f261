"""Training loops: node classification (full batch or sampled mini-batches), link prediction
(negative sampling, held-out edges, AUC / MRR) and re-ranker scorer training (InfoNCE).

Every trainer: deterministic for a ``seed`` (dropout masks, shuffling, sampling), early
stopping on a validation metric with ``patience`` (and the best weights restored), an
optional ``rich`` progress bar (``progress=False`` disables it), an optional LR scheduler
(stepped once per epoch) and gradient clipping, and a ``history`` list with one metrics
dict per epoch. The backward passes run with ``need_input_grad=False`` (when the model
supports it): the input features need no gradient, so the first layer skips computing it.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError, NotFittedError
from ..graph.dirgnn import reads_out_edges
from ..kernels.segment import csr_from_index, scatter_sum
from ..kernels.threads import serial_below
from ..nn.layers import run_backward
from ..nn.module import Module
from ..validation import as_float_array, as_index_array, check_edge_index, check_int
from .losses import binary_cross_entropy_with_logits, cross_entropy, info_nce
from .optim import LRScheduler, Optimizer, clip_grad_norm_
from .sampling import NeighborSampler, corrupt_tails, edge_keys, negative_pairs, split_edges

__all__ = ["NodeClassificationTrainer", "LinkPredictionTrainer", "RerankerTrainer", "roc_auc", "mrr",
           "graph_query_pairs", "mine_hard_negatives"]


# -- metrics -------------------------------------------------------------------------------
def roc_auc(pos_scores: Any, neg_scores: Any) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted one half)."""
    p = np.asarray(pos_scores, dtype=np.float64).ravel()
    n = np.asarray(neg_scores, dtype=np.float64).ravel()
    if p.size == 0 or n.size == 0:
        raise InvalidInputError("roc_auc needs at least one positive and one negative score")
    s = np.concatenate([p, n])
    uniq, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each value
    r = avg_rank[inv]
    return float((r[: p.size].sum() - p.size * (p.size + 1) / 2.0) / (p.size * n.size))


def mrr(pos_scores: Any, neg_scores: Any) -> float:
    """Mean reciprocal rank of each positive among its own negatives ``neg_scores[i, :]``
    (rank ``1 + #(neg > pos) + #(neg == pos) / 2``, the mean of optimistic and pessimistic)."""
    p = np.asarray(pos_scores, dtype=np.float64).ravel()
    n = np.asarray(neg_scores, dtype=np.float64)
    if n.ndim != 2 or n.shape[0] != p.size:
        raise DimensionMismatchError((p.size, "K"), n.shape, "negative scores shape")
    rank = 1.0 + (n > p[:, None]).sum(1) + 0.5 * (n == p[:, None]).sum(1)
    return float((1.0 / rank).mean())


def _scatter_rows(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """``out[index[k]] += values[k]`` on the Numba segment kernels."""
    indptr, perm = csr_from_index(np.ascontiguousarray(index, dtype=np.int64), n)
    return scatter_sum(np.ascontiguousarray(values), indptr, perm)


def _graph_depth(model: Any) -> int:
    """Number of message-passing layers in ``model`` (1 for a single graph layer): the hops a
    node's output depends on."""
    from ..graph.sequential import GraphSequential, is_graph_layer

    if isinstance(model, GraphSequential):
        return max(1, sum(_graph_depth(m) for m in model if is_graph_layer(m)))
    return 1


# -- shared machinery ----------------------------------------------------------------------
class _Progress:
    def __init__(self, enabled: bool, total: int, description: str):
        self.enabled = enabled
        self.total = total
        self.description = description
        self._p = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
            self._p.__enter__()
            self._task = self._p.add_task(self.description, total=self.total, info="")
        return self

    def update(self, info: str) -> None:
        if self._p is not None:
            self._p.update(self._task, advance=1, info=info)

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)


def _rows(mask: Any, n: int, name: str) -> np.ndarray:
    """Node indices from a boolean mask ``[n]`` or an index array."""
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        if m.shape != (n,):
            raise DimensionMismatchError((n,), m.shape, f"{name} shape")
        idx = np.flatnonzero(m)
    else:
        idx = as_index_array(m, name)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InvalidInputError(f"{name} indices must lie in 0..{n - 1}")
    if idx.size == 0:
        raise InvalidInputError(f"{name} selects no nodes")
    return idx.astype(np.int64)


class _BaseTrainer:
    _higher_is_better = {"val_acc": True, "val_loss": False, "val_auc": True, "val_mrr": True,
                         "val_recall": True, "loss": False}

    def __init__(self, model: Module, optimizer: Optimizer, max_epochs: int, patience: Optional[int],
                 monitor: str, scheduler: Optional[LRScheduler], clip_grad_norm: Optional[float], seed: int,
                 progress: bool, restore_best: bool):
        if not isinstance(model, Module):
            raise InvalidInputError(f"model must be a Module, got {type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise InvalidInputError(f"optimizer must be an Optimizer, got {type(optimizer).__name__}")
        check_int(max_epochs, "max_epochs", lo=1)
        if patience is not None:
            check_int(patience, "patience (or None)", lo=1)
        if monitor not in self._higher_is_better:
            raise InvalidInputError(f"monitor must be one of {sorted(self._higher_is_better)}, got {monitor!r}")
        self.model = model
        self.optimizer = optimizer
        self.max_epochs = int(max_epochs)
        self.patience = None if patience is None else int(patience)
        self.monitor = monitor
        self.scheduler = scheduler
        self.clip_grad_norm = clip_grad_norm
        self.seed = int(seed)
        self.progress = bool(progress)
        self.restore_best = bool(restore_best)
        self.history: list[dict[str, Any]] = []
        self.best_epoch: Optional[int] = None
        self.best_metric: Optional[float] = None

    def _seed_everything(self) -> None:
        from ..nn import layers as _layers

        _layers.seed(self.seed)
        self._rng = np.random.default_rng(self.seed)

    def _step(self) -> None:
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()

    def _loop(self, epoch_fn: Callable[[int], dict[str, Any]], description: str) -> list[dict[str, Any]]:
        """Run epochs with early stopping; ``epoch_fn(epoch)`` trains one epoch and returns metrics."""
        self.history = []
        self.best_epoch, self.best_metric = None, None
        best_state = None
        higher = self._higher_is_better[self.monitor]
        waited = 0
        with _Progress(self.progress, self.max_epochs, description) as bar:
            for epoch in range(1, self.max_epochs + 1):
                t0 = time.perf_counter()
                rec = epoch_fn(epoch)
                rec["lr"] = self.optimizer.lr
                if self.scheduler is not None:
                    self.scheduler.step()
                rec = {"epoch": epoch, **rec, "seconds": time.perf_counter() - t0}
                self.history.append(rec)
                value = rec.get(self.monitor)
                if value is not None and math.isfinite(value):
                    better = self.best_metric is None or (value > self.best_metric if higher else value < self.best_metric)
                    if better:
                        self.best_metric, self.best_epoch = float(value), epoch
                        waited = 0
                        if self.restore_best:
                            best_state = self.model.state_dict()
                    else:
                        waited += 1
                shown = ", ".join(f"{k}={v:.4f}" for k, v in rec.items()
                                  if k not in ("epoch", "seconds", "lr") and isinstance(v, float))
                bar.update(shown)
                if self.patience is not None and waited >= self.patience:
                    break
        if self.restore_best and best_state is not None:
            self.model.load_state_dict(best_state)
        return self.history


# -- node classification -------------------------------------------------------------------
class NodeClassificationTrainer(_BaseTrainer):
    """Train a model that maps ``(x, edge_index[, edge_attr])`` to class logits ``[N, C]``.

    Full batch by default. With ``batch_size`` and ``fanouts`` (one per graph layer, ``-1`` =
    all neighbours) each epoch iterates over shuffled batches of training nodes, samples their
    computation subgraph per layer (:class:`~ruvector_graph_attn.training.sampling.NeighborSampler`)
    and trains on the seed rows only; evaluation then runs batched on exact neighbourhoods
    (all neighbours for every layer), so it needs only the memory of a batch's subgraph.
    ``monitor`` is ``"val_acc"`` (default) or ``"val_loss"``; without a validation mask the
    training loss is monitored.
    """

    def __init__(self, model: Module, optimizer: Optimizer, max_epochs: int = 200, patience: Optional[int] = None,
                 monitor: str = "val_acc", loss_fn: Callable[..., Any] = cross_entropy,
                 scheduler: Optional[LRScheduler] = None, clip_grad_norm: Optional[float] = None,
                 batch_size: Optional[int] = None, fanouts: Optional[Sequence[int]] = None,
                 eval_batch_size: Optional[int] = None, seed: int = 0, progress: bool = True,
                 restore_best: bool = True, ewc: Any = None):
        super().__init__(model, optimizer, max_epochs, patience, monitor, scheduler, clip_grad_norm, seed,
                         progress, restore_best)
        if (batch_size is None) != (fanouts is None):
            raise InvalidInputError("mini-batch training needs both batch_size and fanouts (one per layer)")
        if batch_size is not None and int(batch_size) <= 0:
            raise InvalidInputError(f"batch_size must be > 0, got {batch_size}")
        self.loss_fn = loss_fn
        self.batch_size = None if batch_size is None else int(batch_size)
        self.fanouts = None if fanouts is None else [int(f) for f in fanouts]
        self.eval_batch_size = eval_batch_size if eval_batch_size is not None else self.batch_size
        self.ewc = ewc

    # validation of the graph inputs
    def _inputs(self, x: Any, edge_index: Any, edge_attr: Any):
        x = as_float_array(x, "x", ndim=2)
        ei = check_edge_index(edge_index, x.shape[0])
        ea = None
        if edge_attr is not None:
            ea = as_float_array(edge_attr, "edge_attr", ndim=(1, 2), dtype=x.dtype)
            if ea.shape[0] != ei.shape[1]:
                raise DimensionMismatchError(ei.shape[1], ea.shape[0], "edge_attr rows (must equal number of edges)")
        return x, ei, ea

    def _labels(self, y: Any, n: int) -> np.ndarray:
        yy = as_index_array(y, "y (class labels)", allow_empty=False)
        if yy.shape[0] != n:
            raise DimensionMismatchError(n, yy.shape[0], "number of labels (must equal number of nodes)")
        return yy

    def _forward(self, x, ei, ea):
        return self.model(x, ei) if ea is None else self.model(x, ei, ea)

    def fit(self, x: Any, edge_index: Any, y: Any, train_mask: Any, val_mask: Any = None,
            edge_attr: Any = None) -> list[dict[str, Any]]:
        """Train; returns the history (``epoch, loss, train_acc, val_loss, val_acc, lr, seconds``)."""
        x, ei, ea = self._inputs(x, edge_index, edge_attr)
        n = x.shape[0]
        y = self._labels(y, n)
        train_idx = _rows(train_mask, n, "train_mask")
        val_idx = None if val_mask is None else _rows(val_mask, n, "val_mask")
        if val_idx is None and self.monitor.startswith("val_"):
            self.monitor = "loss"
        self._seed_everything()
        sampler = None
        if self.batch_size is not None:
            sampler = NeighborSampler(ei, n, self.fanouts, seed=self.seed)

        def epoch_fn(epoch: int) -> dict[str, Any]:
            self.model.train()
            if sampler is None:
                self.model.zero_grad()
                out = self._forward(x, ei, ea)
                loss, g = self.loss_fn(out, y, mask=train_idx)
                run_backward(self.model, g, need_input_grad=False)
                if self.ewc is not None:
                    self.ewc.accumulate_grad()
                self._step()
                train_acc = float((out[train_idx].argmax(1) == y[train_idx]).mean())
            else:
                tot_loss, correct = 0.0, 0
                for sub in sampler.batches(train_idx, self.batch_size, shuffle=True, rng=self._rng):
                    self.model.zero_grad()
                    xs = x[sub.nodes]
                    es = None if ea is None else ea[sub.edge_ids]
                    out = self._forward(xs, sub.edge_index, es)
                    seeds = np.arange(sub.num_seeds)
                    ys = y[sub.nodes]
                    loss_b, g = self.loss_fn(out, ys, mask=seeds)
                    run_backward(self.model, g, need_input_grad=False)
                    if self.ewc is not None:
                        self.ewc.accumulate_grad()
                    self._step()
                    tot_loss += loss_b * sub.num_seeds
                    correct += int((out[: sub.num_seeds].argmax(1) == ys[: sub.num_seeds]).sum())
                loss = tot_loss / train_idx.size
                train_acc = correct / train_idx.size
            rec: dict[str, Any] = {"loss": float(loss), "train_acc": train_acc}
            if val_idx is not None:
                m = self._metrics(x, ei, ea, y, val_idx)
                rec["val_loss"], rec["val_acc"] = m["loss"], m["acc"]
            return rec

        return self._loop(epoch_fn, "train (node)")

    def predict(self, x: Any, edge_index: Any, edge_attr: Any = None, nodes: Any = None) -> np.ndarray:
        """Logits in eval mode for all nodes (or the given ``nodes``, in that order)."""
        x, ei, ea = self._inputs(x, edge_index, edge_attr)
        idx = None if nodes is None else _rows(nodes, x.shape[0], "nodes")
        return self._predict(x, ei, ea, idx)

    def _predict(self, x, ei, ea, idx):
        self.model.eval()
        if self.eval_batch_size is None or self.fanouts is None:
            out = self._forward(x, ei, ea)
            return out if idx is None else out[idx]
        targets = np.arange(x.shape[0]) if idx is None else idx
        exact = NeighborSampler(ei, x.shape[0], [-1] * len(self.fanouts), seed=self.seed)
        parts = []
        for start in range(0, targets.size, self.eval_batch_size):
            sub = exact.sample(targets[start:start + self.eval_batch_size])
            es = None if ea is None else ea[sub.edge_ids]
            parts.append(self._forward(x[sub.nodes], sub.edge_index, es)[: sub.num_seeds])
        return np.concatenate(parts, axis=0)

    def _metrics(self, x, ei, ea, y, idx) -> dict[str, float]:
        out = self._predict(x, ei, ea, idx)
        loss, _ = self.loss_fn(out, y[idx])
        return {"loss": float(loss), "acc": float((out.argmax(1) == y[idx]).mean())}

    def evaluate(self, x: Any, edge_index: Any, y: Any, mask: Any, edge_attr: Any = None) -> float:
        """Accuracy on the nodes selected by ``mask`` (eval mode)."""
        return self.metrics(x, edge_index, y, mask, edge_attr)["acc"]

    def metrics(self, x: Any, edge_index: Any, y: Any, mask: Any, edge_attr: Any = None) -> dict[str, float]:
        """``{"loss": ..., "acc": ...}`` on the nodes selected by ``mask``."""
        x, ei, ea = self._inputs(x, edge_index, edge_attr)
        yy = self._labels(y, x.shape[0])
        return self._metrics(x, ei, ea, yy, _rows(mask, x.shape[0], "mask"))


# -- link prediction -----------------------------------------------------------------------
class LinkPredictionTrainer(_BaseTrainer):
    """Train an encoder ``model(x, edge_index) -> z [N, D]`` with a dot-product decoder
    ``score(u, v) = <z_u, z_v>`` and binary cross-entropy against sampled negatives.

    :meth:`fit` holds out validation and test edges (or takes an :class:`EdgeSplit`), passes
    messages over the training edges only, draws ``neg_ratio`` fresh uniform negatives per
    positive each epoch, and reports validation AUC and MRR (each positive ranked against
    ``mrr_negatives`` corrupted tails, fixed for the run). Early stopping monitors
    ``val_auc`` by default.
    """

    def __init__(self, model: Module, optimizer: Optimizer, max_epochs: int = 100, patience: Optional[int] = None,
                 monitor: str = "val_auc", neg_ratio: float = 1.0, mrr_negatives: int = 50,
                 scheduler: Optional[LRScheduler] = None, clip_grad_norm: Optional[float] = None,
                 seed: int = 0, progress: bool = True, restore_best: bool = True):
        super().__init__(model, optimizer, max_epochs, patience, monitor, scheduler, clip_grad_norm, seed,
                         progress, restore_best)
        if not neg_ratio > 0:
            raise InvalidInputError(f"neg_ratio must be > 0, got {neg_ratio}")
        if int(mrr_negatives) <= 0:
            raise InvalidInputError(f"mrr_negatives must be > 0, got {mrr_negatives}")
        self.neg_ratio = float(neg_ratio)
        self.mrr_negatives = int(mrr_negatives)
        self.split = None
        self._ctx = None

    @staticmethod
    def _scores(z: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", z[pairs[0]], z[pairs[1]])

    def fit(self, x: Any, edge_index: Any, split: Any = None, val_ratio: float = 0.05, test_ratio: float = 0.1,
            undirected: bool = True) -> list[dict[str, Any]]:
        """Train; returns the history (``epoch, loss, val_auc, val_mrr, lr, seconds``)."""
        x = as_float_array(x, "x", ndim=2)
        n = x.shape[0]
        ei = check_edge_index(edge_index, n)
        if split is None:
            split = split_edges(ei, n, val_ratio, test_ratio, undirected=undirected, seed=self.seed)
        self.split = split
        self._seed_everything()
        train = split.train
        # supervision: each training pair once (the first half when both directions are stored)
        sup = train[:, : train.shape[1] // 2] if undirected else train
        known = np.concatenate([ei, ei[::-1]], axis=1) if undirected else ei
        keys = edge_keys(known, n)
        self._ctx = (x, train, keys)
        val_tails = None
        if split.val_pos.shape[1]:
            val_tails = corrupt_tails(n, split.val_pos[0], self.mrr_negatives, keys, seed=self.seed + 1)
        n_neg = max(1, int(round(sup.shape[1] * self.neg_ratio)))

        def epoch_fn(epoch: int) -> dict[str, Any]:
            self.model.train()
            self.model.zero_grad()
            z = self.model(x, train)
            neg = negative_pairs(n, n_neg, keys, seed=self.seed * 7_919 + epoch)
            pairs = np.concatenate([sup, neg], axis=1)
            target = np.concatenate([np.ones(sup.shape[1]), np.zeros(neg.shape[1])])
            s = self._scores(z, pairs)
            loss, g = binary_cross_entropy_with_logits(s, target)
            g = g.astype(z.dtype)
            gz = _scatter_rows(pairs[0], g[:, None] * z[pairs[1]], n) + _scatter_rows(pairs[1], g[:, None] * z[pairs[0]], n)
            run_backward(self.model, gz, need_input_grad=False)
            self._step()
            rec: dict[str, Any] = {"loss": float(loss)}
            if val_tails is not None:
                rec.update({f"val_{k}": v for k, v in self._eval(split.val_pos, split.val_neg, val_tails).items()})
            return rec

        return self._loop(epoch_fn, "train (link)")

    def _eval(self, pos: np.ndarray, neg: np.ndarray, tails: np.ndarray) -> dict[str, float]:
        x, train, _ = self._ctx
        self.model.eval()
        z = self.model(x, train)
        ps = self._scores(z, pos)
        out = {"auc": roc_auc(ps, self._scores(z, neg)) if neg.shape[1] else float("nan")}
        heads = np.repeat(pos[0], tails.shape[1])
        ns = self._scores(z, np.stack([heads, tails.ravel()])).reshape(tails.shape)
        out["mrr"] = mrr(ps, ns)
        return out

    def evaluate(self, which: str = "test") -> dict[str, float]:
        """``{"auc", "mrr"}`` on the held-out ``"test"`` (or ``"val"``) edges of the last fit."""
        if self._ctx is None or self.split is None:
            raise NotFittedError("LinkPredictionTrainer.evaluate needs a previous fit()")
        if which not in ("test", "val"):
            raise InvalidInputError(f"which must be 'test' or 'val', got {which!r}")
        pos = self.split.test_pos if which == "test" else self.split.val_pos
        neg = self.split.test_neg if which == "test" else self.split.val_neg
        if pos.shape[1] == 0:
            raise InvalidInputError(f"the split has no {which} edges")
        x, _, keys = self._ctx
        tails = corrupt_tails(x.shape[0], pos[0], self.mrr_negatives, keys, seed=self.seed + 2)
        return self._eval(pos, neg, tails)


# -- re-ranker scorer ----------------------------------------------------------------------
def graph_query_pairs(x: Any, edge_index: Any, num_pairs: int, noise: float = 0.1,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Query -> relevant-node pairs taken from the graph: for a random node ``v`` with at
    least one in-neighbour, the query is the mean feature of ``v``'s in-neighbours plus
    Gaussian noise (``noise`` times the feature standard deviation) and the relevant node is
    ``v``. A scorer trained on them learns to find a node from the context its graph gives."""
    xx = as_float_array(x, "x", ndim=2)
    n = xx.shape[0]
    ei = check_edge_index(edge_index, n)
    deg = np.bincount(ei[1], minlength=n)
    cand = np.flatnonzero(deg > 0)
    if cand.size == 0:
        raise InvalidInputError("graph_query_pairs needs nodes with in-neighbours")
    rng = np.random.default_rng(seed)
    pos = rng.choice(cand, size=int(num_pairs), replace=cand.size < num_pairs)
    summed = _scatter_rows(ei[1], xx[ei[0]], n)
    mean = summed / np.maximum(deg, 1)[:, None]
    q = mean[pos] + noise * xx.std() * rng.normal(size=(pos.size, xx.shape[1]))
    return np.ascontiguousarray(q, dtype=xx.dtype), pos.astype(np.int64)


def mine_hard_negatives(positives: Any, m: int, candidates: Any = None, index: Any = None, queries: Any = None,
                        query_ids: Any = None, search_k: Optional[int] = None) -> np.ndarray:
    """Hard negatives for :meth:`RerankerTrainer.fit`: for each (query, positive) pair, the first
    ``m`` of the query's candidates that are not relevant to it -- the items a re-ranker has to
    push down, as opposed to random nodes it separates anyway.

    Candidates come either from ``candidates`` (``[n_pairs, C]`` node indices per pair, best
    first, ``-1`` = padding; e.g. the HNSW hits the re-ranker will see, plus graph candidates)
    or from ``index`` (an index with ``search(queries, k)`` returning ``(labels, distances)``
    whose labels are the node indices; it is searched with ``queries`` for ``search_k``
    = ``m`` + 32 hits by default, each distinct query once). A candidate is excluded when it is
    a positive of any pair of the same query: pairs belong to the same query when their
    ``query_ids`` are equal, or (default) when their query vectors are identical. Returns
    ``[n_pairs, m]`` int64, ``-1`` where fewer than ``m`` candidates remain.
    """
    p = as_index_array(positives, "positives", allow_empty=False)
    m = check_int(m, "m", lo=1)
    if (candidates is None) == (index is None):
        raise InvalidInputError("mine_hard_negatives needs exactly one of candidates= or index=")

    def pair_queries(why: str) -> np.ndarray:
        if queries is None:
            raise InvalidInputError(f"mine_hard_negatives {why}")
        qa = as_float_array(queries, "queries", ndim=2)
        if qa.shape[0] != p.size:
            raise DimensionMismatchError(p.size, qa.shape[0], "number of queries (one per pair)")
        return qa

    if query_ids is None:
        qa = pair_queries("needs queries= or query_ids= to group pairs by query")
        _, first, gid = np.unique(np.ascontiguousarray(qa).view(np.dtype((np.void, qa.dtype.itemsize * qa.shape[1]))).ravel(),
                                  return_index=True, return_inverse=True)
    else:
        qid = np.asarray(query_ids).reshape(-1)
        if qid.size != p.size:
            raise DimensionMismatchError(p.size, qid.size, "number of query_ids (one per pair)")
        _, first, gid = np.unique(qid, return_index=True, return_inverse=True)
    gid = gid.reshape(-1)
    if candidates is not None:
        cand = np.asarray(candidates)
        if cand.ndim != 2 or cand.shape[0] != p.size:
            raise DimensionMismatchError((p.size, "C"), cand.shape, "candidates shape (one row per pair)")
        if cand.size and cand.dtype.kind not in "iu":
            raise InvalidInputError(f"candidates must hold integer node indices, got dtype {cand.dtype}")
        cand = cand.astype(np.int64)
        group_cand = cand[first]                     # one candidate row per query (its first pair's)
    else:
        qa = pair_queries("with index= needs the queries to search")
        k = int(search_k) if search_k is not None else m + 32
        labels, _ = index.search(qa[first], k=k)
        group_cand = np.asarray(labels, dtype=np.int64)
    # the positives of each query, as sorted keys gid * (max id + 2) + node
    span = np.int64(max(int(p.max()), int(group_cand.max(initial=0))) + 2)
    pos_keys = np.unique(gid.astype(np.int64) * span + p)
    g_rows = np.arange(group_cand.shape[0], dtype=np.int64)[:, None]
    keys = g_rows * span + group_cand
    is_pos = np.isin(keys, pos_keys) | (group_cand < 0)
    out = np.full((group_cand.shape[0], m), -1, dtype=np.int64)
    for g in range(group_cand.shape[0]):
        keep = group_cand[g][~is_pos[g]][:m]
        out[g, :keep.size] = keep
    return out[gid]


class RerankerTrainer(_BaseTrainer):
    """Fit the graph layer used by :class:`~ruvector_graph_attn.GraphReranker`'s layer scorers
    (``scorer="gat" | "sage" | "gin"``, passed as ``layer=``).

    The re-ranker scores a candidate by the similarity (cosine for a cosine index) between the
    query and the layer's output at the candidate. This trainer fits exactly that: for
    batches of (query, relevant node) pairs it runs ``H = layer(x, edge_index)``, and
    minimises InfoNCE between the query and ``H[relevant]`` against the other relevant nodes of
    the batch and ``num_negatives`` random nodes (cosine scores / ``temperature``). Validation
    reports MRR and recall@``k`` of the relevant node among all nodes. Pass the same
    ``edge_index`` the re-ranker's layer sees (for ``direction="both"`` both orientations).

    Each batch runs the layer only on the computation subgraph of the nodes it scores (the
    batch's positives and negatives), as mini-batch GNN training does: their ``L``-hop
    incoming neighbourhoods, ``L`` = the number of graph layers of the model
    (:class:`~ruvector_graph_attn.training.sampling.NeighborSampler`). With ``fanouts=None``
    every neighbour is kept, so the outputs at the scored nodes -- and the loss and the
    gradients -- equal the full-graph ones; ``fanouts=[f1, f2, ...]`` (one per layer, ``-1`` =
    all) samples at most ``f`` incoming edges per node and hop (cheaper on hubs, stochastic).
    ``full_graph=True`` runs the layer over the whole graph for every batch instead. A
    direction-aware layer (``reads_out_edges``, e.g.
    :class:`~ruvector_graph_attn.graph.DirGNNConv`) gets neighbourhoods sampled over both
    edge directions, with the edges in their stored orientation.

    Hard negatives (``fit(..., hard_negatives=)``, mined with :func:`mine_hard_negatives`
    from the candidates the re-ranker will see) are added per query to the random and
    in-batch ones. Each epoch runs with OpenBLAS on one thread (small products; idle BLAS
    workers busy-wait between them).
    """

    def __init__(self, layer: Module, optimizer: Optimizer, max_epochs: int = 50, patience: Optional[int] = None,
                 monitor: str = "val_mrr", temperature: float = 0.1, num_negatives: int = 64,
                 batch_size: int = 256, k: int = 10, scheduler: Optional[LRScheduler] = None,
                 clip_grad_norm: Optional[float] = None, seed: int = 0, progress: bool = True,
                 restore_best: bool = True, fanouts: Optional[Sequence[int]] = None, full_graph: bool = False):
        super().__init__(layer, optimizer, max_epochs, patience, monitor, scheduler, clip_grad_norm, seed,
                         progress, restore_best)
        self.full_graph = bool(full_graph)
        self.fanouts = None if fanouts is None else [int(f) for f in fanouts]
        if self.fanouts is not None and (not self.fanouts or any(f == 0 or f < -1 for f in self.fanouts)):
            raise InvalidInputError(f"fanouts must be a non-empty list of positive ints or -1 (all), got {list(fanouts)}")
        if not temperature > 0:
            raise InvalidInputError(f"temperature must be > 0, got {temperature}")
        if int(num_negatives) < 0 or int(batch_size) <= 0 or int(k) <= 0:
            raise InvalidInputError("num_negatives must be >= 0, batch_size and k > 0")
        self.temperature = float(temperature)
        self.num_negatives = int(num_negatives)
        self.batch_size = int(batch_size)
        self.k = int(k)

    def _pairs(self, queries: Any, positives: Any, n: int, d: int, name: str):
        q = as_float_array(queries, f"{name} queries", ndim=2)
        p = as_index_array(positives, f"{name} positives", allow_empty=False)
        if q.shape[0] != p.shape[0]:
            raise DimensionMismatchError(q.shape[0], p.shape[0], f"number of {name} positives")
        if p.min() < 0 or p.max() >= n:
            raise InvalidInputError(f"{name} positives must be node indices in 0..{n - 1}")
        return q, p

    def _embed(self, x, ei) -> np.ndarray:
        h = self.model(x, ei)
        if h.ndim != 2 or h.shape[0] != x.shape[0]:
            raise DimensionMismatchError((x.shape[0], "D"), h.shape, "layer output shape")
        return h

    def fit(self, x: Any, edge_index: Any, queries: Any, positives: Any, val_queries: Any = None,
            val_positives: Any = None, hard_negatives: Any = None) -> list[dict[str, Any]]:
        """Train; returns the history (``epoch, loss, val_mrr, val_recall, lr, seconds``).

        ``hard_negatives``: optional ``[n_pairs, m]`` node indices, the hard negatives of each
        pair (``-1`` = none), e.g. from :func:`mine_hard_negatives` (the top vector hits of the
        pair's query that are not among its relevant nodes). Each query is then scored against
        its positive, its own ``m`` hard negatives, the ``num_negatives`` random nodes shared by
        the batch and the other positives of the batch. An entry equal to the pair's own
        positive, or ``-1``, is replaced by a random node.
        """
        x = as_float_array(x, "x", ndim=2)
        n = x.shape[0]
        ei = check_edge_index(edge_index, n)
        q, p = self._pairs(queries, positives, n, x.shape[1], "training")
        hard = None
        if hard_negatives is not None:
            hard = np.asarray(hard_negatives)
            if hard.ndim != 2 or hard.shape[0] != p.shape[0]:
                raise DimensionMismatchError((p.shape[0], "m"), hard.shape, "hard_negatives shape (one row per pair)")
            if hard.size and hard.dtype.kind not in "iu":
                raise InvalidInputError(f"hard_negatives must hold integer node indices, got dtype {hard.dtype}")
            hard = hard.astype(np.int64)
            if hard.size and (hard.min() < -1 or hard.max() >= n):
                raise InvalidInputError(f"hard_negatives must be node indices in 0..{n - 1} (or -1 for none)")
            if hard.shape[1] == 0:
                hard = None
        val = None
        if val_queries is not None:
            val = self._pairs(val_queries, val_positives, n, x.shape[1], "validation")
        elif self.monitor.startswith("val_"):
            self.monitor = "loss"
        self._seed_everything()
        sampler = None
        directed = reads_out_edges(self.model)
        n_edges = ei.shape[1]
        if not self.full_graph:
            fanouts = self.fanouts if self.fanouts is not None else [-1] * _graph_depth(self.model)
            # a direction-aware layer reads out-neighbours too: sample over both orientations
            # and hand the layer each sampled edge in its stored orientation
            sample_ei = np.concatenate([ei, ei[::-1]], axis=1) if directed else ei
            sampler = NeighborSampler(sample_ei, n, fanouts, seed=self.seed)
        local = np.full(n, -1, dtype=np.int64)

        def batch_step(b: np.ndarray) -> float:
            self.model.zero_grad()
            negs = self._rng.integers(0, n, size=self.num_negatives) if self.num_negatives else None
            hb = None
            if hard is not None:
                hb = hard[b].copy()
                bad = (hb < 0) | (hb == p[b][:, None])
                if bad.any():
                    hb[bad] = self._rng.integers(0, n, size=int(bad.sum()))
            pos_rows, neg_rows, hard_rows = p[b], negs, hb
            if sampler is None:
                h = self._embed(x, ei)
                rows = n
            else:  # the layer on the scored nodes' computation subgraph only
                parts = [p[b]] + ([] if negs is None else [negs]) + ([] if hb is None else [hb.ravel()])
                scored = np.unique(np.concatenate(parts))
                sub = sampler.sample(scored)
                local[scored] = np.arange(scored.size)
                pos_rows = local[p[b]]
                neg_rows = None if negs is None else local[negs]
                hard_rows = None if hb is None else local[hb]
                local[scored] = -1
                sub_ei = sub.edge_index
                if directed:
                    flip = sub.edge_ids >= n_edges
                    sub_ei = np.where(flip[None, :], sub_ei[::-1], sub_ei)
                    # an edge sampled from both of its ends counts once (by its original id)
                    _, first = np.unique(sub.edge_ids % n_edges, return_index=True)
                    sub_ei = np.ascontiguousarray(sub_ei[:, np.sort(first)])
                h = self._embed(x[sub.nodes], sub_ei)
                rows = h.shape[0]
            if h.shape[1] != q.shape[1]:
                raise DimensionMismatchError(q.shape[1], h.shape[1], "layer output dimension (must equal query dimension)")
            if hard_rows is None:
                neg_h = None if negs is None else h[neg_rows]
            else:  # per-query negatives: own hard negatives, then the shared random ones
                per = hard_rows if neg_rows is None else \
                    np.concatenate([hard_rows, np.broadcast_to(neg_rows, (b.size, neg_rows.size))], axis=1)
                neg_h = h[per]
            loss, (_, gp, gn) = info_nce(q[b], h[pos_rows], neg_h, temperature=self.temperature,
                                         in_batch=True, normalize=True)
            gh = _scatter_rows(pos_rows, gp.astype(h.dtype), rows)
            if gn is not None:
                if hard_rows is None:
                    gh += _scatter_rows(neg_rows, gn.astype(h.dtype), rows)
                else:
                    gh += _scatter_rows(per.ravel(), gn.reshape(-1, gn.shape[-1]).astype(h.dtype), rows)
            run_backward(self.model, gh, need_input_grad=False)
            self._step()
            return float(loss)

        def epoch_fn(epoch: int) -> dict[str, Any]:
            self.model.train()
            order = self._rng.permutation(q.shape[0])
            total = 0.0
            # one BLAS thread for the whole epoch: every product here is small, and idle
            # OpenBLAS workers busy-wait between them (10x slower products on a busy 2-core
            # machine); the Numba kernels keep their own thread policy
            with serial_below(0, 0, single_blas=True):
                for start in range(0, order.size, self.batch_size):
                    b = order[start:start + self.batch_size]
                    total += batch_step(b) * b.size
            rec: dict[str, Any] = {"loss": total / q.shape[0]}
            if val is not None:
                m = self._rank_metrics(x, ei, *val)
                rec["val_mrr"], rec["val_recall"] = m["mrr"], m["recall"]
            return rec

        return self._loop(epoch_fn, "train (reranker)")

    def _rank_metrics(self, x, ei, q, p) -> dict[str, float]:
        self.model.eval()
        h = self._embed(x, ei).astype(np.float64)
        h /= np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
        qq = q.astype(np.float64)
        qq /= np.maximum(np.linalg.norm(qq, axis=1, keepdims=True), 1e-12)
        ranks = np.empty(q.shape[0])
        for start in range(0, q.shape[0], 256):
            s = qq[start:start + 256] @ h.T
            own = s[np.arange(s.shape[0]), p[start:start + 256]]
            ranks[start:start + 256] = 1.0 + (s > own[:, None]).sum(1)
        return {"mrr": float((1.0 / ranks).mean()), "recall": float((ranks <= self.k).mean())}

    def evaluate(self, x: Any, edge_index: Any, queries: Any, positives: Any) -> dict[str, float]:
        """``{"mrr", "recall"}`` (recall@k) of the relevant node among all nodes."""
        x = as_float_array(x, "x", ndim=2)
        ei = check_edge_index(edge_index, x.shape[0])
        q, p = self._pairs(queries, positives, x.shape[0], x.shape[1], "evaluation")
        return self._rank_metrics(x, ei, q, p)

    def to_reranker(self, index: Any, graph: Any, scorer: str, **kwargs: Any) -> Any:
        """A :class:`~ruvector_graph_attn.GraphReranker` that scores with the trained layer."""
        from ..rerank.pipeline import GraphReranker

        return GraphReranker(index=index, graph=graph, scorer=scorer, layer=self.model, **kwargs)
