"""Elastic Weight Consolidation (Kirkpatrick et al., 2017) with a diagonal Fisher.

After a task, :meth:`EWC.estimate_fisher` runs the user's backward function on batches
(single samples give the classical empirical Fisher) and averages the squared gradients;
:meth:`EWC.consolidate` stores that Fisher with a copy of the current parameters
``theta*``. While training the next task, :meth:`EWC.penalty` returns
``lambda / 2 * sum_i F_i (theta_i - theta*_i)^2`` (summed over consolidated tasks) and
:meth:`EWC.accumulate_grad` adds its gradient ``lambda * F_i (theta_i - theta*_i)`` into
each ``Parameter.grad``. With ``online=True`` (online EWC, Schwarz et al., 2018) one running
Fisher ``F = gamma * F_old + F_new`` anchored at the latest parameters is kept instead.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import InvalidInputError, NotFittedError
from ..nn.module import Module, Parameter

__all__ = ["EWC"]


class EWC:
    """Diagonal-Fisher EWC penalty over a model's (or a list of) parameters."""

    def __init__(self, model: Module | Iterable[tuple[str, Parameter]], lam: float = 1.0,
                 online: bool = False, gamma: float = 1.0):
        if isinstance(model, Module):
            named = list(model.named_parameters())
        else:
            named = list(model)
            if named and isinstance(named[0], Parameter):
                named = [(str(i), p) for i, p in enumerate(named)]
        if not named:
            raise InvalidInputError("EWC needs at least one parameter")
        lam = float(lam)
        if not (lam >= 0 and math.isfinite(lam)):
            raise InvalidInputError(f"lam must be a finite number >= 0, got {lam}")
        if not 0.0 <= gamma <= 1.0:
            raise InvalidInputError(f"gamma must be in [0, 1], got {gamma}")
        self.named = named
        self.lam = lam
        self.online = bool(online)
        self.gamma = float(gamma)
        #: one entry per consolidated task (a single running entry when online): (fisher, theta*)
        self.tasks: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    # -- Fisher ----------------------------------------------------------------------------
    def estimate_fisher(self, backward_fn: Callable[[Any], Any], batches: Iterable[Any]) -> dict[str, np.ndarray]:
        """Mean of squared gradients over ``batches``.

        ``backward_fn(batch)`` must run the forward pass and the loss for ``batch`` and call
        ``model.backward(grad)``, leaving the gradients in ``Parameter.grad`` (gradients are
        zeroed before each batch). Returns ``{name: F}`` with the parameters' shapes.
        """
        fisher = {name: np.zeros_like(p.data, dtype=np.float64) for name, p in self.named}
        n = 0
        for batch in batches:
            for _, p in self.named:
                p.zero_grad()
            backward_fn(batch)
            for name, p in self.named:
                if p.grad is not None:
                    fisher[name] += np.asarray(p.grad, dtype=np.float64) ** 2
            n += 1
        if n == 0:
            raise InvalidInputError("estimate_fisher got no batches")
        for _, p in self.named:
            p.zero_grad()
        return {k: (v / n).astype(dict(self.named)[k].data.dtype) for k, v in fisher.items()}

    def consolidate(self, fisher: dict[str, np.ndarray]) -> None:
        """Anchor the current parameters with ``fisher`` (from :meth:`estimate_fisher`)."""
        params = dict(self.named)
        missing = [k for k in params if k not in fisher]
        if missing:
            raise InvalidInputError(f"fisher lacks entries for parameters {missing}")
        f = {}
        for k, p in params.items():
            arr = np.asarray(fisher[k])
            if arr.shape != p.data.shape:
                raise InvalidInputError(f"fisher['{k}'] has shape {arr.shape}, expected {p.data.shape}")
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise InvalidInputError(f"fisher['{k}'] must be finite and non-negative")
            f[k] = arr.astype(p.data.dtype)
        star = {k: p.data.copy() for k, p in params.items()}
        if self.online and self.tasks:
            old_f, _ = self.tasks[0]
            self.tasks = [({k: self.gamma * old_f[k] + f[k] for k in f}, star)]
        else:
            self.tasks.append((f, star))

    # -- penalty ---------------------------------------------------------------------------
    def _check(self) -> None:
        if not self.tasks:
            raise NotFittedError("EWC has no consolidated task; call consolidate(estimate_fisher(...)) first")

    def penalty(self) -> float:
        """``lam / 2 * sum_tasks sum_i F_i (theta_i - theta*_i)^2``."""
        self._check()
        total = 0.0
        for f, star in self.tasks:
            for name, p in self.named:
                d = p.data.astype(np.float64) - star[name]
                total += float((f[name] * d * d).sum())
        return 0.5 * self.lam * total

    def penalty_grad(self) -> dict[str, np.ndarray]:
        """``{name: lam * sum_tasks F_i (theta_i - theta*_i)}``."""
        self._check()
        out = {name: np.zeros_like(p.data) for name, p in self.named}
        for f, star in self.tasks:
            for name, p in self.named:
                out[name] += self.lam * f[name] * (p.data - star[name])
        return out

    def accumulate_grad(self) -> float:
        """Add the penalty gradient into each ``Parameter.grad``; returns the penalty value."""
        grads = self.penalty_grad()
        for name, p in self.named:
            p.accumulate(grads[name])
        return self.penalty()
