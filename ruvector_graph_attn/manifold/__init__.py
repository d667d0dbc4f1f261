"""Riemannian manifolds for geometric attention: Poincaré ball, sphere, Euclidean, products.

All operate on the last axis and broadcast the leading ones; float32 and float64 are kept.
Points off the manifold raise :class:`~ruvector_graph_attn.errors.InvalidInputError`;
``proj`` moves points onto the manifold only when called explicitly.
"""
from .base import Manifold
from .euclidean import Euclidean
from .poincare import PoincareBall
from .product import Product
from .sphere import Sphere

__all__ = ["Manifold", "PoincareBall", "Sphere", "Euclidean", "Product"]
