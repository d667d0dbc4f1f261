"""What the framework adapters share: turning text into a query vector, hit metadata, node
texts, node ids read from other retrievers' documents, and the policy for documents that
carry no node id.

Nothing here imports a framework; the adapters in this package do, lazily.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, Sequence

import numpy as np

from ..errors import ConfigError, DimensionMismatchError, InvalidInputError
from ..validation import as_float_array, check_positive_int

__all__ = [
    "text_embedder", "make_query_vector", "hit_metadata", "node_texts", "node_properties", "read_node_id",
    "split_by_id", "reranked_order", "rerank_items", "WITHOUT_ID_POLICIES", "check_without_id", "check_id_key", "check_reranking_fields",
    "check_reranker", "EXPLANATION_KEYS",
]

#: what happens to a document / node that carries no node id (see docs/integrations.md)
#: ``"after"`` (default): kept unchanged (original score, original metadata), placed after every
#: re-ranked item, in the order it came; ``"drop"``: removed; ``"error"``: InvalidInputError.
WITHOUT_ID_POLICIES = ("after", "drop", "error")

#: metadata keys the adapters add next to the node id (kept out of LLM / embedding text where the
#: framework has such a switch)
EXPLANATION_KEYS = ("score", "vector_score", "rank", "vector_rank", "in_graph", "context_score", "attention")


def check_reranker(reranker: Any, needs: str = "search") -> Any:
    if reranker is None or not callable(getattr(reranker, needs, None)):
        raise InvalidInputError(f"reranker must be a GraphReranker (an object with {needs}(...)), "
                                f"got {type(reranker).__name__}")
    return reranker


def check_id_key(id_key: Any) -> Any:
    if not (callable(id_key) or (isinstance(id_key, str) and id_key)):
        raise InvalidInputError(f"id_key must be a non-empty string or a callable, got {id_key!r}")
    return id_key


def check_without_id(policy: Any) -> str:
    if policy not in WITHOUT_ID_POLICIES:
        raise ConfigError(f"without_id must be one of {', '.join(map(repr, WITHOUT_ID_POLICIES))}, got {policy!r}")
    return policy


def check_reranking_fields(adapter: Any) -> Optional[Callable[[list], Any]]:
    """Check a re-ranking adapter's ``reranker``, ``id_key``, ``top_n`` and ``without_id``;
    returns its normalised ``embedder``."""
    check_reranker(adapter.reranker, "rerank")
    check_id_key(adapter.id_key)
    if adapter.top_n is not None:
        check_k(adapter.top_n, "top_n")
    check_without_id(adapter.without_id)
    return text_embedder(adapter.embedder)


def text_embedder(embedder: Any) -> Optional[Callable[[list], np.ndarray]]:
    """Normalise an adapter's ``embedder`` to ``f(list[str]) -> [n, d]`` array (``None`` stays
    ``None``: the reranker's own ``embedder`` is used then).

    Accepted, in this order: an object with ``embed_query(text)`` (neo4j-graphrag ``Embedder``,
    LangChain ``Embeddings``), with ``get_query_embedding(text)`` (LlamaIndex ``BaseEmbedding``),
    with ``encode(list[str])`` (a sentence-transformers model), or a callable mapping a list of
    strings to an ``[n, d]`` array. The dtype is kept as the embedder gives it (lists of Python
    floats: float64), as :meth:`GraphReranker.embed` does.
    """
    if embedder is None:
        return None
    for name in ("embed_query", "get_query_embedding"):
        one = getattr(embedder, name, None)
        if callable(one):
            return lambda texts, one=one: [one(t) for t in texts]
    enc = getattr(embedder, "encode", None)
    if callable(enc):
        return lambda texts: enc(list(texts))
    if callable(embedder):
        return lambda texts: embedder(list(texts))
    raise InvalidInputError(
        f"embedder must be a callable list[str] -> [n, d] array or have embed_query / "
        f"get_query_embedding / encode, got {type(embedder).__name__}")


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise InvalidInputError(f"query must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInputError("query text is empty; expected a non-empty string")
    return text


def make_query_vector(reranker: Any, embed: Optional[Callable[[list], Any]], text: Any = None,
                      vector: Any = None) -> np.ndarray:
    """One query vector: ``vector`` as given, else the text embedded by the adapter's ``embed``
    or, without one, by the reranker's own embedder (:meth:`GraphReranker.embed`).

    Exactly one of ``text`` and ``vector`` must be given. The vector's shape, finiteness and
    dimension are checked by the reranker when it is used."""
    if (text is None) == (vector is None):
        raise InvalidInputError("give exactly one of a query text and a query vector")
    if vector is not None:
        return as_float_array(vector, "query vector", ndim=1)
    text = _check_text(text)
    if embed is None:
        if getattr(reranker, "embedder", None) is None:
            raise ConfigError("a text query needs an embedder: pass embedder=... to the adapter or the "
                              "GraphReranker (a callable list[str] -> [n, d] array, or an object with embed_query)")
        return reranker.embed([text])[0]
    try:
        out = embed([text])
    except Exception as exc:  # noqa: BLE001 - any embedder failure is reported as the library's error
        raise InvalidInputError(f"the embedder failed on the query: {type(exc).__name__}: {exc}") from exc
    try:
        arr = np.asarray(out)
        if arr.dtype.kind not in "fiu":
            arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the embedder must return numbers shaped [n, d]: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != 1:
        raise DimensionMismatchError((1, "d"), arr.shape, "embedder output shape for one text")
    return as_float_array(arr[0], "embedded query", ndim=1)


def plain(v: Any) -> Any:
    """numpy scalars -> Python scalars (metadata must serialise)."""
    return v.item() if isinstance(v, np.generic) else v


def hit_metadata(hit: Any, id_key: str) -> dict:
    """A re-ranked hit as metadata: the node id under ``id_key``, ``score``, ``vector_score``,
    ``rank``, ``vector_rank``, ``in_graph``, ``context_score`` and ``attention`` (a list of
    ``[neighbour id, weight]`` pairs, largest first)."""
    d = hit.to_dict()
    meta = {id_key: d.pop("id")}
    meta.update(d)
    return meta


def check_k(k: Any, name: str = "k") -> int:
    return check_positive_int(k, name)


def node_properties(graph: Any, ids: Sequence[Hashable]) -> list:
    """Stored properties of each node (``None`` for a node the graph does not have), without the
    feature vector: NetworkX node attributes, or Neo4j node properties (one round trip)."""
    ids = list(ids)
    if not ids:
        return []
    G = getattr(graph, "G", None)
    if G is not None and hasattr(G, "nodes"):
        fk = getattr(graph, "feature_key", None)
        out = []
        for i in ids:
            if i in G:
                out.append({k: v for k, v in G.nodes[i].items() if k != fk})
            else:
                out.append(None)
        return out
    read = getattr(graph, "read", None)
    if callable(read) and hasattr(graph, "_label") and hasattr(graph, "_idp"):
        skip = {graph.embedding_property, getattr(graph, "blob_property", None)}
        recs = read(f"UNWIND $ids AS i MATCH (n:{graph._label} {{{graph._idp}: i}}) RETURN i, properties(n) AS p",
                    {"ids": [plain(i) for i in ids]}, what="reading node properties")
        found = {r["i"]: {k: v for k, v in dict(r["p"]).items() if k not in skip} for r in recs}
        return [found.get(plain(i)) for i in ids]
    return [None] * len(ids)


def node_texts(graph: Any, ids: Sequence[Hashable], texts: Any = None, text_key: str = "text",
               props: Optional[list] = None) -> list:
    """The text of each node: ``texts[id]`` (a mapping) or ``texts(id)`` (a callable) when given,
    else the node's ``text_key`` property, else ``str`` of its properties (``""`` when the graph
    has nothing for it)."""
    ids = list(ids)
    if texts is not None:
        if callable(texts):
            out = [texts(i) for i in ids]
        else:
            try:
                out = [texts[i] for i in ids]
            except KeyError as exc:
                from ..errors import UnknownIdError

                raise UnknownIdError([exc.args[0]], "texts") from None
        return ["" if t is None else str(t) for t in out]
    props = node_properties(graph, ids) if props is None else props
    out = []
    for p in props:
        if not p:
            out.append("")
        elif text_key in p and p[text_key] is not None:
            out.append(str(p[text_key]))
        else:
            out.append(str(p))
    return out


def read_node_id(meta: Any, id_key: Any, item: Any = None) -> Any:
    """The node id carried by a document / node: ``id_key(item)`` when ``id_key`` is callable,
    else ``meta[id_key]``. ``None`` (or a missing key) means "no node id"; an unhashable value
    is an :class:`InvalidInputError`."""
    if callable(id_key):
        v = id_key(item)
    else:
        v = (meta or {}).get(id_key)
    if v is None:
        return None
    if isinstance(v, (list, dict, set, np.ndarray)) or isinstance(v, float) and not np.isfinite(v):
        raise InvalidInputError(f"node id {v!r} in the metadata is not a usable id (expected an int or a string)")
    try:
        hash(v)
    except TypeError:
        raise InvalidInputError(f"node id {v!r} in the metadata is not hashable") from None
    return plain(v)


def split_by_id(ids: list, without_id: str) -> tuple:
    """Positions of items with an id, their distinct ids in first-seen order, and positions of
    items without one (refused under ``without_id="error"``)."""
    with_pos = [p for p, i in enumerate(ids) if i is not None]
    without_pos = [p for p, i in enumerate(ids) if i is None]
    if without_pos and without_id == "error":
        raise InvalidInputError(f"{len(without_pos)} item(s) carry no node id (first at position {without_pos[0]}); "
                                f"without_id='error' refuses them")
    uniq = list(dict.fromkeys(ids[p] for p in with_pos))
    return with_pos, uniq, without_pos


def reranked_order(ids: list, hits: list, without_id: str) -> list:
    """``(position, hit or None)`` in output order: the items with an id by their node's re-ranked
    position (items sharing a node keep their input order), then -- under ``"after"`` -- the
    items without an id in input order."""
    rank_of = {h.id: r for r, h in enumerate(hits)}
    hit_of = {h.id: h for h in hits}
    with_pos = [p for p, i in enumerate(ids) if i is not None and i in rank_of]
    with_pos.sort(key=lambda p: (rank_of[ids[p]], p))
    out = [(p, hit_of[ids[p]]) for p in with_pos]
    if without_id == "after":
        out += [(p, None) for p, i in enumerate(ids) if i is None]
    return out


def rerank_items(reranker: Any, q: Any, items: list, ids: list, without_id: str, top_n: Optional[int],
                 rebuild: Callable[[Any, Any], Any], scores: Optional[Callable[[list], list]] = None) -> list:
    """Re-rank framework items by their node ids: the distinct ids go to ``reranker.rerank`` (with
    ``scores(distinct ids)`` as the candidates' own scores when given), items come back in the
    :func:`reranked_order`, each with a hit rebuilt by ``rebuild(item, hit)`` and each without an
    id unchanged; at most ``top_n``."""
    _, uniq, _ = split_by_id(ids, without_id)
    own = scores(uniq) if (scores is not None and uniq) else None
    hits = reranker.rerank(q, uniq, candidate_scores=own, k=len(uniq)) if uniq else []
    out = [items[p] if h is None else rebuild(items[p], h) for p, h in reranked_order(ids, hits, without_id)]
    return out if top_n is None else out[:top_n]
