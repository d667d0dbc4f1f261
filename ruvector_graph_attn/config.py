"""Pydantic v2 models for every configurable object.

They validate on construction, serialise to JSON (``model_dump_json``) and are stored
with checkpoints. Each area appends its own models here.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .validation import DEFAULT_MAX_KEYS


class RgaConfig(BaseModel):
    """Base of every config: unknown fields are rejected, values validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class AttentionConfig(RgaConfig):
    """Configuration of an attention mechanism (AttentionConfig)."""

    attention_type: Literal[
        "scaled_dot_product", "multi_head", "sparse", "geometric", "graph"
    ] = "scaled_dot_product"
    dim: int = Field(gt=0)
    num_heads: int = Field(default=1, gt=0)
    scale: Optional[float] = Field(default=None, gt=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    max_keys: Optional[int] = Field(default=DEFAULT_MAX_KEYS, gt=0)


class GeometricAttentionConfig(AttentionConfig):
    """Configuration of :class:`~ruvector_graph_attn.attention.geometric.GeometricAttention`.

    ``dim`` is ``None`` until known (fixed by the constructor or by a Product manifold);
    ``manifold`` is the manifold's ``describe()`` dictionary (e.g. ``{"name": "poincare", "c": 1.0}``).
    """

    attention_type: Literal["geometric"] = "geometric"
    dim: Optional[int] = Field(default=None, gt=0)
    temperature: float = Field(default=1.0, gt=0)
    aggregation: Literal["tangent", "einstein"] = "tangent"
    values_on_manifold: bool = False
    manifold: dict = Field(default_factory=lambda: {"name": "poincare", "c": 1.0})
