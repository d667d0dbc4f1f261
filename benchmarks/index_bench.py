"""HNSW recall-vs-ef and throughput benchmark (see ruvector_graph_attn/bench/index.py)."""
from ruvector_graph_attn.bench.index import main

raise SystemExit(main())
