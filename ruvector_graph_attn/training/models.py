"""Ready-made two-layer models for the ``train`` command and quick experiments."""
from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..validation import check_positive_int

__all__ = ["make_model", "MODEL_KINDS"]

MODEL_KINDS = ("gat", "sage", "gin")


def make_model(kind: str, in_channels: int, hidden: int, out_channels: int, heads: int = 8,
               dropout: float = 0.5, seed: Any = 0):
    """A two-layer :class:`~ruvector_graph_attn.graph.GraphSequential`:

    - ``"gat"``: dropout, ``GATConv(in, hidden // heads, heads)`` (concat), ELU, dropout,
      ``GATConv(hidden, out, heads=1)``, attention dropout ``dropout`` (the GAT paper's layout);
    - ``"sage"``: ``SAGEConv(in, hidden)`` (mean), ReLU, dropout, ``SAGEConv(hidden, out)``;
    - ``"gin"``: ``GINConv(MLP(in, hidden, hidden))``, ReLU, dropout, ``GINConv(MLP(hidden, hidden, out))``.
    """
    import numpy as np

    from .. import nn
    from ..graph import GATConv, GINConv, GraphSequential, SAGEConv

    if kind not in MODEL_KINDS:
        raise InvalidInputError(f"model must be one of {MODEL_KINDS}, got {kind!r}")
    f = check_positive_int(in_channels, "in_channels")
    h = check_positive_int(hidden, "hidden")
    c = check_positive_int(out_channels, "out_channels")
    if not 0.0 <= float(dropout) < 1.0:
        raise InvalidInputError(f"dropout must be in [0, 1), got {dropout}")
    r = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if kind == "gat":
        heads = check_positive_int(heads, "heads")
        if h % heads:
            raise InvalidInputError(f"hidden ({h}) must be divisible by heads ({heads}) for GAT")
        return GraphSequential([nn.Dropout(dropout), GATConv(f, h // heads, heads=heads, dropout=dropout, rng=r),
                                nn.ELU(), nn.Dropout(dropout),
                                GATConv(h, c, heads=1, concat=False, dropout=dropout, rng=r)])
    if kind == "sage":
        return GraphSequential([SAGEConv(f, h, rng=r), nn.ReLU(), nn.Dropout(dropout), SAGEConv(h, c, rng=r)])
    return GraphSequential([GINConv(nn.Sequential(nn.Linear(f, h, rng=r), nn.ReLU(), nn.Linear(h, h, rng=r))),
                            nn.ReLU(), nn.Dropout(dropout),
                            GINConv(nn.Sequential(nn.Linear(h, h, rng=r), nn.ReLU(), nn.Linear(h, c, rng=r)))])
