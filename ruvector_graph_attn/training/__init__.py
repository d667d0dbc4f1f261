"""training: losses, optimizers and schedules, EWC, trainers and checkpoints."""
from .ewc import EWC
from .losses import (
    binary_cross_entropy_with_logits, cross_entropy, distillation_loss, distillation_loss_fn, info_nce, margin_ranking,
    margin_ranking_loss, mse, mse_loss,
)
from .sampling import EdgeSplit, NeighborSampler, SampledSubgraph, split_edges
from .trainers import (
    LinkPredictionTrainer, NodeClassificationTrainer, RerankerTrainer, graph_query_pairs, mine_hard_negatives, mrr, roc_auc,
)
from .vote import VoteCandidates, VoteTrainer
from .checkpoint import (
    export_pyg_state_dict, get_config, import_pyg_state_dict, load_checkpoint, read_checkpoint_config,
    register_layer, save_checkpoint,
)
from .optim import (
    SGD, Adam, AdamW, CosineAnnealingLR, LinearLR, LinearWarmup, LRScheduler, MultiStepLR,
    Optimizer, RiemannianAdam, RiemannianSGD, StepLR, clip_grad_norm_,
)

__all__ = [
    "EWC", "cross_entropy", "mse", "mse_loss", "binary_cross_entropy_with_logits", "margin_ranking",
    "margin_ranking_loss", "info_nce", "distillation_loss", "distillation_loss_fn", "Optimizer", "SGD", "Adam", "AdamW", "RiemannianSGD",
    "RiemannianAdam", "clip_grad_norm_", "LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR",
    "LinearLR", "LinearWarmup", "NeighborSampler", "SampledSubgraph", "EdgeSplit", "split_edges",
    "NodeClassificationTrainer", "LinkPredictionTrainer", "RerankerTrainer", "VoteTrainer", "VoteCandidates", "graph_query_pairs", "mine_hard_negatives", "roc_auc", "mrr",
    "save_checkpoint", "load_checkpoint", "read_checkpoint_config", "get_config", "register_layer",
    "export_pyg_state_dict", "import_pyg_state_dict",
]
