"""Central finite-difference gradient checks (float64) shared by the nn / graph layer tests."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-8)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def numeric_grad(f: Callable[[], float], arr: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d arr by central differences; ``arr`` is perturbed in place and restored."""
    g = np.zeros_like(arr, dtype=np.float64)
    flat = arr.reshape(-1)
    gf = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gf[i] = (fp - fm) / (2 * h)
    return g


def check_module_grads(module, inputs: Sequence[np.ndarray], run: Callable[..., np.ndarray],
                       backward: Callable[[np.ndarray], object], rng: np.random.Generator,
                       tol: float = 1e-6, input_idx: Sequence[int] | None = None) -> dict[str, float]:
    """Check d(sum(out * R))/d(inputs) and /d(parameters) against finite differences.

    ``run(*inputs)`` returns the output; ``backward(R)`` returns the input gradient(s)
    (a single array or a tuple aligned with ``input_idx``). Returns the errors by name.
    """
    out = np.asarray(run(*inputs))
    R = rng.standard_normal(out.shape)

    def loss() -> float:
        return float((np.asarray(run(*inputs)) * R).sum())

    module.zero_grad()
    run(*inputs)
    grads = backward(R)
    if not isinstance(grads, tuple):
        grads = (grads,)
    idx = list(range(len(grads))) if input_idx is None else list(input_idx)
    errs: dict[str, float] = {}
    for k, gi in zip(idx, grads):
        num = numeric_grad(loss, inputs[k])
        errs[f"input{k}"] = rel_err(gi, num)
    analytic = {name: (None if p.grad is None else p.grad.copy()) for name, p in module.named_parameters()}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        num = numeric_grad(loss, p.data)
        a = analytic[name]
        assert a is not None, f"no gradient accumulated for {name}"
        errs[name] = rel_err(a, num)
    bad = {k: v for k, v in errs.items() if not v < tol}
    assert not bad, f"gradient check failed: {bad}"
    return errs
