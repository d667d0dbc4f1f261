"""Graph layers (PyTorch Geometric semantics and names), readouts and graph attention."""
from .attention import EdgeAttention, GraphAttention
from .gin import GINConv, GINEConv
from .readout import (
    AttentionalAggregation, GlobalAttentionPool, MaxPool, MeanPool, QueryAttentionPool, SumPool,
    global_add_pool, global_max_pool, global_mean_pool,
)
from .sage import SAGEConv

__all__ = [
    "GINConv", "GINEConv", "SAGEConv", "GraphAttention", "EdgeAttention",
    "AttentionalAggregation", "GlobalAttentionPool", "MaxPool", "MeanPool", "QueryAttentionPool",
    "SumPool", "global_add_pool", "global_max_pool", "global_mean_pool",
]

from .sequential import GraphSequential  # noqa: E402  (training area)

__all__ += ["GraphSequential"]

from .gat import GATConv, GATv2Conv  # noqa: E402  (GAT area)

__all__ += ["GATConv", "GATv2Conv"]

from .dirgnn import DirGNNConv  # noqa: E402  (re-ranking area)

__all__ += ["DirGNNConv"]
