"""Plain and multi-head attention on vectors, checked against the equations in numpy.

ScaledDotProductAttention: softmax(q K^T / sqrt(d)) V for one query or a batch, with the
weights it used. MultiHeadAttention: torch.nn.MultiheadAttention's parameter names and
semantics (batch_first), loaded from a state dict, with per-head weights and a key padding
mask.

Run: python examples/attention_basics.py
"""
import numpy as np

import ruvector_graph_attn as rga

rng = np.random.default_rng(0)
d, n = 16, 6
q = rng.normal(size=d).astype(np.float32)
K = rng.normal(size=(n, d)).astype(np.float32)
V = rng.normal(size=(n, 4)).astype(np.float32)

att = rga.ScaledDotProductAttention(dim=d)
out = att.forward(q, K, V)
w = att.attention_weights()[0]
z = K @ q / np.sqrt(d)
ref_w = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
print(f"one query over {n} keys: weights sum to {w.sum():.6f}, largest on key {int(w.argmax())}")
print(f"max |weights - numpy softmax|: {np.abs(w - ref_w).max():.2e}")
print(f"max |output - weights @ V|: {np.abs(out - ref_w @ V).max():.2e}")
Q = rng.normal(size=(3, d)).astype(np.float32)
batch = att.forward_batch(Q, K, V)
print(f"batch of 3 equals three single queries: {all(np.allclose(batch[i], att.forward(Q[i], K, V), atol=1e-6) for i in range(3))}")

# multi-head attention with weights given as a torch-style state dict (numpy arrays)
E, H, L, S = 8, 2, 3, 5
sd = {"in_proj_weight": rng.normal(scale=0.3, size=(3 * E, E)).astype(np.float32),
      "in_proj_bias": rng.normal(scale=0.1, size=3 * E).astype(np.float32),
      "out_proj.weight": rng.normal(scale=0.3, size=(E, E)).astype(np.float32),
      "out_proj.bias": rng.normal(scale=0.1, size=E).astype(np.float32)}
mha = rga.MultiHeadAttention(embed_dim=E, num_heads=H)
mha.load_state_dict(sd)
x_q = rng.normal(size=(1, L, E)).astype(np.float32)
x_kv = rng.normal(size=(1, S, E)).astype(np.float32)
mask = np.array([[False, False, False, False, True]])          # the last key is padding
y, per_head = mha(x_q, x_kv, x_kv, key_padding_mask=mask, average_attn_weights=False)

# the same in numpy, head by head
Wq, Wk, Wv = np.split(sd["in_proj_weight"], 3)
bq, bk, bv = np.split(sd["in_proj_bias"], 3)
qp, kp, vp = x_q[0] @ Wq.T + bq, x_kv[0] @ Wk.T + bk, x_kv[0] @ Wv.T + bv
hd = E // H
heads, ws = [], []
for h in range(H):
    s = qp[:, h * hd:(h + 1) * hd] @ kp[:, h * hd:(h + 1) * hd].T / np.sqrt(hd)
    s[:, mask[0]] = -np.inf
    a = np.exp(s - s.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    ws.append(a)
    heads.append(a @ vp[:, h * hd:(h + 1) * hd])
ref_y = np.concatenate(heads, axis=1) @ sd["out_proj.weight"].T + sd["out_proj.bias"]
print(f"multi-head output {tuple(y.shape)}, per-head weights {tuple(per_head.shape)}")
print(f"max |output - numpy|: {np.abs(y[0] - ref_y).max():.2e}; max |weights - numpy|: "
      f"{np.abs(per_head[0] - np.stack(ws)).max():.2e}")
print(f"weight on the padded key: {float(per_head[0, :, :, -1].max()):.1f}")
