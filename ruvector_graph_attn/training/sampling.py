"""Per-layer neighbour sampling (GraphSAGE / PyG ``NeighborLoader`` style) and edge splits.

:class:`NeighborSampler` builds, for a batch of seed nodes, the sampled computation
subgraph: hop 1 samples up to ``fanouts[0]`` incoming edges of every seed, hop 2 up to
``fanouts[1]`` incoming edges of every node first reached at hop 1, and so on. The
subgraph's nodes are the seeds first (in order), then the nodes of each hop; its edges are
the union of the sampled edges, relabelled to local ids. All layers of the model run on
that one subgraph (as with PyG's ``NeighborLoader``); the loss is taken on the seed rows.
With every fanout ``-1`` (all neighbours) the seed outputs equal the full-graph outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..kernels.csr import csr_from_index
from ..kernels.sampling import sample_corrupt_tails, sample_in_edges, sample_negative_pairs
from ..validation import as_index_array, check_edge_index

__all__ = ["NeighborSampler", "SampledSubgraph", "split_edges", "EdgeSplit", "negative_pairs",
           "corrupt_tails", "edge_keys"]


@dataclass
class SampledSubgraph:
    """``nodes`` (global ids, seeds first), local ``edge_index``, the global ``edge_ids`` of
    the sampled edges (for ``edge_attr[edge_ids]``) and ``num_seeds``."""

    nodes: np.ndarray
    edge_index: np.ndarray
    edge_ids: np.ndarray
    num_seeds: int


class NeighborSampler:
    """Sample computation subgraphs of ``edge_index`` for batches of seed nodes."""

    def __init__(self, edge_index: Any, num_nodes: int, fanouts: Sequence[int], seed: int = 0):
        if num_nodes <= 0:
            raise InvalidInputError(f"num_nodes must be > 0, got {num_nodes}")
        self.edge_index = check_edge_index(edge_index, num_nodes)
        self.num_nodes = int(num_nodes)
        fan = [int(f) for f in fanouts]
        if not fan or any(f == 0 or f < -1 for f in fan):
            raise InvalidInputError(f"fanouts must be a non-empty list of positive ints or -1 (all), got {list(fanouts)}")
        self.fanouts = fan
        self.seed = int(seed)
        self._indptr, self._eids = csr_from_index(np.ascontiguousarray(self.edge_index[1]), self.num_nodes)
        self._local = np.full(self.num_nodes, -1, dtype=np.int64)
        self._calls = 0

    def sample(self, seeds: Any, seed: Optional[int] = None) -> SampledSubgraph:
        s = as_index_array(seeds, "seed nodes", allow_empty=False)
        if s.min() < 0 or s.max() >= self.num_nodes:
            raise InvalidInputError(f"seed nodes must lie in 0..{self.num_nodes - 1}")
        if np.unique(s).size != s.size:
            raise InvalidInputError("seed nodes contain duplicates")
        call_seed = self.seed * 1_000_003 + self._calls if seed is None else int(seed)
        self._calls += 1
        local = self._local
        nodes = [s]
        local[s] = np.arange(s.size)
        count = s.size
        frontier = s
        picked = []
        try:
            for hop, fan in enumerate(self.fanouts):
                if frontier.size == 0:
                    break
                _, eids = sample_in_edges(self._indptr, self._eids, frontier, fan, call_seed * 131 + hop)
                picked.append(eids)
                src = self.edge_index[0, eids]
                new = np.unique(src)
                new = new[local[new] < 0]
                local[new] = np.arange(count, count + new.size)
                count += new.size
                nodes.append(new)
                frontier = new
            all_nodes = np.concatenate(nodes)
            eids = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
            ei = np.stack([local[self.edge_index[0, eids]], local[self.edge_index[1, eids]]])
        finally:
            for arr in nodes:
                local[arr] = -1
        return SampledSubgraph(all_nodes, np.ascontiguousarray(ei, dtype=np.int64), eids, int(s.size))

    def batches(self, nodes: Any, batch_size: int, shuffle: bool = True,
                rng: Optional[np.random.Generator] = None) -> Iterator[SampledSubgraph]:
        idx = as_index_array(nodes, "nodes", allow_empty=False)
        if batch_size <= 0:
            raise InvalidInputError(f"batch_size must be > 0, got {batch_size}")
        if shuffle:
            idx = (rng or np.random.default_rng(self.seed)).permutation(idx)
        for start in range(0, idx.size, batch_size):
            yield self.sample(idx[start:start + batch_size])


def edge_keys(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """Sorted unique ``src * N + dst`` keys of the edges (for membership tests)."""
    return np.unique(edge_index[0].astype(np.int64) * np.int64(num_nodes) + edge_index[1])


def negative_pairs(num_nodes: int, count: int, forbidden_keys: np.ndarray, seed: int,
                   max_tries: int = 32) -> np.ndarray:
    """``[2, count]`` uniformly random node pairs that are not edges (keys from :func:`edge_keys`)."""
    if num_nodes < 2:
        raise InvalidInputError("negative sampling needs at least 2 nodes")
    src, dst, ok = sample_negative_pairs(int(num_nodes), int(count), forbidden_keys, int(seed) & 0x7FFFFFFFFFFFFFFF,
                                         int(max_tries))
    pairs = np.stack([src[ok], dst[ok]])
    return np.ascontiguousarray(pairs)


def corrupt_tails(num_nodes: int, heads: np.ndarray, k: int, forbidden_keys: np.ndarray, seed: int,
                  max_tries: int = 32) -> np.ndarray:
    """``[len(heads), k]`` random tails per head that do not form an edge with it."""
    return sample_corrupt_tails(int(num_nodes), np.ascontiguousarray(heads, dtype=np.int64), int(k),
                                forbidden_keys, int(seed) & 0x7FFFFFFFFFFFFFFF, int(max_tries))


@dataclass
class EdgeSplit:
    """Message-passing/supervision edges for training and held-out positive/negative edges."""

    train: np.ndarray
    val_pos: np.ndarray
    val_neg: np.ndarray
    test_pos: np.ndarray
    test_neg: np.ndarray


def split_edges(edge_index: Any, num_nodes: int, val_ratio: float = 0.05, test_ratio: float = 0.1,
                undirected: bool = True, seed: int = 0) -> EdgeSplit:
    """Hold out edges for link prediction (as PyG's ``RandomLinkSplit``).

    With ``undirected=True`` each pair ``{u, v}`` (stored once or in both directions) is held
    out as a whole and ``train`` contains both directions of the remaining pairs, so no
    held-out edge leaks into message passing. Validation/test negatives are sampled once,
    among pairs that are edges in no direction, one per positive.
    """
    ei = check_edge_index(edge_index, num_nodes)
    if not (0 <= val_ratio < 1 and 0 <= test_ratio < 1 and val_ratio + test_ratio < 1):
        raise InvalidInputError(f"val_ratio + test_ratio must be in [0, 1), got {val_ratio} + {test_ratio}")
    ei = ei[:, ei[0] != ei[1]]  # self loops are not link-prediction targets
    if undirected:
        lo, hi = np.minimum(ei[0], ei[1]), np.maximum(ei[0], ei[1])
        pairs = np.unique(lo * np.int64(num_nodes) + hi)
        pairs = np.stack([pairs // num_nodes, pairs % num_nodes])
    else:
        pairs = np.unique(ei[0] * np.int64(num_nodes) + ei[1])
        pairs = np.stack([pairs // num_nodes, pairs % num_nodes])
    m = pairs.shape[1]
    n_val, n_test = int(round(m * val_ratio)), int(round(m * test_ratio))
    if m - n_val - n_test < 1:
        raise InvalidInputError(f"too few edges ({m}) to hold out {n_val} + {n_test}")
    perm = np.random.default_rng(seed).permutation(m)
    val = pairs[:, perm[:n_val]]
    test = pairs[:, perm[n_val:n_val + n_test]]
    train = pairs[:, perm[n_val + n_test:]]
    if undirected:
        train = np.concatenate([train, train[::-1]], axis=1)
        allk = edge_keys(np.concatenate([pairs, pairs[::-1]], axis=1), num_nodes)
    else:
        allk = edge_keys(pairs, num_nodes)
    negs = negative_pairs(num_nodes, n_val + n_test, allk, seed=seed + 7919)
    return EdgeSplit(np.ascontiguousarray(train), np.ascontiguousarray(val), np.ascontiguousarray(negs[:, :n_val]),
                     np.ascontiguousarray(test), np.ascontiguousarray(negs[:, n_val:n_val + n_test]))
