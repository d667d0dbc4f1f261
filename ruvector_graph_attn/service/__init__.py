"""The HTTP/JSON service (optional extra ``service``: FastAPI + uvicorn).

>>> from ruvector_graph_attn.service import Engine, ServiceSettings, create_app
>>> app = create_app(Engine(index, graph), ServiceSettings(token=os.environ["RGA_SERVICE_TOKEN"]))

``ruvector-graph-attn serve`` starts it from files; see docs/service.md.
"""
from __future__ import annotations

from .engine import Engine, Limits

__all__ = ["Engine", "Limits", "create_app", "ServiceSettings"]


def __getattr__(name: str):
    if name in ("create_app", "ServiceSettings"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'ruvector_graph_attn.service' has no attribute '{name}'")
