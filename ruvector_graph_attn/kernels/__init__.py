"""kernels."""

from .sparse import (  # noqa: E402,F401  (sparse attention kernels)
    block_pattern_counts, block_pattern_fill, csr_attention, topk_merge,
    window_pattern_counts, window_pattern_fill,
)
