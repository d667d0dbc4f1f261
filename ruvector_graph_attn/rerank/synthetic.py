"""A generated citation-like dataset with known ground truth (used by the demo and benchmarks).

The latent-space model (a Gaussian mixture of low intrinsic dimension, as in the HNSW
benchmark, plus a graph drawn from the *latent* positions):

1. ``n_topics`` topic centres ``mu_t ~ N(0, I_L)`` in a latent space of dimension ``L``;
   item ``i`` of topic ``t_i`` sits at ``z_i = mu_{t_i} + spread * N(0, I_L)``.
2. Observed embeddings are a random orthonormal projection ``P`` (``L x D``) of the
   latent position plus isotropic noise: ``x_i = z_i P + noise * N(0, I_D)``. The noise
   stands for what an embedding model gets wrong about an item.
3. Citations: item ``i`` cites ``degree // 2`` items; each is, with probability
   ``homophily``, one of the ``2 * degree`` latent nearest neighbours of ``i`` (distinct,
   uniformly chosen), otherwise uniform over all items (topic-blind citations). Edges are directed
   ``i -> cited``; the average total degree is ``degree``.
4. A query is a fresh latent point drawn like an item and observed the same way
   (``q = z_q P + noise * N(0, I_D)``); its **relevant items are its ``k`` nearest
   items in latent space**. Neither the embeddings nor any scorer define this truth: the
   graph is the only extra evidence about the latent geometry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..validation import check_positive_int

TOPIC_NAMES = (
    "graph learning", "databases", "vision", "speech", "robotics", "cryptography", "compilers",
    "genomics", "astrophysics", "economics", "linguistics", "networks", "optimisation",
    "quantum", "ecology", "neuroscience",
)


@dataclass
class LatentGraphData:
    """Arrays of a generated dataset (see the module docstring)."""

    x: np.ndarray          # [n, D] float32 observed embeddings
    z: np.ndarray          # [n, L] float64 latent positions
    topic: np.ndarray      # [n] int64 topic of each item
    edges: np.ndarray      # [2, E] int64 citations i -> j
    projection: np.ndarray  # [L, D]
    centres: np.ndarray    # [n_topics, L]
    noise: float
    spread: float
    seed: int

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def to_networkx(self, feature_key: str = "embedding"):
        """A ``networkx.DiGraph`` with ``feature_key`` and ``topic`` node attributes."""
        import networkx as nx

        G = nx.DiGraph()
        G.add_nodes_from((i, {feature_key: self.x[i], "topic": int(self.topic[i])}) for i in range(self.n))
        G.add_edges_from(zip(self.edges[0].tolist(), self.edges[1].tolist()))
        return G

    def queries(self, n_queries: int, k: int = 10, seed: int = 1):
        """``(Q [n_queries, D] float32, relevant [n_queries, k] int64, q_topic [n_queries])``:
        fresh queries and their ``k`` latent nearest items (best first)."""
        n_queries = check_positive_int(n_queries, "n_queries")
        k = check_positive_int(k, "k")
        rng = np.random.default_rng(seed)
        L = self.z.shape[1]
        qt = rng.integers(0, self.centres.shape[0], n_queries)
        zq = self.centres[qt] + self.spread * rng.standard_normal((n_queries, L))
        Q = zq @ self.projection + self.noise * rng.standard_normal((n_queries, self.x.shape[1]))
        relevant = np.empty((n_queries, k), np.int64)
        zz = (self.z ** 2).sum(1)
        for s in range(0, n_queries, 256):
            blk = zq[s:s + 256]
            d = (blk ** 2).sum(1)[:, None] - 2.0 * blk @ self.z.T + zz[None, :]
            part = np.argpartition(d, k, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
            relevant[s:s + 256] = np.take_along_axis(part, order, 1)
        return Q.astype(np.float32), relevant, qt.astype(np.int64)


def latent_citation_graph(n: int = 20000, dim: int = 64, latent_dim: int = 8, n_topics: int = 16,
                          degree: int = 10, noise: float = 0.35, spread: float = 0.6,
                          homophily: float = 0.9, seed: int = 0,
                          knn_threads: int = 1) -> LatentGraphData:
    """Generate the dataset described in the module docstring (deterministic in ``seed``)."""
    n = check_positive_int(n, "n")
    dim = check_positive_int(dim, "dim")
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    n_topics = check_positive_int(n_topics, "n_topics")
    degree = check_positive_int(degree, "degree")
    if latent_dim > dim:
        raise InvalidInputError(f"latent_dim ({latent_dim}) must be <= dim ({dim})")
    if not 0.0 <= homophily <= 1.0:
        raise InvalidInputError(f"homophily must be in [0, 1], got {homophily}")
    if noise < 0 or spread <= 0:
        raise InvalidInputError("noise must be >= 0 and spread > 0")
    if n < 2 * degree + 2:
        raise InvalidInputError(f"n={n} is too small for degree={degree}")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_topics, latent_dim))
    topic = rng.integers(0, n_topics, n).astype(np.int64)
    z = centres[topic] + spread * rng.standard_normal((n, latent_dim))
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent_dim)))
    projection = np.ascontiguousarray(basis.T)                         # [L, D], orthonormal rows
    x = (z @ projection + noise * rng.standard_normal((n, dim))).astype(np.float32)

    # latent kNN (exact up to hnswlib's recall; only used to draw citations)
    import hnswlib

    kn = 2 * degree
    knn = hnswlib.Index(space="l2", dim=latent_dim)
    knn.init_index(max_elements=n, M=16, ef_construction=100, random_seed=seed + 1)
    knn.add_items(z.astype(np.float32), np.arange(n), num_threads=knn_threads)
    knn.set_ef(max(64, kn + 1))
    labels, _ = knn.knn_query(z.astype(np.float32), k=kn + 1, num_threads=knn_threads)
    labels = labels.astype(np.int64)
    neigh = np.where(labels[:, :1] == np.arange(n)[:, None], labels[:, 1:], labels[:, :kn])
    m = max(1, degree // 2)
    # m distinct latent neighbours per item (random order of the kn nearest, first m)
    pick = np.argsort(rng.random((n, kn)), axis=1)[:, :m]
    local = np.take_along_axis(neigh, pick, 1)
    rand = rng.integers(0, n, (n, m))
    use_local = rng.random((n, m)) < homophily
    dst = np.where(use_local, local, rand).reshape(-1)
    src = np.repeat(np.arange(n, dtype=np.int64), m)
    keep = src != dst
    edges = np.unique(np.stack([src[keep], dst[keep]]), axis=1)   # (rare) repeats collapse
    return LatentGraphData(x=x, z=z, topic=topic, edges=edges, projection=projection, centres=centres,
                           noise=float(noise), spread=float(spread), seed=int(seed))


@dataclass
class TaxonomyData:
    """A generated taxonomy (see :func:`taxonomy_graph`)."""

    x: np.ndarray          # [n, D] float32 unit "text embeddings"
    parent: np.ndarray     # [n] int64 parent of each node (-1 for the roots)
    depth: np.ndarray      # [n] int64 (roots: 0)
    edges: np.ndarray      # [2, E] int64 child -> parent
    seed: int

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_nodes(self) -> int:
        return self.n

    @property
    def edge_index(self) -> np.ndarray:
        return self.edges

    def to_networkx(self, feature_key: str = "embedding"):
        """A ``networkx.DiGraph`` (edges child -> parent) with ``feature_key`` node attributes."""
        import networkx as nx

        G = nx.DiGraph()
        G.add_nodes_from((i, {feature_key: self.x[i]}) for i in range(self.n))
        G.add_edges_from(zip(self.edges[0].tolist(), self.edges[1].tolist()))
        return G


def taxonomy_graph(n: int = 20000, dim: int = 64, roots: int = 20, hub_fraction: float = 0.01,
                   hub_share: float = 0.4, drift: float = 0.6, noise: float = 0.9, common: float = 0.5,
                   seed: int = 0) -> TaxonomyData:
    """A taxonomy with text-embedding-like features (deterministic in ``seed``).

    Shape: ``roots`` trees; node ``k`` (after the roots) gets one parent among the earlier
    nodes -- one of the hubs (the first ``hub_fraction * n`` nodes) with probability
    ``hub_share``, otherwise a uniformly chosen earlier node -- so a few broad categories have
    hundreds of children, most nodes are leaves, and depth grows like ``log n``.

    Features: a root sits at a random unit direction; a child at its parent's position plus a
    Gaussian step of norm about ``drift`` (renormalised), so children are near their parent and
    siblings near each other; the observed vector adds isotropic noise of norm about ``noise``
    and a direction shared by every node of weight ``common`` (sentence embeddings of one
    domain all share a component: random pairs have cosine about
    ``common^2 / (1 + noise^2 + common^2)``, 0.12 with the defaults),
    then is normalised. Edges are ``child -> parent``.
    """
    n = check_positive_int(n, "n")
    dim = check_positive_int(dim, "dim")
    roots = check_positive_int(roots, "roots")
    if n < 2 * roots or dim < 2:
        raise InvalidInputError(f"taxonomy_graph needs n >= 2 * roots and dim >= 2 (n={n}, roots={roots})")
    if not 0.0 < hub_fraction < 1.0 or not 0.0 <= hub_share < 1.0:
        raise InvalidInputError("hub_fraction must be in (0, 1) and hub_share in [0, 1)")
    if min(drift, noise, common) < 0:
        raise InvalidInputError("drift, noise and common must be >= 0")
    rng = np.random.default_rng(seed)
    parent = np.full(n, -1, np.int64)
    k = np.arange(roots, n)
    n_hubs = max(roots, int(hub_fraction * n))
    to_hub = rng.random(k.size) < hub_share
    hub = np.minimum(rng.integers(0, roots + n_hubs, k.size), k - 1)
    parent[roots:] = np.where(to_hub, hub, (rng.random(k.size) * k).astype(np.int64))
    depth = np.zeros(n, np.int64)
    pos = np.empty((n, dim))
    g = rng.standard_normal((n, dim)) / np.sqrt(dim)
    pos[:roots] = g[:roots] / np.linalg.norm(g[:roots], axis=1, keepdims=True)
    for i in range(roots, n):  # parents precede children
        depth[i] = depth[parent[i]] + 1
        v = pos[parent[i]] + drift * g[i]
        pos[i] = v / np.linalg.norm(v)
    shared = rng.standard_normal(dim)
    shared /= np.linalg.norm(shared)
    x = pos + noise * rng.standard_normal((n, dim)) / np.sqrt(dim) + common * shared
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    edges = np.ascontiguousarray(np.stack([k, parent[roots:]]).astype(np.int64))
    return TaxonomyData(x=x.astype(np.float32), parent=parent, depth=depth, edges=edges, seed=int(seed))
