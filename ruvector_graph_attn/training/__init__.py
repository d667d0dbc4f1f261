"""training: losses, optimizers and schedules, EWC, trainers and checkpoints."""
from .ewc import EWC
from .losses import (
    binary_cross_entropy_with_logits, cross_entropy, info_nce, margin_ranking, margin_ranking_loss,
    mse, mse_loss,
)
from .optim import (
    SGD, Adam, AdamW, CosineAnnealingLR, LinearLR, LinearWarmup, LRScheduler, MultiStepLR,
    Optimizer, RiemannianAdam, RiemannianSGD, StepLR, clip_grad_norm_,
)

__all__ = [
    "EWC", "cross_entropy", "mse", "mse_loss", "binary_cross_entropy_with_logits", "margin_ranking",
    "margin_ranking_loss", "info_nce", "Optimizer", "SGD", "Adam", "AdamW", "RiemannianSGD",
    "RiemannianAdam", "clip_grad_norm_", "LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR",
    "LinearLR", "LinearWarmup",
]
