"""Optimizers, gradient clipping and learning-rate schedules (PyTorch's update equations).

``SGD``, ``Adam`` and ``AdamW`` reproduce ``torch.optim`` step for step (same defaults,
same order of operations, bias correction, optional AMSGrad, Nesterov momentum,
dampening, coupled vs decoupled weight decay). ``RiemannianSGD`` / ``RiemannianAdam``
reproduce geoopt's optimizers for parameters whose ``.manifold`` is set (the Poincaré
ball: Euclidean gradient rescaled by ``(1 - c|x|^2)^2 / 4``, retraction ``proj(x + u)``
or the exponential map, momentum moved by parallel transport); parameters without a
manifold are updated as Euclidean ones.

Parameters are :class:`~ruvector_graph_attn.nn.module.Parameter` objects (``.data``,
``.grad``); parameters whose ``grad`` is ``None`` are skipped, as in torch. Groups work as
in torch: pass dicts ``{"params": [...], "lr": ..., "weight_decay": ...}``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..nn.module import Module, Parameter

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RiemannianSGD", "RiemannianAdam", "clip_grad_norm_",
    "LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "LinearWarmup",
]


def _check_nonneg(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad`` and ``lr``."""

    def __init__(self, params: Any, defaults: dict[str, Any]):
        if isinstance(params, Module):
            params = params.parameters()
        if isinstance(params, Parameter):
            raise InvalidInputError("params must be an iterable of Parameters (or of group dicts), got one Parameter")
        items = list(params)
        if not items:
            raise InvalidInputError("optimizer got an empty parameter list")
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        seen: set[int] = set()
        for g in groups:
            if not isinstance(g, dict) or "params" not in g:
                raise InvalidInputError("parameter groups must be dicts with a 'params' entry")
            plist = list(g["params"]) if not isinstance(g["params"], Parameter) else [g["params"]]
            for p in plist:
                if not isinstance(p, Parameter):
                    raise InvalidInputError(f"optimizer params must be Parameter objects, got {type(p).__name__}")
                if id(p) in seen:
                    raise InvalidInputError("some parameters appear in more than one parameter group")
                seen.add(id(p))
            unknown = set(g) - set(defaults) - {"params", "initial_lr"}
            if unknown:
                raise InvalidInputError(f"unknown option(s) in parameter group: {sorted(unknown)}")
            group = {**self.defaults, **{k: v for k, v in g.items() if k != "params"}, "params": plist}
            self._check_group(group)
            self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_nonneg("lr", group["lr"])
        _check_nonneg("weight_decay", group.get("weight_decay", 0.0))

    # torch-like conveniences ----------------------------------------------------------
    @property
    def lr(self) -> float:
        return float(self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        v = _check_nonneg("lr", value)
        for g in self.param_groups:
            g["lr"] = v

    def parameters(self) -> list[Parameter]:
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def _params_with_grad(self, group: dict[str, Any]):
        for p in group["params"]:
            if p.grad is None or not p.requires_grad:
                continue
            if p.grad.shape != p.data.shape:
                raise InvalidInputError(f"gradient shape {p.grad.shape} does not match parameter shape {p.data.shape}")
            yield p, self.state.setdefault(id(p), {})

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return f"{type(self).__name__}({opts})"


class SGD(Optimizer):
    """``torch.optim.SGD``: ``g = grad + wd * p``; with momentum ``b = mu * b + (1 - dampening) * g``
    (``b = g`` on the first step), ``g = g + mu * b`` (Nesterov) or ``g = b``; ``p -= lr * g``."""

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        _check_nonneg("momentum", group["momentum"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise InvalidInputError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self) -> None:
        for group in self.param_groups:
            lr, mu, damp, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
            for p, state in self._params_with_grad(group):
                g = -p.grad if group["maximize"] else p.grad
                if wd:
                    g = g + wd * p.data
                if mu:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = np.array(g, dtype=p.data.dtype, copy=True)
                    else:
                        buf *= mu
                        buf += (1.0 - damp) * g
                    state["momentum_buffer"] = buf
                    g = g + mu * buf if group["nesterov"] else buf
                p.data -= (lr * g).astype(p.data.dtype, copy=False)


class Adam(Optimizer):
    """``torch.optim.Adam``: L2 weight decay added to the gradient, bias-corrected moments,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``; AMSGrad uses ``max(v)``."""

    _decoupled = False

    def __init__(self, params: Any, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        b1, b2 = group["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise InvalidInputError(f"betas must lie in [0, 1), got {group['betas']}")
        _check_nonneg("eps", group["eps"])

    def step(self) -> None:
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, state in self._params_with_grad(group):
                g = -p.grad if group["maximize"] else p.grad
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]
                if wd:
                    if self._decoupled:
                        p.data *= 1.0 - lr * wd
                    else:
                        g = g + wd * p.data
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m *= b1
                m += (1.0 - b1) * g
                v *= b2
                v += (1.0 - b2) * (g * g)
                bc1 = 1.0 - b1 ** t
                bc2 = 1.0 - b2 ** t
                if group["amsgrad"]:
                    vmax = state["max_exp_avg_sq"]
                    np.maximum(vmax, v, out=vmax)
                    denom = np.sqrt(vmax) / math.sqrt(bc2) + eps
                else:
                    denom = np.sqrt(v) / math.sqrt(bc2) + eps
                p.data -= ((lr / bc1) * m / denom).astype(p.data.dtype, copy=False)


class AdamW(Adam):
    """``torch.optim.AdamW``: decoupled weight decay ``p *= 1 - lr * wd`` before the Adam step
    (default ``weight_decay=1e-2`` as in torch)."""

    _decoupled = True

    def __init__(self, params: Any, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


def clip_grad_norm_(parameters: Any, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale gradients in place so their joint norm is at most ``max_norm``; returns the
    norm before clipping (``torch.nn.utils.clip_grad_norm_``: coefficient
    ``max_norm / (norm + 1e-6)`` clamped to 1)."""
    if isinstance(parameters, Module):
        parameters = parameters.parameters()
    elif isinstance(parameters, Parameter):
        parameters = [parameters]
    max_norm = _check_nonneg("max_norm", max_norm)
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise InvalidInputError(f"norm_type must be > 0 or inf, got {norm_type}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    if math.isinf(norm_type):
        total = max(float(np.abs(g).max()) if g.size else 0.0 for g in grads)
    else:
        total = float(sum(float((np.abs(g.astype(np.float64)) ** norm_type).sum()) for g in grads)) ** (1.0 / norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise InvalidInputError(f"the total gradient norm is {total}; gradients contain NaN or Inf")
        return total
    coef = min(1.0, max_norm / (total + 1e-6))
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total


# -- Riemannian optimizers (geoopt semantics) ------------------------------------------------
class _BallOps:
    """Poincaré-ball operations used by the Riemannian optimizers (curvature ``-c``)."""

    def __init__(self, manifold: Any):
        self.m = manifold
        c = getattr(manifold, "c", None)
        if c is None and hasattr(manifold, "curvature"):
            c = -float(manifold.curvature())
        self.c = float(c)

    def proj(self, x: np.ndarray) -> np.ndarray:
        if hasattr(self.m, "proj"):
            return np.asarray(self.m.proj(x), dtype=x.dtype)
        eps = 4e-3 if x.dtype == np.float32 else 1e-5
        maxnorm = (1.0 - eps) / math.sqrt(self.c)
        n = np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-15)
        return np.where(n > maxnorm, x / n * maxnorm, x)

    def lambda2(self, x: np.ndarray) -> np.ndarray:
        return (2.0 / (1.0 - self.c * (x * x).sum(axis=-1, keepdims=True))) ** 2

    def egrad2rgrad(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g / self.lambda2(x)

    def component_inner(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.lambda2(x) * (u * u).sum(axis=-1, keepdims=True)

    def retr(self, x: np.ndarray, u: np.ndarray, kind: str) -> np.ndarray:
        if kind == "expmap":
            return self.proj(np.asarray(self.m.expmap(x, u), dtype=x.dtype))
        return self.proj(x + u)

    def transp(self, x: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
        # parallel transport x -> y: gyr[y, -x] v * lambda_x / lambda_y (geoopt, k = -c)
        k = -self.c
        u, w = y, -x
        u2 = (u * u).sum(-1, keepdims=True)
        w2 = (w * w).sum(-1, keepdims=True)
        uw = (u * w).sum(-1, keepdims=True)
        uv = (u * v).sum(-1, keepdims=True)
        wv = (w * v).sum(-1, keepdims=True)
        a = -k * k * uv * w2 - k * wv + 2 * k * k * uw * wv
        b = -k * k * wv * u2 + k * uv
        d = np.maximum(1 - 2 * k * uw + k * k * u2 * w2, 1e-15)
        gyr = v + 2 * (a * u + b * w) / d
        lx = 2.0 / (1.0 - self.c * (x * x).sum(-1, keepdims=True))
        ly = 2.0 / (1.0 - self.c * (y * y).sum(-1, keepdims=True))
        return gyr * lx / ly


class _EuclidOps:
    def proj(self, x):
        return x

    def egrad2rgrad(self, x, g):
        return g

    def component_inner(self, x, u):
        return u * u

    def retr(self, x, u, kind):
        return x + u

    def transp(self, x, y, v):
        return v


def _ops_for(manifold: Any):
    if manifold is None or type(manifold).__name__ == "Euclidean":
        return _EuclidOps()
    if getattr(manifold, "c", None) is not None or type(manifold).__name__ == "PoincareBall":
        return _BallOps(manifold)
    raise InvalidInputError(
        f"Riemannian optimizers support parameters on the Poincare ball or Euclidean space, got {type(manifold).__name__}")


class RiemannianSGD(SGD):
    """geoopt's ``RiemannianSGD``: ``rgrad = egrad2rgrad(p, grad + wd * p)``; with momentum the
    buffer starts at the first gradient and is updated as ``b = mu * b + (1 - dampening) * rgrad``
    (also on the first step, as geoopt does), the point moves by the retraction and the buffer
    is parallel-transported to the new point. ``retraction="retr"`` (geoopt's default,
    ``proj(x + u)``) or ``"expmap"``. ``stabilize=k`` re-projects every k steps."""

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, stabilize: int | None = None,
                 retraction: str = "retr"):
        if retraction not in ("retr", "expmap"):
            raise InvalidInputError(f"retraction must be 'retr' or 'expmap', got {retraction!r}")
        self.retraction = retraction
        self.stabilize = stabilize
        self._step = 0
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def step(self) -> None:
        self._step += 1
        for group in self.param_groups:
            lr, mu, damp, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
            for p, state in self._params_with_grad(group):
                ops = _ops_for(p.manifold)
                x = p.data
                if mu and "momentum_buffer" not in state:
                    state["momentum_buffer"] = p.grad.copy()
                g = p.grad + wd * x if wd else p.grad
                g = ops.egrad2rgrad(x, g)
                if mu:
                    buf = state["momentum_buffer"]
                    buf *= mu
                    buf += (1.0 - damp) * g
                    g = g + mu * buf if group["nesterov"] else buf
                    y = ops.retr(x, -lr * g, self.retraction)
                    state["momentum_buffer"] = ops.transp(x, y, buf).astype(x.dtype)
                else:
                    y = ops.retr(x, -lr * g, self.retraction)
                p.data = np.ascontiguousarray(y, dtype=x.dtype)
                if self.stabilize and self._step % self.stabilize == 0:
                    p.data = ops.proj(p.data)


class RiemannianAdam(Adam):
    """geoopt's ``RiemannianAdam``: the point is projected, ``rgrad = egrad2rgrad(p, grad + wd * p)``,
    ``m = b1 m + (1 - b1) rgrad``, ``v = b2 v + (1 - b2) <rgrad, rgrad>_p`` (one scalar per point on
    the ball: the Riemannian squared norm), step ``-lr * (m / bc1) / (sqrt(v / bc2) + eps)`` by
    retraction, ``m`` parallel-transported. Euclidean parameters reduce to Adam with L2 decay
    (with ``eps`` added after the bias-corrected square root, as geoopt does)."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, stabilize: int | None = None,
                 retraction: str = "retr"):
        if retraction not in ("retr", "expmap"):
            raise InvalidInputError(f"retraction must be 'retr' or 'expmap', got {retraction!r}")
        self.retraction = retraction
        self.stabilize = stabilize
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def step(self) -> None:
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, state in self._params_with_grad(group):
                ops = _ops_for(p.manifold)
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    shape = p.data.shape[:-1] + (1,) if isinstance(ops, _BallOps) else p.data.shape
                    state["exp_avg_sq"] = np.zeros(shape, dtype=p.data.dtype)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = np.zeros(shape, dtype=p.data.dtype)
                state["step"] += 1
                t = state["step"]
                x = ops.proj(p.data)
                g = p.grad + wd * x if wd else p.grad
                g = ops.egrad2rgrad(x, g)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m *= b1
                m += (1.0 - b1) * g
                v *= b2
                v += (1.0 - b2) * ops.component_inner(x, g)
                bc1 = 1.0 - b1 ** t
                bc2 = 1.0 - b2 ** t
                if group["amsgrad"]:
                    vmax = state["max_exp_avg_sq"]
                    np.maximum(vmax, v, out=vmax)
                    denom = np.sqrt(vmax / bc2) + eps
                else:
                    denom = np.sqrt(v / bc2) + eps
                direction = (m / bc1) / denom
                y = ops.retr(x, -lr * direction, self.retraction)
                state["exp_avg"] = np.ascontiguousarray(ops.transp(x, y, m), dtype=x.dtype)
                p.data = np.ascontiguousarray(y, dtype=x.dtype)
                if self.stabilize and t % self.stabilize == 0:
                    p.data = ops.proj(p.data)


# -- learning-rate schedules -----------------------------------------------------------------
class LRScheduler:
    """Base: closed-form ``lr_at(t, base_lr)``; ``step()`` advances ``t`` and sets every group's lr.

    Call ``scheduler.step()`` once per epoch (or per iteration) after ``optimizer.step()``,
    as in torch. ``get_last_lr()`` returns the current learning rates.
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise InvalidInputError(f"scheduler needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, t: int, base_lr: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply(self) -> None:
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = float(self.lr_at(self.last_epoch, base))

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}


class StepLR(LRScheduler):
    """``lr = base * gamma ** (t // step_size)`` (torch.optim.lr_scheduler.StepLR)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if int(step_size) <= 0:
            raise InvalidInputError(f"step_size must be > 0, got {step_size}")
        self.step_size, self.gamma = int(step_size), _check_nonneg("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr = base * gamma ** (number of milestones <= t)``."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = _check_nonneg("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        return base_lr * self.gamma ** sum(1 for m in self.milestones if m <= t)


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2`` (torch's closed form)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803
        if int(T_max) <= 0:
            raise InvalidInputError(f"T_max must be > 0, got {T_max}")
        self.T_max, self.eta_min = int(T_max), _check_nonneg("eta_min", eta_min)
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


class LinearLR(LRScheduler):
    """``lr = base * (start + (end - start) * min(t, total_iters) / total_iters)`` (torch's LinearLR)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise InvalidInputError("start_factor must be in (0, 1] and end_factor in [0, 1]")
        if int(total_iters) <= 0:
            raise InvalidInputError(f"total_iters must be > 0, got {total_iters}")
        self.start_factor, self.end_factor, self.total_iters = float(start_factor), float(end_factor), int(total_iters)
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        frac = min(t, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class LinearWarmup(LRScheduler):
    """Linear warm-up over ``warmup_steps`` from ``start_factor * base`` to ``base``, then
    ``after`` (another scheduler on the same optimizer, evaluated at ``t - warmup_steps``) or
    the constant base rate. With ``start_factor=0`` this is the usual ``t / warmup`` ramp."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, after: LRScheduler | None = None,
                 start_factor: float = 0.0):
        if int(warmup_steps) <= 0:
            raise InvalidInputError(f"warmup_steps must be > 0, got {warmup_steps}")
        if not 0.0 <= start_factor <= 1.0:
            raise InvalidInputError(f"start_factor must be in [0, 1], got {start_factor}")
        if after is not None and after.optimizer is not optimizer:
            raise InvalidInputError("the 'after' scheduler must drive the same optimizer")
        self.warmup_steps, self.after, self.start_factor = int(warmup_steps), after, float(start_factor)
        super().__init__(optimizer)

    def lr_at(self, t: int, base_lr: float) -> float:
        if t < self.warmup_steps:
            return base_lr * (self.start_factor + (1.0 - self.start_factor) * t / self.warmup_steps)
        if self.after is None:
            return base_lr
        return self.after.lr_at(t - self.warmup_steps, base_lr)
