"""Loss functions that return ``(value, gradient)``.

Each loss follows the PyTorch function of the same name (``torch.nn.functional``):
same reduction semantics, same numerically stable formulation. The gradient is
``d value / d input`` for the same reduction, so ``model.backward(grad)`` continues
the chain rule without autograd.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import DimensionMismatchError, InvalidInputError
from ..validation import as_float_array, as_index_array

__all__ = [
    "cross_entropy", "mse", "mse_loss", "binary_cross_entropy_with_logits",
    "margin_ranking", "margin_ranking_loss", "info_nce", "log_softmax", "softmax",
    "distillation_loss", "distillation_loss_fn",
]

_REDUCTIONS = ("mean", "sum")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise InvalidInputError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable ``log softmax`` along ``axis``."""
    m = np.max(z, axis=axis, keepdims=True)
    s = z - m
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(z, axis=axis, keepdims=True)
    e = np.exp(z - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def _row_mask(mask: Any, n: int) -> np.ndarray:
    """A boolean mask of ``n`` rows from a boolean mask or an index array."""
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        if m.shape != (n,):
            raise DimensionMismatchError((n,), m.shape, "mask shape")
        out = m
    elif m.dtype.kind in "iu":
        idx = as_index_array(m, "mask (node indices)", ndim=1)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InvalidInputError(f"mask indices must lie in 0..{n - 1}, got range {idx.min()}..{idx.max()}")
        out = np.zeros(n, dtype=bool)
        out[idx] = True
    else:
        raise InvalidInputError(f"mask must be boolean or an integer index array, got dtype {m.dtype}")
    if not out.any():
        raise InvalidInputError("mask selects no rows; expected at least one labelled row")
    return out


def cross_entropy(logits: Any, y: Any, mask: Any = None, weight: Any = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Cross-entropy from unnormalised ``logits [N, C]`` and integer labels ``y [N]``.

    ``mask`` (boolean ``[N]`` or an index array) selects the rows that count; the mean is
    over the selected rows (as ``F.cross_entropy(logits[mask], y[mask])``). ``weight [C]``
    gives per-class weights; with ``reduction="mean"`` the weighted sum is divided by the
    sum of the weights of the selected targets, as torch does. ``label_smoothing`` mixes the
    one-hot target with the uniform distribution (torch semantics).
    Returns ``(loss, d loss / d logits)``; rows outside the mask get a zero gradient.
    """
    _check_reduction(reduction)
    z = as_float_array(logits, "logits", ndim=2)
    n, c = z.shape
    labels = as_index_array(y, "y (class labels)", ndim=1, allow_empty=False)
    if labels.shape[0] != n:
        raise DimensionMismatchError(n, labels.shape[0], "number of labels (must equal rows of logits)")
    rows = np.ones(n, dtype=bool) if mask is None else _row_mask(mask, n)
    sel = np.flatnonzero(rows)
    ls = labels[sel]
    if ls.size and (ls.min() < 0 or ls.max() >= c):
        raise InvalidInputError(f"labels must lie in 0..{c - 1} for {c} classes, got range {ls.min()}..{ls.max()}")
    if not 0.0 <= label_smoothing < 1.0:
        raise InvalidInputError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    zs = z[sel].astype(np.float64)
    logp = log_softmax(zs)
    target = np.zeros_like(zs)
    target[np.arange(sel.size), ls] = 1.0
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / c
    if weight is not None:
        w = as_float_array(weight, "weight", ndim=1, dtype=np.float64)
        if w.shape[0] != c:
            raise DimensionMismatchError(c, w.shape[0], "class weight length")
        # torch: per-row loss -sum_k w_k t_k log p_k; mean divides by sum of w[y]
        per_row = -(target * w[None, :] * logp).sum(axis=1)
        denom = w[ls].sum() if reduction == "mean" else 1.0
        tw = target * w[None, :]
    else:
        per_row = -(target * logp).sum(axis=1)
        denom = float(sel.size) if reduction == "mean" else 1.0
        tw = target
    if denom == 0:
        raise InvalidInputError("the selected targets have zero total class weight")
    value = float(per_row.sum() / denom)
    p = np.exp(logp)
    # d/dz of -sum_k tw_k log p_k = p * sum_k tw_k - tw
    g_sel = (p * tw.sum(axis=1, keepdims=True) - tw) / denom
    grad = np.zeros_like(z)
    grad[sel] = g_sel.astype(z.dtype)
    return value, grad


def mse(pred: Any, target: Any, reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Mean (or summed) squared error, as ``F.mse_loss``; returns ``(loss, d loss / d pred)``."""
    _check_reduction(reduction)
    p = as_float_array(pred, "pred")
    t = as_float_array(target, "target", dtype=p.dtype)
    if p.shape != t.shape:
        raise DimensionMismatchError(p.shape, t.shape, "target shape (must equal pred shape)")
    d = p.astype(np.float64) - t
    denom = float(d.size) if reduction == "mean" else 1.0
    return float((d * d).sum() / denom), (2.0 * d / denom).astype(p.dtype)


mse_loss = mse


def binary_cross_entropy_with_logits(logits: Any, targets: Any, pos_weight: Any = None,
                                     reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Binary cross-entropy on logits, stable for any magnitude (``F.binary_cross_entropy_with_logits``).

    ``l = -[pw * y * log s(x) + (1 - y) * log(1 - s(x))]`` evaluated as
    ``(1 - y) x + (1 + (pw - 1) y) * softplus(-x)`` with ``softplus(-x) = max(-x, 0) + log1p(exp(-|x|))``.
    """
    _check_reduction(reduction)
    x = as_float_array(logits, "logits")
    y = as_float_array(targets, "targets", dtype=np.float64)
    if x.shape != y.shape:
        raise DimensionMismatchError(x.shape, y.shape, "targets shape (must equal logits shape)")
    if (y < 0).any() or (y > 1).any():
        raise InvalidInputError("targets must be probabilities in [0, 1]")
    xd = x.astype(np.float64)
    sp_neg = np.maximum(-xd, 0.0) + np.log1p(np.exp(-np.abs(xd)))  # softplus(-x) = -log s(x)
    if pos_weight is None:
        lw = 1.0
    else:
        pw = as_float_array(pos_weight, "pos_weight", ndim=(0, 1), dtype=np.float64)
        lw = 1.0 + (pw - 1.0) * y
    loss = (1.0 - y) * xd + lw * sp_neg
    sig = 0.5 * (1.0 + np.tanh(0.5 * xd))  # stable sigmoid
    # d/dx: (1 - y) - lw * (1 - sigmoid(x))
    g = (1.0 - y) - lw * (1.0 - sig)
    denom = float(loss.size) if reduction == "mean" else 1.0
    return float(loss.sum() / denom), (g / denom).astype(x.dtype)


def margin_ranking(x1: Any, x2: Any, y: Any, margin: float = 0.0,
                   reduction: str = "mean") -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """``mean(max(0, -y * (x1 - x2) + margin))`` as ``F.margin_ranking_loss``.

    ``y`` is +1 where ``x1`` should rank higher and -1 where ``x2`` should. Returns
    ``(loss, (d/dx1, d/dx2))`` (the sub-gradient at the hinge is 0, as in torch).
    """
    _check_reduction(reduction)
    a = as_float_array(x1, "x1", ndim=1)
    b = as_float_array(x2, "x2", ndim=1, dtype=a.dtype)
    t = as_float_array(y, "y", ndim=1, dtype=np.float64)
    if not (a.shape == b.shape == t.shape):
        raise DimensionMismatchError(a.shape, (b.shape, t.shape), "x1 / x2 / y shapes")
    if not np.isin(t, (-1.0, 1.0)).all():
        raise InvalidInputError("y must contain only +1 and -1")
    h = -t * (a.astype(np.float64) - b) + margin
    active = h > 0
    denom = float(h.size) if reduction == "mean" else 1.0
    g1 = np.where(active, -t, 0.0) / denom
    return float(np.where(active, h, 0.0).sum() / denom), (g1.astype(a.dtype), (-g1).astype(a.dtype))


margin_ranking_loss = margin_ranking


def _normalize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    n = np.maximum(n, 1e-12)
    return x / n, n


def _normalize_backward(g_hat: np.ndarray, x_hat: np.ndarray, norm: np.ndarray) -> np.ndarray:
    return (g_hat - x_hat * (g_hat * x_hat).sum(axis=-1, keepdims=True)) / norm


def info_nce(query: Any, positive: Any, negatives: Any = None, temperature: float = 0.1,
             in_batch: bool | None = None, normalize: bool = True
             ) -> tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """InfoNCE (contrastive cross-entropy) for ``query [B, D]`` against ``positive [B, D]``.

    Scores are dot products divided by ``temperature`` (cosine similarities when
    ``normalize=True``, the default, as in SimCLR / the ``info-nce-pytorch`` package).
    Candidates of query ``i``:

    - in-batch (``negatives=None``): every row of ``positive``; the target is row ``i``;
    - sampled negatives: ``negatives [B, K, D]`` (per query) or ``[K, D]`` (shared); the
      candidates are ``positive[i]`` followed by the negatives, the target is index 0;
      with ``in_batch=True`` the other queries' positives are added as further negatives.

    The loss is the mean cross-entropy over the B queries. Returns
    ``(loss, (d/d query, d/d positive, d/d negatives or None))``.
    """
    if not temperature > 0:
        raise InvalidInputError(f"temperature must be > 0, got {temperature}")
    q = as_float_array(query, "query", ndim=2)
    p = as_float_array(positive, "positive", ndim=2, dtype=q.dtype)
    if p.shape != q.shape:
        raise DimensionMismatchError(q.shape, p.shape, "positive shape (must equal query shape)")
    bsz, dim = q.shape
    neg = None
    if negatives is not None:
        neg = as_float_array(negatives, "negatives", ndim=(2, 3), dtype=q.dtype)
        if neg.shape[-1] != dim:
            raise DimensionMismatchError(dim, neg.shape[-1], "negatives dimension")
        if neg.ndim == 3 and neg.shape[0] != bsz:
            raise DimensionMismatchError(bsz, neg.shape[0], "negatives batch size")
    if in_batch is None:
        in_batch = neg is None
    if neg is None and not in_batch:
        raise InvalidInputError("info_nce needs negatives: pass negatives= or in_batch=True")

    qd, pd = q.astype(np.float64), p.astype(np.float64)
    nd = None if neg is None else neg.astype(np.float64)
    nh = nn_ = None
    if normalize:
        qh, qn = _normalize_rows(qd)
        ph, pn = _normalize_rows(pd)
        if nd is not None:
            nh, nn_ = _normalize_rows(nd)
    else:
        qh, ph, nh = qd, pd, nd
    tau = float(temperature)
    blocks = []
    pos_score = (qh * ph).sum(axis=1, keepdims=True)  # [B, 1]
    if in_batch:
        blocks.append(qh @ ph.T)  # target on the diagonal
    else:
        blocks.append(pos_score)
    if nh is not None:
        if nh.ndim == 3:
            blocks.append(np.einsum("bd,bkd->bk", qh, nh))
        else:
            blocks.append(qh @ nh.T)
    logits = np.concatenate(blocks, axis=1) / tau
    target = np.arange(bsz) if in_batch else np.zeros(bsz, dtype=np.int64)
    logp = log_softmax(logits)
    value = float(-logp[np.arange(bsz), target].mean())
    gl = np.exp(logp)
    gl[np.arange(bsz), target] -= 1.0
    gl /= bsz * tau  # d loss / d (unscaled scores)
    # back through the score blocks
    gq = np.zeros_like(qh)
    gp = np.zeros_like(ph)
    gn = None if nh is None else np.zeros_like(nh)
    col = 0
    if in_batch:
        s = gl[:, :bsz]
        gq += s @ ph
        gp += s.T @ qh
        col = bsz
    else:
        s = gl[:, :1]
        gq += s * ph
        gp += s * qh
        col = 1
    if nh is not None:
        s = gl[:, col:]
        if nh.ndim == 3:
            gq += np.einsum("bk,bkd->bd", s, nh)
            gn = s[:, :, None] * qh[:, None, :]
        else:
            gq += s @ nh
            gn = s.T @ qh
    if normalize:
        gq = _normalize_backward(gq, qh, qn)
        gp = _normalize_backward(gp, ph, pn)
        if gn is not None:
            gn = _normalize_backward(gn, nh, nn_)
    return value, (gq.astype(q.dtype), gp.astype(q.dtype), None if gn is None else gn.astype(q.dtype))


def distillation_loss(student_logits: Any, teacher_logits: Any, temperature: float = 2.0,
                      y: Any = None, alpha: float = 1.0, mask: Any = None) -> tuple[float, np.ndarray]:
    """Knowledge distillation (Hinton et al., 2015) from ``teacher_logits`` to ``student_logits``
    (both ``[N, C]``): ``T^2 * mean_rows KL(softmax(t / T) || softmax(s / T))``, mixed as
    ``alpha * KD + (1 - alpha) * cross_entropy(s, y)`` when labels ``y`` are given.

    The ``T^2`` factor keeps the soft-target gradient on the scale of the hard-target one:
    ``d KD / d s = T * (softmax(s / T) - softmax(t / T)) / N``. ``mask`` selects the rows that
    count (as in :func:`cross_entropy`). The teacher gets no gradient. Returns
    ``(loss, d loss / d student_logits)``.
    """
    s = as_float_array(student_logits, "student_logits", ndim=2)
    t = as_float_array(teacher_logits, "teacher_logits", ndim=2)
    if s.shape != t.shape:
        raise DimensionMismatchError(s.shape, t.shape, "teacher_logits shape (must equal student_logits)")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)) \
            or not np.isfinite(temperature) or temperature <= 0:
        raise InvalidInputError(f"temperature must be a finite number > 0, got {temperature!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 <= alpha <= 1.0:
        raise InvalidInputError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if alpha < 1.0 and y is None:
        raise InvalidInputError("alpha < 1 mixes in the cross-entropy on labels: pass y")
    T = float(temperature)
    rows = np.ones(s.shape[0], dtype=bool) if mask is None else _row_mask(mask, s.shape[0])
    sel = np.flatnonzero(rows)
    if sel.size == 0:
        raise InvalidInputError("no rows selected for the distillation loss")
    ls = log_softmax(s[sel].astype(np.float64) / T)
    lt = log_softmax(t[sel].astype(np.float64) / T)
    pt = np.exp(lt)
    kd = float((pt * (lt - ls)).sum() / sel.size) * T * T
    grad = np.zeros(s.shape, dtype=np.float64)
    grad[sel] = T * (np.exp(ls) - pt) / sel.size
    value = alpha * kd
    grad *= alpha
    if alpha < 1.0:
        ce, g_ce = cross_entropy(s, y, mask=mask)
        value += (1.0 - alpha) * ce
        grad += (1.0 - alpha) * g_ce
    return float(value), grad.astype(s.dtype)


def distillation_loss_fn(teacher_logits: Any, temperature: float = 2.0,
                         alpha: float = 0.5) -> Callable[..., tuple[float, np.ndarray]]:
    """A ``loss_fn(logits, y, mask=None)`` for the trainers (full-batch
    ``NodeClassificationTrainer``) that distils the fixed ``teacher_logits [N, C]`` into the
    student: ``alpha * KD`` over *every* node (the teacher's soft targets exist for unlabelled
    nodes too, which is where distillation helps a graph model) plus ``(1 - alpha) *``
    cross-entropy on the labelled rows selected by ``mask``. Called on a subset of rows without
    a mask (the trainers' evaluation of validation or test nodes) it returns the plain
    cross-entropy on the labels: the validation loss stays the hard-label loss."""
    t = np.array(as_float_array(teacher_logits, "teacher_logits", ndim=2))

    def loss_fn(logits: Any, y: Any, mask: Any = None) -> tuple[float, np.ndarray]:
        s = np.asarray(logits)
        if mask is None and s.ndim == 2 and s.shape[1] == t.shape[1] and s.shape[0] != t.shape[0]:
            return cross_entropy(s, y)
        if s.shape != t.shape:
            raise DimensionMismatchError(t.shape, s.shape,
                                         "student logits shape (distillation needs the teacher's rows: full batch)")
        value, grad = distillation_loss(s, t, temperature)
        value, grad = alpha * value, alpha * grad
        if alpha < 1.0:
            ce, g_ce = cross_entropy(s, y, mask=mask)
            value, grad = value + (1.0 - alpha) * ce, grad + (1.0 - alpha) * g_ce
        return float(value), grad.astype(s.dtype, copy=False)

    return loss_fn
