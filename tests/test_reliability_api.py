"""Regression tests: typed errors at public entries of attention, graph layers and the Neo4j
connector; float32 overflow reported, never returned as NaN; driver logs through logging."""
from __future__ import annotations

import logging

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import ConfigError, InvalidInputError, RgaError


@pytest.mark.parametrize("make", [
    lambda: rga.ScaledDotProductAttention(dim=4, dropout="x"),
    lambda: rga.ScaledDotProductAttention(dim=4, dropout=None),
    lambda: rga.graph.GINConv(rga.nn.Linear(2, 2), eps="x"),
    lambda: rga.graph.GINConv(rga.nn.Linear(2, 2), eps=float("nan")),
    lambda: rga.graph.GATConv(2, 2)(np.ones((2, 2)), [[0, 1], [1]]),
    lambda: rga.graph.SAGEConv(2, 2)(np.ones((2, 2)), [[0, 1], [1, [0]]]),
    lambda: rga.graph.GINConv(rga.nn.Linear(2, 2))(np.ones((2, 2)), "edges"),
])
def test_bad_constructor_and_call_arguments_are_typed(make):
    with pytest.raises(RgaError) as info:
        make()
    assert str(info.value)  # a message, naming the problem
    assert isinstance(info.value, (InvalidInputError, ConfigError))


def test_neo4j_arguments_are_typed_before_any_connection():
    g = rga.connectors.Neo4jGraph("bolt://127.0.0.1:1", auth=("u", "p"), verify=False, edge_properties=None)
    assert g.edge_properties == ()
    with pytest.raises(InvalidInputError, match="64-bit"):
        g.expand([2 ** 70])
    with pytest.raises(InvalidInputError):
        rga.connectors.Neo4jGraph("bolt://127.0.0.1:1", auth=("u", "p"), verify=False, edge_properties=5)


@pytest.mark.parametrize("make", [
    lambda: rga.graph.GATConv(16, 8, heads=2),
    lambda: rga.graph.GATv2Conv(16, 8),
    lambda: rga.graph.SAGEConv(16, 8),
    lambda: rga.graph.GINConv(rga.nn.Linear(16, 8)),
])
def test_float32_overflow_is_reported_not_returned(make):
    layer = make()
    x = np.full((4, 16), 3e38, np.float32)
    ei = np.array([[0, 1, 2], [1, 2, 3]])
    with np.errstate(all="ignore"), pytest.raises(InvalidInputError, match="overflowed"):
        layer(x, ei)
    y = layer(x.astype(np.float64), ei)  # float64 holds the same inputs
    assert np.isfinite(y).all()


def test_neo4j_driver_records_go_through_logging_not_stderr(capfd, caplog):
    from ruvector_graph_attn.connectors.neo4j.graph import route_driver_logs

    route_driver_logs()
    capfd.readouterr()
    with caplog.at_level(logging.WARNING, logger="ruvector_graph_attn.connectors.neo4j"):
        logging.getLogger("neo4j.pool").warning("Transaction failed and will be retried in %ss", 1.0)
    err = capfd.readouterr().err
    assert "retried" not in err  # not printed by Python's last-resort handler
    assert any("retried" in r.getMessage() and r.name == "neo4j.pool" for r in caplog.records)
