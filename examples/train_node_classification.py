"""Train a two-layer GAT for node classification with numpy only, then save and reload it.

The data is a small Cora-shaped synthetic citation graph (``training.datasets.cora_like``:
sparse bag-of-words features, 7 classes, homophilous edges, the Planetoid split of 20
labelled nodes per class).

Run: python examples/train_node_classification.py
"""
import os
import tempfile

import numpy as np

import ruvector_graph_attn as rga
from ruvector_graph_attn.training.datasets import cora_like

data = cora_like(seed=0, num_nodes=600, num_features=300, num_undirected_edges=1200, num_val=150, num_test=300)
print(f"graph: {data.num_nodes} nodes, {data.edge_index.shape[1]} directed edges, {data.x.shape[1]} features, "
      f"{data.num_classes} classes, {int(data.train_mask.sum())} training labels")

rng = np.random.default_rng(0)
model = rga.graph.GraphSequential([
    rga.nn.Dropout(0.5),
    rga.graph.GATConv(data.x.shape[1], 8, heads=4, dropout=0.5, rng=rng),
    rga.nn.ELU(),
    rga.nn.Dropout(0.5),
    rga.graph.GATConv(32, data.num_classes, heads=1, concat=False, dropout=0.5, rng=rng),
])
opt = rga.training.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
trainer = rga.training.NodeClassificationTrainer(model, opt, max_epochs=60, patience=20, seed=0,
                                                 progress=False)
history = trainer.fit(data.x, data.edge_index, data.y, data.train_mask, data.val_mask)
acc = trainer.evaluate(data.x, data.edge_index, data.y, data.test_mask)
print(f"trained {len(history)} epochs; first-epoch train loss {history[0]['loss']:.4f}, "
      f"last {history[-1]['loss']:.4f}")
print(f"test accuracy: {acc:.4f} (chance, the majority class: {np.bincount(data.y).max() / data.num_nodes:.4f})")

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "gat.rgackpt")
    rga.save_checkpoint(model, path)
    loaded = rga.load_checkpoint(path)
    model.eval()
    loaded.eval()
    same = np.array_equal(model(data.x, data.edge_index), loaded(data.x, data.edge_index))
    print(f"checkpoint: {os.path.getsize(path)} bytes; reloaded model gives identical logits: {same}")
