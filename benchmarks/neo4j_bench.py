"""Neo4j connector benchmark (see ruvector_graph_attn/bench/neo4j.py)."""
from ruvector_graph_attn.bench.neo4j import main

raise SystemExit(main())
