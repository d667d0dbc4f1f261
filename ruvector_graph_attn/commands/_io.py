"""File readers shared by the ``index``, ``search`` and ``demo`` commands."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..fileio import read_npy_checked, read_text_file
from ..validation import as_float_array


def _check_file(path: Any, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{what} file {str(p)!r} does not exist")
    return p


def read_vectors(path: Any, what: str = "vectors") -> np.ndarray:
    """``[n, D]`` vectors from ``.npy`` (no pickles; float64 kept, other numbers -> float32)
    or ``.csv`` (numbers, comma separated, an optional header line; float32)."""
    p = _check_file(path, what)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        arr = read_npy_checked(p, f"{what} file", error=InvalidInputError)
    elif suffix in (".csv", ".txt", ".tsv"):
        delim = "\t" if suffix == ".tsv" else ","
        try:
            arr = np.loadtxt(p, delimiter=delim, dtype=np.float64, ndmin=2)
        except ValueError:
            try:
                arr = np.loadtxt(p, delimiter=delim, dtype=np.float64, ndmin=2, skiprows=1)
            except ValueError as exc:
                raise InvalidInputError(f"{what} file {p} has non-numeric cells ({exc})") from exc
    else:
        raise InvalidInputError(f"{what} file must be .npy or .csv, got {p.name!r}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    # text has no dtype: float32 (the library default); .npy keeps float64 if stored so
    return as_float_array(arr, what, ndim=2, dtype=np.float32 if suffix != ".npy" else None)


def read_ids(path: Any, n: int | None = None) -> list:
    """Ids from ``.npy`` (int or str) or a text/CSV file with one id per line; ids that all
    parse as integers become ints, otherwise strings."""
    p = _check_file(path, "ids")
    if p.suffix.lower() == ".npy":
        arr = read_npy_checked(p, "ids file", error=InvalidInputError)
        if arr.ndim != 1:
            raise InvalidInputError(f"ids file {p} must hold a 1-D array, got shape {arr.shape}")
        ids = [int(v) for v in arr] if arr.dtype.kind in "iu" else [str(v) for v in arr]
    else:
        lines = [ln.strip().split(",")[0].strip() for ln in read_text_file(p, "ids").splitlines()]
        ids = parse_ids([ln for ln in lines if ln])
    if n is not None and len(ids) != n:
        raise InvalidInputError(f"ids file {p} has {len(ids)} ids but there are {n} vectors")
    return ids


def parse_ids(tokens: list) -> list:
    """Strings -> ints when every token is an integer, else the strings unchanged."""
    try:
        return [int(t) for t in tokens]
    except (TypeError, ValueError):
        return [str(t) for t in tokens]


def read_graph(path: Any):
    """A ``networkx`` graph from GraphML (``.graphml``, directed as declared) or an edge list
    (``.edgelist``/``.txt``/``.csv``/``.tsv``: ``source target`` per line, whitespace or comma
    separated, ``#`` comments; read as a directed graph). Node ids that all parse as
    integers become ints."""
    import networkx as nx

    p = _check_file(path, "graph")
    suffix = p.suffix.lower()
    if suffix == ".graphml":
        try:
            G = nx.read_graphml(p)
        except Exception as exc:  # networkx raises several XML error types
            raise InvalidInputError(f"graph file {p} is not valid GraphML ({exc})") from exc
    elif suffix in (".edgelist", ".txt", ".csv", ".tsv", ".edges"):
        pairs = []
        for lineno, line in enumerate(read_text_file(p, "graph").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [t.strip() for t in line.replace(",", " ").replace("\t", " ").split()]
            if len(parts) < 2:
                raise InvalidInputError(f"graph file {p} line {lineno}: expected 'source target', got {line!r}")
            pairs.append((parts[0], parts[1]))
        G = nx.DiGraph()
        G.add_edges_from(pairs)
    else:
        raise InvalidInputError(f"graph file must be .graphml or an edge list (.edgelist/.txt/.csv), got {p.name!r}")
    nodes = list(G.nodes())
    converted = parse_ids([str(n) for n in nodes])
    if converted and isinstance(converted[0], int):
        G = nx.relabel_nodes(G, dict(zip(nodes, converted)), copy=True)
    return G


def print_summary(summary: dict, as_json: bool, width: int = 16) -> None:
    """A command's key/value summary: JSON (``--json``) or aligned ``key: value`` lines."""
    import json

    if as_json:
        print(json.dumps(summary, indent=2))
        return
    for k, v in summary.items():
        print(f"{k:>{width}}: {v}")
def attach_features(G, index, features: Any = None, feature_ids: Any = None) -> list:
    """Give every node of ``G`` its feature vector under ``"embedding"``, in place, and return
    the nodes that had none (they are removed from ``G``).

    Features come from ``features`` (a .npy/.csv file whose rows belong to ``feature_ids``, a
    file of ids, default the index's ids in insertion order) or, without ``features``, from the
    vectors stored in ``index``. Raises :class:`InvalidInputError` when no node is left.
    """
    import networkx as nx

    if features:
        F = read_vectors(features, "features")
        fids = read_ids(feature_ids, F.shape[0]) if feature_ids else index.ids().tolist()
        if len(fids) != F.shape[0]:
            raise InvalidInputError(f"{F.shape[0]} feature rows but {len(fids)} feature ids")
        feat = dict(zip(fids, F))
    else:
        live = set(index.ids().tolist())
        nodes = [n for n in G.nodes() if n in live]
        feat = dict(zip(nodes, index.get(nodes))) if nodes else {}
    dropped = [n for n in G.nodes() if n not in feat]
    if dropped:
        G.remove_nodes_from(dropped)
    if G.number_of_nodes() == 0:
        raise InvalidInputError("no graph node has features (are the graph ids the index's ids?)")
    nx.set_node_attributes(G, {n: feat[n] for n in G.nodes()}, "embedding")
    return dropped
