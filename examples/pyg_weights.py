"""Run a GATConv from PyTorch Geometric-style weights without PyTorch.

The weights are a ``state_dict`` of numpy arrays with PyG's names and shapes (what
``{k: v.numpy() for k, v in pyg_layer.state_dict().items()}`` gives). The example checks the
output against the GAT equations written out in numpy, and, when torch_geometric is importable,
against PyG itself on the same weights.

Run: python examples/pyg_weights.py
"""
import numpy as np

import ruvector_graph_attn as rga

rng = np.random.default_rng(0)
in_ch, out_ch, heads, n = 6, 4, 2, 7
state_dict = {                                              # PyG GATConv(6, 4, heads=2) names/shapes
    "lin.weight": rng.standard_normal((heads * out_ch, in_ch)).astype(np.float32) * 0.5,
    "att_src": rng.standard_normal((1, heads, out_ch)).astype(np.float32),
    "att_dst": rng.standard_normal((1, heads, out_ch)).astype(np.float32),
    "bias": rng.standard_normal(heads * out_ch).astype(np.float32) * 0.1,
}
x = rng.standard_normal((n, in_ch)).astype(np.float32)
edge_index = np.array([[0, 1, 2, 3, 4, 5, 6, 0, 2], [1, 2, 3, 4, 5, 6, 0, 3, 5]], dtype=np.int64)

gat = rga.graph.GATConv(in_ch, out_ch, heads=heads, concat=True, negative_slope=0.2, add_self_loops=True)
gat.load_state_dict(state_dict)
gat.eval()
out, (ei, alpha) = gat(x, edge_index, return_attention_weights=True)
print(f"output shape {out.shape}, attention over {ei.shape[1]} edges (with self loops) x {alpha.shape[1]} heads")

# the same layer from its equations: h = W x; e_ji = LeakyReLU(a_src.h_j + a_dst.h_i) per head;
# alpha_ji = softmax of e over the edges into i (self loop included); out_i = sum_j alpha_ji h_j + b
h = (x.astype(np.float64) @ state_dict["lin.weight"].T).reshape(n, heads, out_ch)
src = np.concatenate([edge_index[0], np.arange(n)])
dst = np.concatenate([edge_index[1], np.arange(n)])
a_s = (h * state_dict["att_src"]).sum(-1)                   # [n, heads]
a_d = (h * state_dict["att_dst"]).sum(-1)
e = a_s[src] + a_d[dst]
e = np.where(e > 0, e, 0.2 * e)
ref = np.zeros((n, heads, out_ch))
for i in range(n):
    into = dst == i
    w = np.exp(e[into] - e[into].max(0))
    w /= w.sum(0)
    ref[i] = (w[:, :, None] * h[src[into]]).sum(0)
ref = ref.reshape(n, heads * out_ch) + state_dict["bias"]
print(f"max abs difference to the numpy equations: {np.abs(out - ref).max():.2e}")
print(f"attention into node 3 (head 0): {', '.join(f'{w:.4f}' for w in alpha[ei[1] == 3, 0])} "
      f"(sum {alpha[ei[1] == 3, 0].sum():.6f})")

try:
    import torch
    from torch_geometric.nn import GATConv as PyGGATConv
except ImportError:
    print("torch_geometric is not installed: PyG comparison skipped")
else:
    pyg = PyGGATConv(in_ch, out_ch, heads=heads, concat=True, negative_slope=0.2, add_self_loops=True)
    pyg.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()})
    pyg.eval()
    with torch.no_grad():
        ref_pyg = pyg(torch.from_numpy(x), torch.from_numpy(edge_index)).numpy()
    print(f"max abs difference to torch_geometric {__import__('torch_geometric').__version__}: "
          f"{np.abs(out - ref_pyg).max():.2e}")
