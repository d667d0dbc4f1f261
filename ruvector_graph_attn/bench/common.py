"""Helpers shared by the benchmarks: data generators, table printing."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def structured_vectors(n: int, dim: int = 128, centers: int = 64, intrinsic: int = 12,
                       seed: int = 0, spread: float = 3.0) -> np.ndarray:
    """A Gaussian mixture of low intrinsic dimension, linearly embedded into ``dim`` dimensions
    plus small isotropic noise: the shape real embeddings have (clusters on a low-dimensional
    manifold), unlike uniform random vectors on which every graph index degrades."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, intrinsic)) * spread
    z = c[rng.integers(0, centers, n)] + rng.normal(size=(n, intrinsic))
    proj = rng.normal(size=(intrinsic, dim)) / np.sqrt(intrinsic)
    return (z @ proj + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)


def uniform_unit_vectors(n: int, dim: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> str:
    """Print (and return) a plain-text table, markdown-compatible."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    if title:
        lines.append(f"\n{title}\n")
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |")
    out = "\n".join(lines)
    print(out, flush=True)
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}"
    return str(v)
