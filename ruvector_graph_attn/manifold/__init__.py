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


def from_description(desc: dict) -> Manifold:
    """Rebuild a manifold from its ``describe()`` dictionary (configs, checkpoints)."""
    from ..errors import ConfigError

    if not isinstance(desc, dict) or "name" not in desc:
        raise ConfigError(f"a manifold description is a dict with a 'name', got {desc!r}")
    name = desc["name"]
    if name == "poincare":
        return PoincareBall(c=desc.get("c", 1.0))
    if name == "sphere":
        return Sphere(radius=desc.get("radius", 1.0))
    if name == "euclidean":
        return Euclidean()
    if name == "product":
        return Product([from_description(d) for d in desc.get("manifolds", [])], desc.get("dims", []))
    raise ConfigError(f"unknown manifold {name!r}; expected poincare, sphere, euclidean or product")


__all__.append("from_description")
