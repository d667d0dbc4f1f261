"""Sparse attention benchmark (see ruvector_graph_attn/bench/sparse.py)."""
from ruvector_graph_attn.bench.sparse import main

raise SystemExit(main())
