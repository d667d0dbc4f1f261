"""The splitmix64 hash and the keys built from it, in one place.

``splitmix64(x)`` is the finaliser of Steele, Lea and Flood's SplitMix64 generator
(golden-ratio increment, two xor-shift-multiply rounds, a final xor-shift) on uint64,
wrapping modulo 2**64. Everything that needs cheap, deterministic, thread-count
independent randomness chains it:

``pair_hash(salt, u, v)``            the sampling key of neighbour ``v`` of node ``u`` (the graph
                                     connectors keep the ``max_neighbors`` smallest keys);
``pair_hash_np(salt, u, v)``         the same on numpy arrays (the Neo4j connector's vectorised BFS);
``id_key(node_id)``                   the int64 key of a database / NetworkX node id that ``pair_hash``
                                     takes: the id itself for integers, else the first 8 bytes
                                     (little endian, signed) of the BLAKE2b digest of ``str(id)``;
``rand_below(seed, node, draw, n)``  a uniform integer in ``[0, n)`` (neighbour and negative sampling):
                                     ``pair_hash(seed, node, draw) % n``.

The Numba and numpy versions give the same bits (tests/test_graph_primitives.py checks it).
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numba import njit

from ..validation import is_integer

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def splitmix64(x):
    """The splitmix64 finaliser of a uint64 (scalar or array): a cheap, well-mixed 64-bit hash."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline="always")
def pair_hash(salt, u, v):
    """Deterministic hash of (salt, u, v): ``splitmix64(splitmix64(splitmix64(salt) ^ u) ^ v)``."""
    h = splitmix64(np.uint64(salt))
    h = splitmix64(h ^ np.uint64(u))
    return splitmix64(h ^ np.uint64(v))


@njit(cache=True, inline="always")
def rand_below(seed, node, draw, n):
    """A uniform integer in ``[0, n)`` from (seed, node, draw)."""
    return np.int64(pair_hash(seed, node, draw) % np.uint64(n))


def pair_hash_np(salt: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised :func:`pair_hash` over int64 arrays ``u``, ``v`` (wrapping uint64 arithmetic)."""
    mix = splitmix64.py_func   # the same Python source, run by numpy on uint64 arrays
    with np.errstate(over="ignore"):
        h = mix(np.full(1, salt, dtype=np.int64).astype(np.uint64))
        h = mix(h ^ np.asarray(u, dtype=np.int64).astype(np.uint64))
        return mix(h ^ np.asarray(v, dtype=np.int64).astype(np.uint64))


def id_key(node: Any) -> int:
    """The int64 sampling key of a node id (rule in the module docstring)."""
    if is_integer(node):
        return int(node)
    return int.from_bytes(hashlib.blake2b(str(node).encode("utf-8"), digest_size=8).digest(), "little", signed=True)


__all__ = ["splitmix64", "pair_hash", "pair_hash_np", "rand_below", "id_key"]
