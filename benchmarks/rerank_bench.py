"""Re-ranking latency benchmark (see ruvector_graph_attn/bench/rerank.py)."""
from ruvector_graph_attn.bench.rerank import main

raise SystemExit(main())
