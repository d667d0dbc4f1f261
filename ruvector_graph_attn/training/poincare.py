"""Poincaré embeddings of hierarchies (Nickel and Kiela, "Poincaré Embeddings for Learning
Hierarchical Representations", NeurIPS 2017).

Input: the transitive closure of a hierarchy as pairs ``(u, v)`` ("u is a v": ``v`` is an
ancestor of ``u``). Every node gets a point in the open unit ball (curvature -1). Training
minimises, over the closure pairs, the softmax loss of the paper's equation (6):
``L = -sum_{(u, v)} log( e^{-d(u, v)} / sum_{v' in N(u) + {v}} e^{-d(u, v')} )`` where ``N(u)``
are ``negatives`` nodes drawn uniformly among the nodes not related to ``u`` in the closure;
with Riemannian SGD ``theta <- proj(theta - lr (1 - |theta|^2)^2 / 4 * grad_E)`` (equation 5 with
the inverse Poincaré metric), one update per pair, after an initial burn-in of
``burn_in_epochs`` at ``lr * burn_in_factor`` (section 3.1: the paper uses 10 epochs at
``lr / 10``). Points start uniform in ``[-init, init]^dim`` (``init = 0.001`` in the paper).

Reconstruction (section 4.1): for each observed pair ``(u, v)`` the rank of ``d(u, v)`` among the
distances from ``u`` to the nodes ``v'`` with ``(u, v')`` not observed (rank 1 = closest);
**mean rank** averages over all observed pairs, **MAP** averages, over nodes with at least one
observed pair, the average precision of ``u``'s observed partners in the ranking of every other
node by distance.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import InvalidInputError, NotFittedError
from ..validation import check_positive_int

__all__ = ["PoincareEmbedding", "transitive_closure", "reconstruction_metrics"]


def transitive_closure(edges: Any, num_nodes: Optional[int] = None) -> np.ndarray:
    """All pairs ``(u, a)`` with ``a`` reachable from ``u`` along ``edges`` (``[2, E]`` or ``[E, 2]``
    child -> parent), ``u != a``; ``[P, 2]`` int64 sorted by ``(u, a)``."""
    e = np.asarray(edges, dtype=np.int64)
    if e.ndim != 2 or 2 not in e.shape:
        raise InvalidInputError(f"edges must be [2, E] or [E, 2], got shape {e.shape}")
    if e.shape[0] == 2 and e.shape[1] != 2:
        e = e.T
    n = int(e.max()) + 1 if num_nodes is None and e.size else int(num_nodes or 0)
    if e.size and (e.min() < 0 or e.max() >= n):
        raise InvalidInputError(f"edge endpoints must be in 0..{n - 1}")
    order = np.argsort(e[:, 0], kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(e[:, 0], minlength=n), out=indptr[1:])
    parents = e[order, 1]
    out = []
    for u in range(n):
        seen = set()
        stack = list(parents[indptr[u]:indptr[u + 1]])
        while stack:
            a = int(stack.pop())
            if a in seen or a == u:
                continue
            seen.add(a)
            stack.extend(parents[indptr[a]:indptr[a + 1]].tolist())
        out.extend((u, a) for a in sorted(seen))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def _check_pairs(pairs: Any, n: int) -> np.ndarray:
    p = np.ascontiguousarray(np.asarray(pairs, dtype=np.int64))
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0:
        raise InvalidInputError(f"pairs must be a non-empty [P, 2] integer array, got shape {p.shape}")
    if p.min() < 0 or p.max() >= n:
        raise InvalidInputError(f"pair endpoints must be node indices in 0..{n - 1}")
    if (p[:, 0] == p[:, 1]).any():
        raise InvalidInputError("pairs must not contain self-pairs (u, u)")
    return p


def reconstruction_metrics(theta: Any, pairs: Any) -> dict:
    """``{"mean_rank", "map"}`` of the embedding ``theta [N, dim]`` on the observed ``pairs``
    (see the module docstring)."""
    from ..kernels.poincare_embed import reconstruction_ranks

    th = np.ascontiguousarray(np.asarray(theta, dtype=np.float64))
    if th.ndim != 2 or not np.isfinite(th).all():
        raise InvalidInputError("theta must be a finite [N, dim] array")
    if (np.einsum("ij,ij->i", th, th) >= 1.0).any():
        raise InvalidInputError("theta has points outside the open unit ball")
    p = np.unique(_check_pairs(pairs, th.shape[0]), axis=0)
    indptr = np.zeros(th.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(p[:, 0], minlength=th.shape[0]), out=indptr[1:])
    ranks, ap, has = reconstruction_ranks(th, indptr, np.ascontiguousarray(p[:, 1]))
    return {"mean_rank": float(ranks.mean()), "map": float(ap[has].mean())}


@dataclass
class PoincareEmbedding:
    """Trainer of Poincaré embeddings (see the module docstring).

    Args:
        num_nodes: number of nodes ``N`` (pairs index ``0..N-1``).
        dim: dimension of the ball.
        lr: learning rate of the Riemannian SGD (per pair).
        negatives: negative samples per pair.
        burn_in_epochs, burn_in_factor: the burn-in phase (learning rate ``lr * burn_in_factor``).
        init: half-width of the uniform initialisation.
        seed: makes initialisation, pair order and negatives reproducible.
    """

    num_nodes: int
    dim: int = 5
    lr: float = 1.0
    negatives: int = 10
    burn_in_epochs: int = 10
    burn_in_factor: float = 0.1
    init: float = 1e-3
    seed: int = 0
    theta: Optional[np.ndarray] = None
    history: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.num_nodes = check_positive_int(self.num_nodes, "num_nodes")
        self.dim = check_positive_int(self.dim, "dim")
        self.negatives = check_positive_int(self.negatives, "negatives")
        self.burn_in_epochs = check_positive_int(self.burn_in_epochs, "burn_in_epochs", allow_zero=True)
        for name in ("lr", "burn_in_factor", "init"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise InvalidInputError(f"{name} must be a positive finite number, got {v!r}")
        if self.init >= 1.0 / np.sqrt(self.dim):
            raise InvalidInputError("init must keep the initial points inside the unit ball")
        rng = np.random.default_rng(self.seed)
        self.theta = rng.uniform(-self.init, self.init, (self.num_nodes, self.dim))

    def fit(self, pairs: Any, epochs: int = 100, progress: bool = False) -> "PoincareEmbedding":
        """Train on the closure ``pairs [P, 2]`` for ``epochs`` epochs (burn-in included);
        appends ``{"epoch", "loss", "lr", "seconds"}`` to ``history``."""
        from ..kernels.poincare_embed import poincare_epoch

        epochs = check_positive_int(epochs, "epochs")
        p = _check_pairs(pairs, self.num_nodes)
        keys = np.unique(p[:, 0] * np.int64(self.num_nodes) + p[:, 1])
        rng = np.random.default_rng(self.seed + 1)
        start = len(self.history)
        for e in range(start, start + epochs):
            lr = self.lr * (self.burn_in_factor if e < self.burn_in_epochs else 1.0)
            t0 = time.perf_counter()
            order = rng.permutation(p.shape[0])
            loss = poincare_epoch(self.theta, p, order, keys, self.negatives, lr, int(rng.integers(2**31 - 1)))
            self.history.append({"epoch": e, "loss": float(loss), "lr": lr, "seconds": time.perf_counter() - t0})
            if progress and (e % 50 == 0 or e == start + epochs - 1):
                print(f"epoch {e}: loss {loss:.4f} (lr {lr})", flush=True)
        return self

    def distances(self, u: Any, v: Any) -> np.ndarray:
        """Poincaré distances between the rows ``u`` and ``v`` (index arrays of equal length)."""
        if self.theta is None:
            raise NotFittedError("the embedding has no positions")
        a = self.theta[np.asarray(u, dtype=np.int64)]
        b = self.theta[np.asarray(v, dtype=np.int64)]
        sq = ((a - b) ** 2).sum(-1)
        g = 1.0 + 2.0 * sq / ((1.0 - (a * a).sum(-1)) * (1.0 - (b * b).sum(-1)))
        return np.arccosh(np.maximum(g, 1.0))

    def evaluate(self, pairs: Any) -> dict:
        """Reconstruction mean rank and MAP on ``pairs`` (normally the training closure)."""
        return reconstruction_metrics(self.theta, pairs)
