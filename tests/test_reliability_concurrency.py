"""Concurrency guarantees (docs/reliability.md) under every Numba threading layer that loads
here: 8 threads sharing graph layers, attention modules and one index get the serial results,
and the process never aborts (each layer runs in its own child process)."""
from __future__ import annotations

import pytest

from _reliability import assert_child_ok, run_child

_SCRIPT = """
import threading, sys
import numpy as np
import ruvector_graph_attn as rga
from ruvector_graph_attn.threading_policy import kernels_locked, predicted_layer
import numba
if predicted_layer() == "unknown":
    print("SKIP")
    raise SystemExit(0)

rng = np.random.default_rng(0)
x = rng.normal(size=(300, 16)).astype(np.float32)
ei = rng.integers(0, 300, (2, 3000))
Q, K, V = (rng.normal(size=(32, 16)).astype(np.float32) for _ in range(3))
layers = [rga.graph.GATConv(16, 8, heads=2), rga.graph.GATv2Conv(16, 8), rga.graph.SAGEConv(16, 8),
          rga.graph.GINConv(rga.nn.Linear(16, 8))]
for layer in layers:
    layer.eval()
att = rga.ScaledDotProductAttention(dim=16)
sparse = rga.SparseAttention(dim=16)
idx = rga.HNSWIndex(dim=16, space="cosine", num_threads=2)
idx.add(np.arange(300), x)

def run_all():
    out = [layer(x, ei) for layer in layers]
    out.append(att.forward_batch(Q, K, V))
    out.append(sparse.forward_topk(Q, K, V, k=4))
    out.append(idx.search(x[:20], k=5)[1])
    out.append(idx.search(x[:5], k=5, filter=list(range(0, 300, 2)))[1])
    return out

ref = run_all()
bad = []
def worker():
    for _ in range(6):
        for a, b in zip(run_all(), ref):
            if a.shape != b.shape or not np.allclose(a, b, atol=1e-5):
                bad.append(1)
threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("LAYER", numba.threading_layer(), "PREDICTED", predicted_layer(), "LOCKED", kernels_locked(), "BAD", len(bad))
"""


@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
def test_threads_share_layers_attention_and_index(layer):
    proc = run_child(_SCRIPT, env={"NUMBA_THREADING_LAYER": layer}, timeout=600)
    assert_child_ok(proc)  # an abort (workqueue without the lock) would be exit code -6
    if proc.stdout.strip() == "SKIP":
        from _require import unavailable   # the test extra installs tbb: CI runs all three layers

        unavailable(f"Numba threading layer {layer!r}", "it cannot be loaded in this environment (pip install tbb)")
    words = proc.stdout.split()
    used = words[words.index("LAYER") + 1]
    assert used == layer
    assert words[words.index("BAD") + 1] == "0", proc.stdout
    assert words[words.index("PREDICTED") + 1] == used, proc.stdout  # the policy predicted Numba's choice
    assert (words[words.index("LOCKED") + 1] == "True") == (used == "workqueue"), proc.stdout


def test_prediction_of_the_abstract_layer_names():
    """``default``/``forksafe``/``threadsafe`` resolve as Numba resolves them (without launching)."""
    proc = run_child("""
        import numba
        from numba import config
        from ruvector_graph_attn.threading_policy import predicted_layer
        out = {}
        for name in ("default", "forksafe", "threadsafe", "safe", "workqueue"):
            config.THREADING_LAYER = name
            out[name] = predicted_layer()
        config.THREADING_LAYER = "default"
        print(out)
        import ast
        avail = {n: predicted_layer.__globals__["importlib"].util.find_spec("numba.np.ufunc." + m) is not None
                 for n, m in (("omp", "omppool"), ("workqueue", "workqueue"))}
        print(avail)
    """)
    assert_child_ok(proc)
    import ast
    out = ast.literal_eval(proc.stdout.splitlines()[0])
    assert out["workqueue"] == "workqueue"
    assert out["forksafe"] in ("tbb", "workqueue")  # never omp on Linux (not fork-safe)
    assert out["safe"] in ("tbb", "unknown")
    assert out["threadsafe"] in ("tbb", "omp", "unknown")
    assert out["default"] in ("tbb", "omp", "workqueue")
