"""Request and response bodies of the HTTP/JSON service (pydantic v2; also the OpenAPI schema).

Numbers must be finite (``NaN``/``Infinity`` are refused with 422); ids are integers or
strings, as in the index. Limits (batch size, number of ids) are checked by the engine and
answered with 413 ``InputTooLargeError``.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Id = Union[int, str]
Vector = list[float]

__all__ = [
    "Id", "Vector", "ScorerParams", "SearchRequest", "RerankRequest", "EmbedRequest", "TraverseStep",
    "TraverseRequest", "VectorsRequest", "VectorsResponse", "Hit", "SearchResponse", "RerankResponse", "EmbedResponse", "TraversePath",
    "TraverseResponse", "HealthResponse", "ErrorResponse",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ScorerParams(_Body):
    """Scorer and pipeline parameters; anything left out takes the server's default."""

    scorer: Optional[str] = Field(None, description="scorer name (the server's default when omitted)",
                                  examples=["attention"])
    hops: Optional[int] = Field(None, description="neighbourhood radius (0..8)")
    candidates: Optional[int] = Field(None, description="index hits re-ranked per query (search only)")
    temperature: Optional[float] = Field(None, description="softmax temperature of the attention scorers (> 0)")
    blend: Optional[float] = Field(None, description="weight of the graph context against the vector score, 0..1")
    direction: Optional[Literal["out", "in", "both"]] = None
    max_neighbors: Optional[int] = Field(None, description="cap on each expanded node's neighbours")


class SearchRequest(ScorerParams):
    """One query (``vector``) or many (``vectors``); exactly one of the two."""

    vector: Optional[Vector] = Field(None, description="one query vector [D]")
    vectors: Optional[list[Vector]] = Field(None, description="several query vectors [B, D]")
    k: int = Field(10, description="hits per query")
    filter: Optional[list[Id]] = Field(None, description="allow-list of ids: only these can be returned")


class RerankRequest(ScorerParams):
    """Candidates from another retriever, re-ranked with the graph around them."""

    vector: Vector = Field(..., description="the query vector [D]")
    ids: list[Id] = Field(..., description="candidate ids (from any retriever)")
    scores: Optional[list[float]] = Field(
        None, description="the retriever's scores of the candidates (same order); computed from the "
                          "graph features when omitted")
    k: int = Field(10, description="hits returned")


class EmbedRequest(_Body):
    """One vector for the subgraph around ``ids``."""

    ids: list[Id] = Field(..., description="node ids whose neighbourhood is embedded")
    method: Literal["attention", "mean", "sum", "max"] = "attention"
    query: Optional[Vector] = Field(None, description="attention query (default: the mean feature of ids)")
    hops: Optional[int] = Field(None, description="neighbourhood radius (the server's default when omitted)")


class VectorsRequest(_Body):
    """Stored vectors of index ids (what a client needs to query "like node X")."""

    ids: list[Id] = Field(..., description="index ids")


class VectorsResponse(BaseModel):
    vectors: list[Vector]
    dim: int


class TraverseStep(_Body):
    relationship_types: Optional[list[str]] = Field(None, description="types to follow (Neo4j graphs)")
    direction: Literal["out", "in", "both"] = "out"
    top_k: int = Field(3, description="neighbours kept per path end")


class TraverseRequest(_Body):
    """Attention-ranked paths: each step keeps the ``top_k`` best-attended neighbours of each path end."""

    start_ids: list[Id]
    steps: list[TraverseStep] = Field(..., description="one entry per hop")
    query: Optional[Vector] = Field(None, description="attention query (default: each path end's own feature)")
    temperature: float = 1.0
    allow_revisit: bool = False


class Hit(BaseModel):
    id: Id
    score: float = Field(..., description="final score (larger is better)")
    vector_score: float = Field(..., description="the index's (or retriever's) own similarity")
    rank: int = Field(..., description="0-based position in the re-ranked list")
    vector_rank: int = Field(..., description="0-based position in the candidate list")
    in_graph: bool
    context_score: Optional[float] = None
    attention: list[tuple[Id, float]] = Field(
        ..., description="explanation: [neighbour id, weight] pairs, largest first")


class SearchResponse(BaseModel):
    results: list[list[Hit]] = Field(..., description="one ranked list per query vector")


class RerankResponse(BaseModel):
    results: list[Hit]


class EmbedResponse(BaseModel):
    vector: list[float]
    dim: int


class TraversePath(BaseModel):
    nodes: list[Id]
    weights: list[float]
    score: float
    rank: int


class TraverseResponse(BaseModel):
    paths: list[TraversePath]


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str
    dim: int
    index_size: int
    graph: str
    scorers: list[str]
    default_scorer: str


class ErrorResponse(BaseModel):
    error: str = Field(..., description="the library's error class, e.g. DimensionMismatchError")
    message: str
    status: int
