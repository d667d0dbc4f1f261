"""``ruvector-graph-attn demo``: vector-only vs graph re-ranked search on a generated
citation graph, with the attention weights that explain each move.

The dataset is generated, not shipped: ``rerank.synthetic.latent_citation_graph`` draws
papers on topics in a low-dimensional latent space, gives each an embedding that is a noisy
projection of its latent position, and lets papers cite latent neighbours. Generating it
is deterministic (fixed seeds), takes well under a second, needs no download and no binary
file in the repository, and -- unlike a real corpus of that size -- comes with an exact
ground truth (a query's relevant papers are its latent nearest neighbours), so the demo can
show which hits are actually relevant and by how much the graph helps.

With ``--neo4j URI`` the same dataset is loaded into Neo4j (``Neo4jGraph.load_arrays``, under a
fresh label that is deleted afterwards unless ``--neo4j-keep``) and the neighbourhoods are
expanded by Cypher on the server instead of NetworkX (HNSW candidates + Neo4j expansion);
``--neo4j start`` runs a throwaway local server (``connectors/neo4j/server.py``, needs Java 17+
and Maven) for the duration of the demo. The password is read from an environment variable
(``--neo4j-password-env``, default ``NEO4J_PASSWORD``), never from the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import time
import uuid

import numpy as np


class _RefusePassword(argparse.Action):
    """``--neo4j-password`` exists only to refuse it without echoing the value (argparse would
    print an unrecognised argument, password included, in its error message)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("passwords are not accepted on the command line (they end up in shell history and "
                     "process lists); put it in an environment variable and name that with "
                     "--neo4j-password-env VAR (default NEO4J_PASSWORD)")


