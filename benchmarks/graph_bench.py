"""Graph layer benchmark (see ruvector_graph_attn/bench/graph.py)."""
from ruvector_graph_attn.bench.graph import main

raise SystemExit(main())
