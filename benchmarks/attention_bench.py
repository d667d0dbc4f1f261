"""Attention benchmark vs a plain numpy reference (see ruvector_graph_attn/bench/attention.py)."""
from ruvector_graph_attn.bench.attention import main

raise SystemExit(main())
