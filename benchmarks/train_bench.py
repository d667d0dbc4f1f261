"""Node-classification training benchmark vs PyG (see ruvector_graph_attn/bench/train.py)."""
from ruvector_graph_attn.bench.train import main

raise SystemExit(main())
