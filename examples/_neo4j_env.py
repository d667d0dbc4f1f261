"""Shared by the Neo4j examples: connect from NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD to a graph
under a fresh label, and remove that label's nodes and constraints afterwards."""
import os
import sys
import uuid

import ruvector_graph_attn as rga


def graph_from_env(**kwargs):
    """``(Neo4jGraph, label)`` for a fresh label; exits with what to set when NEO4J_URI is missing."""
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        sys.exit("set NEO4J_URI (and NEO4J_USER / NEO4J_PASSWORD) to a Neo4j 5.x server")
    password = os.environ.get("NEO4J_PASSWORD")
    auth = (os.environ.get("NEO4J_USER", "neo4j"), password) if password is not None else None
    label = "RgaExample" + uuid.uuid4().hex[:8]
    g = rga.connectors.Neo4jGraph(uri, auth=auth, label=label, id_property="id",
                                  embedding_property="embedding", **kwargs)
    return g, label


def drop_label(g, label):
    """Delete the example's nodes and the constraints created for its label, then close."""
    g.write_tx(lambda tx: tx.run(f"MATCH (n:`{label}`) DETACH DELETE n").consume(), "example cleanup")
    for rec in g.read("SHOW CONSTRAINTS YIELD name, labelsOrTypes WHERE $l IN labelsOrTypes RETURN name",
                      {"l": label}):
        g.write_tx(lambda tx, nm=rec["name"]: tx.run(f"DROP CONSTRAINT `{nm}`").consume(), "example cleanup")
    g.close()
