"""Candidate indexes: HNSW on hnswlib with safe persistence."""
from .hnsw import DEFAULT_EF, HNSWIndex

__all__ = ["HNSWIndex", "DEFAULT_EF"]
