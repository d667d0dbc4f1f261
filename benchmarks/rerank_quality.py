"""Re-ranking quality benchmark (see ruvector_graph_attn/bench/rerank_quality.py)."""
from ruvector_graph_attn.bench.rerank_quality import main

raise SystemExit(main())
