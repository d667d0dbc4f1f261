"""Attention on the Poincare ball, and sparse (windowed) attention, checked against numpy.

* ``manifold.PoincareBall``: distance from the origin is ``2 artanh(|x|)`` (curvature 1);
  ``expmap0``/``logmap0`` are inverse maps between the tangent space at 0 and the ball.
* ``GeometricAttention``: weights ``softmax(-d(q, k_i)^2 / T)`` with the hyperbolic distance.
* ``SparseAttention.forward_windowed``: query ``i`` attends only to keys ``|i - j| <= w``,
  equal to dense attention with the other scores masked to -inf, but costs O(n * w).

Run: python examples/geometric_sparse.py
"""
import numpy as np

import ruvector_graph_attn as rga

rng = np.random.default_rng(0)

# --- the Poincare ball
ball = rga.manifold.PoincareBall(c=1.0)
p = np.array([0.6, 0.0])
print(f"d(0, (0.6, 0)) = {float(ball.dist(np.zeros(2), p)):.6f}  (2 artanh(0.6) = {2 * np.arctanh(0.6):.6f})")
v = rng.standard_normal((5, 3)) * 0.7
print(f"logmap0(expmap0(v)) == v: max abs error {np.abs(ball.logmap0(ball.expmap0(v)) - v).max():.1e}")

# --- geometric attention: a query near keys 0 and 3 attends to them, almost nothing to the far keys
keys = ball.expmap0(np.array([[0.5, 0.5], [-0.5, 0.4], [0.1, -0.9], [0.45, 0.55]]))
values = np.eye(4)
query = ball.expmap0(np.array([0.5, 0.52]))
geo = rga.GeometricAttention(manifold=ball, temperature=0.5)
out = geo.forward(query, keys, values)
w = geo.attention_weights()[0]
acosh_arg = 1 + 2 * ((query - keys) ** 2).sum(1) / ((1 - (query ** 2).sum()) * (1 - (keys ** 2).sum(1)))
d2 = np.arccosh(acosh_arg) ** 2                             # closed-form Poincare distance, c = 1
ref = np.exp(-d2 / 0.5) / np.exp(-d2 / 0.5).sum()
print("geometric attention weights: " + ", ".join(f"{x:.4f}" for x in w))
print(f"max abs difference to softmax(-d^2/T) in numpy: {np.abs(w - ref).max():.1e}; "
      f"output equals weights @ values: {np.allclose(out, w @ values)}")

# --- windowed sparse attention vs masked dense attention
n, dim, window = 64, 16, 3
Q = rng.standard_normal((n, dim)).astype(np.float32)
K = rng.standard_normal((n, dim)).astype(np.float32)
V = rng.standard_normal((n, dim)).astype(np.float32)
sparse = rga.SparseAttention(dim=dim)
out = sparse.forward_windowed(Q, K, V, window_size=window)
rows, cols, vals = sparse.attention_weights()
S = (Q.astype(np.float64) @ K.T) / np.sqrt(dim)
i, j = np.indices((n, n))
S[np.abs(i - j) > window] = -np.inf
A = np.exp(S - S.max(1, keepdims=True))
A /= A.sum(1, keepdims=True)
print(f"windowed attention (n={n}, window={window}): {len(vals)} of {n * n} query-key pairs scored; "
      f"max abs difference to masked dense numpy: {np.abs(out - A @ V).max():.1e}")
