"""Shared pytest fixtures."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------- Neo4j
# One real Neo4j server for the whole session (connectors/neo4j/server.py builds and starts an
# embedded Neo4j 5.26 on a free port). NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD select an external
# server instead. When no server can be had: RGA_REQUIRE_NEO4J=1 (CI) fails the tests with the
# reason; otherwise they are skipped.
def _neo4j_unavailable(reason: str):
    import os

    if os.environ.get("RGA_REQUIRE_NEO4J") == "1":
        pytest.fail(f"Neo4j is required (RGA_REQUIRE_NEO4J=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"no Neo4j server: {reason}")


@pytest.fixture(scope="session")
def neo4j_server():
    """``(uri, auth, server)``: the session's Neo4j (``server`` is None for an external one)."""
    import os

    uri = os.environ.get("NEO4J_URI")
    if uri:
        user = os.environ.get("NEO4J_USER", "neo4j")
        pw = os.environ.get("NEO4J_PASSWORD")
        yield uri, ((user, pw) if pw is not None else None), None
        return
    from ruvector_graph_attn.connectors.neo4j.server import Neo4jServer, Neo4jServerError

    srv = Neo4jServer(heap="768m", pagecache="64m")
    try:
        srv.start()
    except Neo4jServerError as exc:
        _neo4j_unavailable(str(exc))
    try:
        yield srv.uri, srv.auth, srv
    finally:
        srv.stop()


@pytest.fixture
def label(neo4j_server):
    """A fresh Neo4j label for one test; its nodes are deleted afterwards."""
    import uuid

    uri, auth, _ = neo4j_server
    name = "T" + uuid.uuid4().hex[:12]
    yield name
    from neo4j import GraphDatabase

    with GraphDatabase.driver(uri, auth=auth) as d:
        d.execute_query(f"MATCH (n:`{name}`) DETACH DELETE n")