def build_parser(prog: str = "ruvector-graph-attn demo") -> argparse.ArgumentParser:
    # allow_abbrev=False: a mistyped "--neo4j-password X" must not be taken for --neo4j-password-env
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--n", type=int, default=3000, help="papers in the generated graph")
    p.add_argument("--queries", type=int, default=3, help="queries shown in detail")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--scorer", default="attention", choices=("attention", "hyperbolic"))
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    g = p.add_argument_group("Neo4j mode (expand through Neo4j instead of NetworkX)")
    g.add_argument("--neo4j", metavar="URI|start",
                   help="load the dataset into the Neo4j server at URI (bolt://host:7687, neo4j://...) and expand "
                        "through it; 'start' runs a throwaway local server (needs Java 17+ and Maven)")
    g.add_argument("--neo4j-user", default=None, help="user name (default: $NEO4J_USER or 'neo4j')")
    g.add_argument("--neo4j-password-env", default=None, metavar="VAR",
                   help="name of the environment variable holding the password (default NEO4J_PASSWORD; "
                        "unset means no authentication)")
    g.add_argument("--neo4j-database", default="neo4j", help="database name (default neo4j)")
    g.add_argument("--neo4j-label", default=None,
                   help="node label for the demo's papers (default: a fresh RgaDemo<hex> label); it must not "
                        "exist yet")
    g.add_argument("--neo4j-keep", action="store_true",
                   help="keep the loaded papers in the database (default: delete them and their constraint)")
    g.add_argument("--neo4j-password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
    return p


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _neo4j_auth(args: argparse.Namespace):
    """``(user, password)`` from the environment, or ``None`` when no password variable is set.
    The variable's value is never printed; its name only when it looks like a variable name."""
    from ..errors import ConfigError

    user = args.neo4j_user or os.environ.get("NEO4J_USER") or "neo4j"
    var = args.neo4j_password_env
    if var is None:
        pw = os.environ.get("NEO4J_PASSWORD")
        return None if pw is None else (user, pw)
    if not _ENV_NAME.match(var):
        raise ConfigError("--neo4j-password-env takes the NAME of an environment variable (letters, digits, "
                          "underscores), not the password itself")
    pw = os.environ.get(var)
    if pw is None:
        raise ConfigError(f"environment variable {var} (named by --neo4j-password-env) is not set")
    return (user, pw)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _neo4j_graph(args: argparse.Namespace, data, stack: contextlib.ExitStack):
    """Yield ``(Neo4jGraph, info)`` holding ``data`` (loaded under a fresh label); on exit the
    papers and their uniqueness constraint are deleted (unless ``--neo4j-keep``) and a server
    started here is stopped."""
    from ..connectors.neo4j import Neo4jGraph, check_name
    from ..errors import ConfigError

    label = check_name(args.neo4j_label, "--neo4j-label") if args.neo4j_label else "RgaDemo" + uuid.uuid4().hex[:10]
    # the driver logs server notices ("label does not exist" for the fresh label's first count)
    # as warnings on stderr; they are expected here and would only clutter the demo's output
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    if args.neo4j == "start":
        from ..connectors.neo4j.server import Neo4jServer

        _log("starting a throwaway Neo4j server (the first run builds it with Maven) ...")
        srv = stack.enter_context(Neo4jServer(heap="768m", pagecache="64m"))
        uri, auth = srv.uri, srv.auth
    else:
        uri, auth = args.neo4j, _neo4j_auth(args)
    g = Neo4jGraph(uri, auth=auth, database=args.neo4j_database, label=label, id_property="id",
                   embedding_property="embedding", relationship_types=["CITES"], direction="both")
    stack.callback(g.close)
    existing = g.count()
    if existing:  # before anything is written: the cleanup below deletes the label's nodes
        raise ConfigError(f"label {label!r} already has {existing} nodes in {g.uri}; choose a new --neo4j-label "
                          f"(the demo deletes its label's nodes afterwards)")
    try:
        t0 = time.perf_counter()
        g.load_arrays(np.arange(data.n), data.x, edges=data.edges.T, rel_type="CITES", merge=False)
        info = {"source": "neo4j", "uri": g.uri, "database": args.neo4j_database, "label": label,
                "load_seconds": time.perf_counter() - t0, "kept": bool(args.neo4j_keep),
                "server": "throwaway (--neo4j start)" if args.neo4j == "start" else "external"}
        yield g, info
    finally:
        if args.neo4j != "start" and not args.neo4j_keep:  # a throwaway server takes its data with it
            _drop_label(g, label)


def _drop_label(g, label: str) -> None:
    """Delete the demo's nodes (with their relationships) and the constraints on its label."""
    from ..connectors.neo4j import quote

    g.write_tx(lambda tx: tx.run(f"MATCH (n:{quote(label)}) DETACH DELETE n").consume(), "demo cleanup")
    names = [r["name"] for r in g.read("SHOW CONSTRAINTS YIELD name, labelsOrTypes "
                                       "WHERE $label IN labelsOrTypes RETURN name", {"label": label},
                                       what="demo cleanup")]
    for name in names:
        g.write_tx(lambda tx, nm=name: tx.run(f"DROP CONSTRAINT {quote(nm)} IF EXISTS").consume(), "demo cleanup")


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        return _run(args, stack)


def _run(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    from rich.console import Console
    from rich.table import Table

    import ruvector_graph_attn as rga
    from ..connectors.networkx import NetworkXGraph
    from ..rerank.synthetic import TOPIC_NAMES, latent_citation_graph

    t0 = time.perf_counter()
    n_topics = 8
    data = latent_citation_graph(n=args.n, dim=32, latent_dim=8, n_topics=n_topics, degree=10,
                                 noise=0.2, homophily=0.9, seed=args.seed)
    index = rga.HNSWIndex(dim=32, space="cosine", max_elements=data.n, num_threads=1, seed=args.seed)
    index.add(np.arange(data.n), data.x)
    if args.neo4j:
        graph, graph_info = stack.enter_context(_neo4j_graph(args, data, stack))
    else:
        graph, graph_info = NetworkXGraph(data.to_networkx()), {"source": "networkx"}
    rr = rga.GraphReranker(index, graph, scorer=args.scorer, hops=1, candidates=100)
    vec = rga.GraphReranker(index, graph, scorer="vector", hops=1, candidates=100)
    # summary over 200 held-out queries, then a few shown in detail
    n_eval = 200
    Q, relevant, qtopic = data.queries(n_eval, args.k, seed=args.seed + 1)
    re_hits = rr.search_batch(Q, args.k)
    ve_hits = vec.search_batch(Q, args.k)
    rec_v = np.mean([len({h.id for h in hv} & set(r.tolist())) / args.k for hv, r in zip(ve_hits, relevant)])
    rec_r = np.mean([len({h.id for h in hr} & set(r.tolist())) / args.k for hr, r in zip(re_hits, relevant)])
    elapsed = time.perf_counter() - t0

    def topic(i):
        return TOPIC_NAMES[int(data.topic[i]) % len(TOPIC_NAMES)]

    shown = []
    for b in range(min(args.queries, n_eval)):
        rel = set(relevant[b].tolist())
        shown.append({
            "query": b, "query_topic": TOPIC_NAMES[int(qtopic[b]) % len(TOPIC_NAMES)],
            "relevant": sorted(rel),
            "vector": [{"id": h.id, "topic": topic(h.id), "relevant": h.id in rel, "score": h.score}
                       for h in ve_hits[b]],
            "reranked": [{**h.to_dict(), "topic": topic(h.id), "relevant": h.id in rel} for h in re_hits[b]],
        })
    summary = {"queries": n_eval, "k": args.k, "recall_vector": float(rec_v), "recall_reranked": float(rec_r),
               "ratio": float(rec_r / rec_v) if rec_v > 0 else None, "seconds": elapsed}
    dataset = {"papers": data.n, "citations": int(data.edges.shape[1]), "topics": n_topics, "dim": 32,
               "generator": "latent_citation_graph (generated, deterministic)", "seed": args.seed,
               "graph": graph_info}
    if args.json:
        print(json.dumps({"dataset": dataset, "scorer": args.scorer, "summary": summary, "queries": shown},
                         indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
        return 0

    con = Console()
    if not con.is_terminal:
        con = Console(width=110)
    con.print(f"[bold]ruvector-graph-attn demo[/]: {data.n} papers on {n_topics} topics, "
              f"{dataset['citations']} citations (generated, seed {args.seed}). Embeddings are noisy views "
              f"of each paper's latent position; citations link latent neighbours. A query's relevant papers "
              f"(marked [green]*[/]) are its {args.k} latent nearest neighbours.")
    if graph_info["source"] == "neo4j":
        con.print(f"Graph in Neo4j at {graph_info['uri']} ({graph_info['server']} server, label "
                  f"{graph_info['label']}, loaded in {graph_info['load_seconds']:.1f}s): HNSW candidates, "
                  f"neighbourhoods expanded by Cypher on the server.")
    for s in shown:
        vec_rank = {h["id"]: i for i, h in enumerate(s["vector"])}
        t = Table(title=f"query {s['query']} (a '{s['query_topic']}' paper): vector-only vs re-ranked ({args.scorer})",
                  show_lines=False)
        t.add_column("#", justify="right")
        t.add_column("vector-only")
        t.add_column("re-ranked")
        t.add_column("move", justify="right")
        t.add_column("why: top attention weights of the re-ranked hit")
        for i in range(len(s["reranked"])):
            v = s["vector"][i] if i < len(s["vector"]) else None
            r = s["reranked"][i]
            vcell = f"{'[green]*[/] ' if v['relevant'] else '  '}paper {v['id']}" if v else ""
            rcell = f"{'[green]*[/] ' if r['relevant'] else '  '}paper {r['id']}"
            if r["id"] in vec_rank:
                d = vec_rank[r["id"]] - i
                move = f"[green]up {d}[/]" if d > 0 else (f"[red]down {-d}[/]" if d < 0 else "=")
            else:
                move = f"[green]new (was {r['vector_rank'] + 1})[/]"
            top = [(nid, w) for nid, w in r["attention"] if nid != r["id"]][:3]
            why = ", ".join(f"paper {nid} {w:.2f}" for nid, w in top)
            t.add_row(str(i + 1), vcell, rcell, move, why or "(no neighbours)")
        con.print(t)
        nv = sum(h["relevant"] for h in s["vector"])
        nr = sum(h["relevant"] for h in s["reranked"])
        con.print(f"relevant in top {args.k}: vector-only {nv}, re-ranked {nr}\n")
    con.print(f"[bold]over {n_eval} queries[/]: recall@{args.k} vector-only {rec_v:.3f}, "
              f"re-ranked {rec_r:.3f} ({summary['ratio']:.2f}x); took {elapsed:.1f}s")
    return 0
