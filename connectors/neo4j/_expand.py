"""Array side of the Neo4j expansion: the capped breadth-first search over fetched adjacency.

The server returns, in one round trip, the adjacency of every node within ``hops - 1`` of
the seeds (the only nodes a BFS of radius ``hops`` can expand). The search itself -- hop
numbers, the per-node neighbour cap, the traversed edges -- then runs here on numpy arrays,
with the same rules as :class:`~ruvector_graph_attn.connectors.NetworkXGraph` (see
``connectors/networkx.py``), so both connectors give the same subgraph.

Everything here is vectorised per hop (no per-node Python loops).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np

from ruvector_graph_attn.errors import InvalidInputError
from ruvector_graph_attn.kernels.csr import group_runs, indptr_from_counts, rank_in_runs, row_entries
from ruvector_graph_attn.kernels.hashing import id_key, pair_hash_np
from ruvector_graph_attn.validation import is_integer as _is_int

__all__ = ["pair_hash_np", "id_keys", "capped_bfs", "plain_ids"]


def id_keys(ids: np.ndarray) -> np.ndarray:
    """int64 sampling key of each database id: the id itself for integer ids, else the first
    8 bytes (little endian, signed) of the BLAKE2b digest of ``str(id)`` in UTF-8."""
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    # only for string ids; one digest per distinct node
    return np.fromiter((id_key(v) for v in ids.tolist()), dtype=np.int64, count=ids.shape[0])


def _segments(indptr: np.ndarray, rows: np.ndarray):
    """Flat CSR entry indices of ``rows`` and the row each entry belongs to."""
    idx, which = row_entries(indptr, rows)
    return idx, rows[which]


def capped_bfs(n: int, pu: np.ndarray, pv: np.ndarray, fwd: np.ndarray, bwd: np.ndarray,
               seeds: np.ndarray, hops: int, cap: Optional[int], salt: int, keys: np.ndarray,
               order_key: np.ndarray):
    """BFS over neighbour pairs ``(pu[i], pv[i])`` (local positions ``0..n-1``, distinct).

    ``fwd[i]``: the graph has an edge ``pu -> pv``; ``bwd[i]``: an edge ``pv -> pu``. A node
    reached at hop ``h < hops`` is expanded; with ``cap`` set, only its ``cap`` neighbours with
    the smallest ``pair_hash(salt, keys[u], keys[v])`` are kept. New nodes of a hop are ordered by
    ``order_key`` (the database id order).

    Returns ``(nodes, hop, src, dst, origin)``: local node positions in output order (seeds
    first in the given order), their hops, the traversed edges as positions into ``nodes`` (each
    (src, dst) pair once) and, per edge, the position of the expanded node that traversed it
    (-1 when both endpoints did) -- ``Subgraph.edge_origin``.
    """
    order = np.lexsort((pv, pu))
    pu, pv, fwd, bwd = pu[order], pv[order], fwd[order], bwd[order]
    indptr = indptr_from_counts(np.bincount(pu, minlength=n))
    hop = np.full(n, -1, np.int64)
    hop[seeds] = 0
    out_nodes = [seeds]
    src_parts, dst_parts, org_parts = [], [], []
    frontier = seeds
    for h in range(hops):
        if frontier.size == 0:
            break
        idx, owner = _segments(indptr, frontier)
        if idx.size == 0:
            break
        if cap is not None and cap >= 0:
            hv = pair_hash_np(salt, keys[owner], keys[pv[idx]])
            srt = np.lexsort((hv, owner))
            idx, owner = idx[srt], owner[srt]
            keep = rank_in_runs(owner) < cap
            idx, owner = idx[keep], owner[keep]
        v = pv[idx]
        f, b = fwd[idx], bwd[idx]
        src_parts += [owner[f], v[b]]
        dst_parts += [v[f], owner[b]]
        org_parts += [owner[f], owner[b]]
        new = np.unique(v[hop[v] < 0])
        if new.size:
            new = new[np.argsort(order_key[new], kind="stable")]
            hop[new] = h + 1
            out_nodes.append(new)
        frontier = new
    nodes = np.concatenate(out_nodes) if len(out_nodes) > 1 else seeds.copy()
    local = np.full(n, -1, np.int64)
    local[nodes] = np.arange(nodes.size, dtype=np.int64)
    if src_parts:
        src = local[np.concatenate(src_parts)]
        dst = local[np.concatenate(dst_parts)]
        org = local[np.concatenate(org_parts)]
        srt, starts = group_runs(src * np.int64(max(nodes.size, 1)) + dst)
        lo = np.minimum.reduceat(org[srt], starts) if starts.size else org[:0]
        hi = np.maximum.reduceat(org[srt], starts) if starts.size else org[:0]
        keep = srt[starts]
        merged_org = np.where(lo == hi, lo, -1)
        back = np.argsort(keep, kind="stable")           # keep first-emission order
        keep, merged_org = keep[back], merged_org[back]
        src, dst, org = src[keep], dst[keep], merged_org
    else:
        src = dst = org = np.empty(0, np.int64)
    return nodes, hop[nodes], src, dst, org


def plain_ids(ids: Any, what: str = "ids") -> list:
    """Validated list of database ids (Python ints or strings, not mixed)."""
    if ids is None:
        raise InvalidInputError(f"{what} is None; expected a sequence of node ids")
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise InvalidInputError(f"{what} must be 1-D, got shape {ids.shape}")
        if ids.dtype.kind == "f":
            raise InvalidInputError(f"{what} must be integers or strings, got float array")
        out = ids.tolist()
    elif isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidInputError(f"{what} must be a sequence of node ids, got {type(ids).__name__}")
    else:
        out = list(ids)
    if not out:
        return out
    if all(_is_int(i) for i in out):
        vals = [int(i) for i in out]
        big = next((v for v in vals if not -(2 ** 63) <= v < 2 ** 63), None)
        if big is not None:
            raise InvalidInputError(f"{what}: id {big} does not fit Neo4j's 64-bit integers")
        return vals
    if all(isinstance(i, str) for i in out):
        return out
    bad = next(i for i in out if not (_is_int(i) or isinstance(i, str)))
    if _is_int(out[0]) or isinstance(out[0], str):
        bad = next((i for i in out if type(i) is not type(out[0]) and not (_is_int(i) and _is_int(out[0]))), bad)
    raise InvalidInputError(f"{what}: every id must be an int or every id a str; got {bad!r} "
                            f"({type(bad).__name__})")


def _id_array(ids: list) -> np.ndarray:
    if ids and isinstance(ids[0], str):
        return np.asarray(ids, dtype=object).astype(str)
    return np.asarray(ids, dtype=np.int64)


def _lookup(universe_sorted: np.ndarray, order: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Positions (into the unsorted universe) of ``query`` values; -1 where absent."""
    if universe_sorted.size == 0 or query.size == 0:
        return np.full(query.shape[0], -1, np.int64)
    j = np.searchsorted(universe_sorted, query)
    j = np.minimum(j, universe_sorted.size - 1)
    hit = universe_sorted[j] == query
    return np.where(hit, order[j], -1).astype(np.int64)
