"""kernels: plain Numba functions (no classes, no I/O). See each module's docstring for its API."""
from .segment import (  # noqa: F401
    csr_from_index, csr_with_self_loops, gat_fused_backward_sources, gat_fused_backward_targets,
    gat_fused_forward, gather_rows, gatv2_backward_sources, gatv2_fused_backward_targets,
    gatv2_fused_forward, scatter_arg_backward, scatter_max,
    scatter_max_backward_split, scatter_mean, scatter_mean_backward, scatter_min, scatter_sum,
    scatter_sum_backward, segment_softmax, segment_softmax_backward, segment_softmax_neg_sq,
    segment_softmax_runs, segment_sum, weighted_aggregate, weighted_aggregate_backward_alpha, weighted_aggregate_backward_x,
)

from .sparse import (  # noqa: E402,F401  (sparse attention kernels)
    block_pattern_counts, block_pattern_fill, csr_attention, csr_attention_backward_keys,
    csr_attention_backward_rows, csr_transpose_perm, topk_merge, window_pattern_counts,
    window_pattern_fill,
)

from .dense import gather_pair_dot, pair_dot, scores, weighted_sum  # noqa: E402,F401
from .norm import layer_norm_backward, layer_norm_forward  # noqa: E402,F401
from .softmax import masked_softmax_rows, softmax_rows, softmax_rows_backward  # noqa: E402,F401
from .topk import topk_rows  # noqa: E402,F401
from .bfs import csr_expand, khop_members, khop_neighbourhoods  # noqa: E402,F401  (graph primitives)
from .csr import csr_of_pairs, group_runs, indptr_from_counts, rank_in_runs, row_entries  # noqa: E402,F401
from .hashing import id_key, pair_hash, pair_hash_np, rand_below, splitmix64  # noqa: E402,F401

from ..threading_policy import guard_kernels as _guard_kernels  # noqa: E402

_guard_kernels()  # serialise kernel calls under Numba's workqueue layer (see threading_policy)
