"""``ruvector-graph-attn serve``: the HTTP/JSON service over an index and a graph.

The index is a directory from ``ruvector-graph-attn index build``; the graph is a GraphML
file or an edge list (features as for ``search``), or a Neo4j database (``--neo4j-uri``; the
password comes from ``NEO4J_PASSWORD``). ``--layer gat=CKPT`` (repeatable) loads trained layers
for the layer scorers. The service listens on 127.0.0.1 unless ``--host`` says otherwise.

Authentication: every request needs ``Authorization: Bearer <token>`` where the token is read
from the environment variable named by ``--token-env`` (default ``RGA_SERVICE_TOKEN``); it is
never accepted on the command line and never logged. ``--no-auth`` turns the check off.
When the service is ready it prints ``RGA-SERVICE-READY http://HOST:PORT`` on stdout
(``--port 0`` picks a free port). SIGTERM or Ctrl-C stop it gracefully: running requests
finish (up to ``--shutdown-timeout`` seconds), then the process exits with code 0.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import re
import signal
import socket
import sys

from ..errors import ConfigError, InvalidInputError
from .search import add_pipeline_args

READY_PREFIX = "RGA-SERVICE-READY "
TOKEN_ENV = "RGA_SERVICE_TOKEN"


def build_parser(prog: str = "ruvector-graph-attn serve") -> argparse.ArgumentParser:
    # no abbreviations: "--token SECRET" must be an error, not an abbreviation of --token-env
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--index", required=True, help="index directory (from `index build`)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--graph", help="GraphML file or edge list (source target per line)")
    g.add_argument("--neo4j-uri", help="a Neo4j database as the graph (bolt://...; password from NEO4J_PASSWORD)")
    p.add_argument("--features", help=".npy/.csv node features (default: the index's vectors)")
    p.add_argument("--feature-ids", help="ids of the --features rows (default: the index's ids in order)")
    p.add_argument("--neo4j-user", default="neo4j")
    p.add_argument("--neo4j-database", default="neo4j")
    p.add_argument("--neo4j-label", default="Item")
    p.add_argument("--neo4j-id-property", default="id")
    p.add_argument("--neo4j-embedding-property", default="embedding")
    p.add_argument("--layer", action="append", default=[], metavar="SCORER=CKPT",
                   help="trained layer for a layer scorer, e.g. gat=model.ckpt (repeatable)")
    p.add_argument("--scorer", default="attention", help="default scorer (requests may choose another)")
    add_pipeline_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (0: a free one)")
    p.add_argument("--token-env", default=TOKEN_ENV,
                   help=f"environment variable holding the bearer token (default {TOKEN_ENV})")
    p.add_argument("--no-auth", action="store_true", help="serve without a token (anyone who can connect may call)")
    p.add_argument("--max-batch", type=int, default=256, help="query vectors per /search request")
    p.add_argument("--max-ids", type=int, default=10_000, help="ids per request")
    p.add_argument("--max-k", type=int, default=1_000, help="hits per query")
    p.add_argument("--max-body-bytes", type=int, default=8 << 20, help="request body size limit")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--workers", type=int, default=4, help="threads that run requests")
    p.add_argument("--shutdown-timeout", type=float, default=10.0,
                   help="seconds running requests get to finish at shutdown")
    p.add_argument("--access-log", action="store_true", help="log one line per request (never the token)")
    p.add_argument("--no-warm-up", action="store_true", help="skip compiling the scorers before serving")
    return p


def _layers(specs: list) -> dict:
    from .search import _LAYER_KINDS, load_scorer_layer

    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or name not in _LAYER_KINDS or not path:
            raise InvalidInputError(f"--layer must be SCORER=CKPT with SCORER one of {', '.join(_LAYER_KINDS)}, "
                                    f"got {spec!r}")
        out[name] = load_scorer_layer(path, name)
    return out


def load_engine(args: argparse.Namespace):
    """The :class:`~ruvector_graph_attn.service.Engine` described by the command's arguments."""
    from ..index.hnsw import HNSWIndex
    from ..service.engine import Engine, Limits

    index = HNSWIndex.load(args.index)
    if args.graph:
        from ..connectors.networkx import NetworkXGraph
        from ._io import attach_features, read_graph

        G = read_graph(args.graph)
        dropped = attach_features(G, index, args.features, args.feature_ids)
        if dropped:
            print(f"warning: {len(dropped)} graph node(s) without features were dropped (e.g. {dropped[0]!r})",
                  file=sys.stderr)
        graph = NetworkXGraph(G).refresh()
    else:
        from ..connectors.neo4j import Neo4jGraph

        pw = os.environ.get("NEO4J_PASSWORD")
        graph = Neo4jGraph(args.neo4j_uri, auth=(args.neo4j_user, pw) if pw is not None else None,
                           database=args.neo4j_database, label=args.neo4j_label,
                           id_property=args.neo4j_id_property, embedding_property=args.neo4j_embedding_property)
    limits = Limits(max_batch=args.max_batch, max_ids=args.max_ids, max_k=args.max_k)
    return Engine(index, graph, scorer=args.scorer, layers=_layers(args.layer), hops=args.hops,
                  candidates=args.candidates,
                  temperature="auto" if args.temperature is None else args.temperature,
                  blend="auto" if args.blend is None else args.blend, direction=args.direction,
                  max_neighbors=args.max_neighbors, limits=limits)


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
        from ..service.app import ServiceSettings, create_app
    except ImportError as exc:
        print(f"error: the service needs the 'service' extra (pip install 'ruvector-graph-attn[service]'): {exc}",
              file=sys.stderr)
        return 2
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", args.token_env or ""):
        raise ConfigError("--token-env must name an environment variable (letters, digits, underscore)")
    if args.no_auth:
        token = None
    else:
        token = os.environ.get(args.token_env)
        if not token:
            raise ConfigError(f"set the bearer token in the environment variable {args.token_env} "
                              f"(or pass --no-auth to serve without one)")
    settings = ServiceSettings(token=token, auth=not args.no_auth, max_body_bytes=args.max_body_bytes,
                               timeout=args.timeout, workers=args.workers)
    engine = load_engine(args)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if not _is_loopback(args.host):
        print(f"warning: listening on {args.host}, reachable from other machines; serve it behind a TLS proxy "
              f"(docs/service.md)", file=sys.stderr)

    def ready() -> None:
        print(f"{READY_PREFIX}http://{shown}:{port}", flush=True)
        print(f"serving {len(engine.index)} items, graph {type(engine.graph).__name__}, "
              f"auth {'off' if args.no_auth else 'bearer token from $' + args.token_env}", file=sys.stderr, flush=True)

    app = create_app(engine, settings, warm_up=not args.no_warm_up, on_ready=ready)
    config = uvicorn.Config(app, log_level="info" if args.access_log else "warning", access_log=args.access_log,
                            timeout_graceful_shutdown=args.shutdown_timeout, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn handles SIGINT/SIGTERM itself (graceful shutdown) and re-raises the signal when it is
    # done; these handlers absorb that re-raise so a requested stop exits with code 0
    stop = []
    old = {s: signal.signal(s, lambda signum, frame: stop.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for s, h in old.items():
            signal.signal(s, h)
    print("service stopped", file=sys.stderr, flush=True)
    return 0
