"""Manifold benchmark (see ruvector_graph_attn/bench/manifold.py)."""
from ruvector_graph_attn.bench.manifold import main

raise SystemExit(main())
