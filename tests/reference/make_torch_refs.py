"""Generate the committed reference fixtures ``tests/reference/*.npz`` from the REAL
PyTorch / PyTorch Geometric / geoopt implementations.

Run by hand on a machine that has torch, torch_geometric (and optionally geoopt)::

    python tests/reference/make_torch_refs.py            # writes tests/reference/*.npz

The test suite (``tests/test_torch_reference.py``) only reads the ``.npz`` files with
numpy, so the comparison with the outside references runs where torch is absent (CI).
This file is not collected by pytest (its name does not start with ``test_``) and does
nothing on import.

Format of every fixture file: one ``.npz`` (no pickles) per layer family holding several
cases; each array is stored under ``"<case>/<group>/<name>"``:

* ``<case>/meta``: a JSON string (0-d unicode array): layer class, constructor kwargs,
  forward kwargs, and what was recorded;
* ``in/*``: inputs (float32 values, so they convert to float32 and float64 exactly);
* ``sd/<torch name>``: the full ``state_dict`` under torch's exact names (float32 values;
  random, so biases and eps are non-trivial);
* ``out/*``: forward results of the torch layer run in float64 on those same values
  (``out/y``; ``out/alpha`` + ``out/ei`` attention weights with the edge_index PyG used);
* ``in/gout``: a fixed random array R; the scalar loss is ``L = sum(out * R)``, so
  ``dL/dout = R``;
* ``grad/<input>`` and ``pgrad/<torch name>``: ``dL/dinput`` and ``dL/dparam`` by autograd.

Plus ``__meta__`` (versions, seed, date of generation).
"""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone

import numpy as np

SEED = 20260529
HERE = os.path.dirname(os.path.abspath(__file__))


def _t():
    import torch
    return torch


# ----------------------------------------------------------------------------- helpers
class Store:
    """Collects the arrays of one fixture file."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.arrays: dict[str, np.ndarray] = {}

    def case(self, case: str, meta: dict) -> "Case":
        if any(k.startswith(case + "/") for k in self.arrays):
            raise ValueError(f"duplicate case {case}")
        self.arrays[f"{case}/meta"] = np.array(json.dumps(meta, sort_keys=True))
        return Case(self, case)

    def write(self, versions: dict) -> str:
        self.arrays["__meta__"] = np.array(json.dumps(versions, sort_keys=True))
        path = os.path.join(HERE, f"{self.name}.npz")
        tmp = path + ".tmp.npz"
        np.savez_compressed(tmp, **self.arrays)
        os.replace(tmp, path)
        return path


class Case:
    def __init__(self, store: Store, case: str) -> None:
        self.store = store
        self.case = case

    def put(self, key: str, value, dtype=None) -> None:
        torch = _t()
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype == np.float32 or arr.dtype == np.float64:
            arr = arr.astype(np.float64)
        if arr.dtype.kind == "O":
            raise TypeError(f"{key}: object array")
        self.store.arrays[f"{self.case}/{key}"] = np.array(arr, order="C")  # keeps 0-d arrays 0-d

    def state_dict(self, module) -> None:
        for k, v in module.state_dict().items():
            self.put(f"sd/{k}", v, dtype=np.float32)

    def param_grads(self, module) -> None:
        for k, p in module.named_parameters(remove_duplicate=False):
            if p.grad is None:
                continue
            self.put(f"pgrad/{k}", p.grad, dtype=np.float64)


def randomize(module, gen, scale: float = 0.5) -> None:
    """Overwrite every parameter and floating buffer with float32-representable random values
    (biases and eps non-zero), then cast the module to float64."""
    torch = _t()
    seen = set()
    with torch.no_grad():
        for _, t in list(module.named_parameters()) + list(module.named_buffers()):
            if id(t) in seen or not t.is_floating_point():
                continue
            seen.add(id(t))
            vals = torch.randn(t.shape, generator=gen, dtype=torch.float32) * scale
            t.copy_(vals.to(t.dtype))
    module.double()


def f32(gen_np: np.random.Generator, *shape, scale: float = 1.0) -> np.ndarray:
    return (gen_np.standard_normal(shape) * scale).astype(np.float32)


def leaf(a: np.ndarray):
    torch = _t()
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def test_graph(gen_np: np.random.Generator):
    """12 nodes: node 10 isolated, node 11 has out-edges but no in-edges, a self loop 2->2
    already present, duplicate edges 1->4 (x2) and 5->6 (x2), plus random edges among 0..9."""
    base = [(1, 4), (1, 4), (5, 6), (5, 6), (2, 2), (11, 0), (11, 3), (0, 1), (3, 2), (9, 8)]
    rnd = []
    while len(rnd) < 18:
        s, d = (int(v) for v in gen_np.integers(0, 10, size=2))
        if s != d:
            rnd.append((s, d))
    edges = base + rnd
    order = gen_np.permutation(len(edges))
    ei = np.array([edges[i] for i in order], dtype=np.int64).T
    return 12, np.ascontiguousarray(ei)


def versions() -> dict:
    torch = _t()
    import torch_geometric
    out = {"torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
           "numpy": np.__version__, "python": sys.version.split()[0], "seed": SEED,
           "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "dtype": "reference computed in float64 from float32-representable inputs and weights"}
    try:
        import geoopt
        out["geoopt"] = geoopt.__version__
    except ImportError:
        out["geoopt"] = None
    return out


# ----------------------------------------------------------------------------- graph layers
def _graph_case(st: Store, name: str, meta: dict, layer, x, ei, ea, gen_np, attn: bool) -> None:
    """Forward (+ attention weights) and gradients of sum(out * R) for one PyG layer."""
    torch = _t()
    c = st.case(name, meta)
    c.state_dict(layer)
    c.put("in/edge_index", ei, dtype=np.int64)
    if isinstance(x, tuple):  # bipartite (x_src, x_dst)
        c.put("in/x_src", x[0], dtype=np.float32)
        c.put("in/x_dst", x[1], dtype=np.float32)
        xt = (leaf(x[0]), leaf(x[1]))
    else:
        c.put("in/x", x, dtype=np.float32)
        xt = leaf(x)
    eit = torch.from_numpy(ei)
    args = [xt, eit]
    eat = None
    if ea is not None:
        c.put("in/edge_attr", ea, dtype=np.float32)
        eat = leaf(ea)
        args.append(eat)
    layer.train()  # dropout is 0 everywhere: train mode only so every grad path is active
    layer.zero_grad()
    if attn:
        y, (ei_used, alpha) = layer(*args, return_attention_weights=True)
        c.put("out/ei", ei_used, dtype=np.int64)
        c.put("out/alpha", alpha)
    else:
        y = layer(*args)
    c.put("out/y", y)
    r = f32(gen_np, *y.shape)
    c.put("in/gout", r, dtype=np.float32)
    (y * torch.from_numpy(r.astype(np.float64))).sum().backward()
    if isinstance(xt, tuple):
        c.put("grad/x_src", xt[0].grad)
        c.put("grad/x_dst", xt[1].grad)
    else:
        c.put("grad/x", xt.grad)
    if eat is not None:
        c.put("grad/edge_attr", eat.grad)
    c.param_grads(layer)


def make_gat(gen, gen_np) -> Store:
    from torch_geometric.nn import GATConv, GATv2Conv
    st = Store("gat")
    n, ei = test_graph(gen_np)
    f, d = 5, 3
    x = f32(gen_np, n, f)
    ea = f32(gen_np, ei.shape[1], d)
    gat_cases = [
        ("gat_heads3_concat", dict(in_channels=f, out_channels=4, heads=3, concat=True), False),
        ("gat_heads3_mean", dict(in_channels=f, out_channels=4, heads=3, concat=False), False),
        ("gat_edge_mean", dict(in_channels=f, out_channels=4, heads=2, edge_dim=d, fill_value="mean"), True),
        ("gat_edge_float", dict(in_channels=f, out_channels=4, heads=2, edge_dim=d, fill_value=0.5), True),
        ("gat_edge_add", dict(in_channels=f, out_channels=4, heads=2, edge_dim=d, fill_value="add"), True),
        ("gat_edge_max", dict(in_channels=f, out_channels=4, heads=2, edge_dim=d, fill_value="max"), True),
        ("gat_no_loops", dict(in_channels=f, out_channels=3, heads=2, add_self_loops=False), False),
        ("gat_no_loops_edge", dict(in_channels=f, out_channels=3, heads=2, add_self_loops=False, edge_dim=d), True),
        ("gat_slope_residual", dict(in_channels=f, out_channels=3, heads=2, negative_slope=0.1, residual=True),
         False),
        ("gat_no_bias", dict(in_channels=f, out_channels=4, heads=1, bias=False), False),
    ]
    for name, kw, use_ea in gat_cases:
        layer = GATConv(**kw)
        randomize(layer, gen)
        _graph_case(st, name, {"layer": "GATConv", "kwargs": kw}, layer, x, ei, ea if use_ea else None,
                    gen_np, attn=True)
    v2_cases = [
        ("gatv2_heads2", dict(in_channels=f, out_channels=4, heads=2), False),
        ("gatv2_shared", dict(in_channels=f, out_channels=4, heads=2, share_weights=True), False),
        ("gatv2_shared_mean", dict(in_channels=f, out_channels=4, heads=3, concat=False, share_weights=True), False),
        ("gatv2_edge_mean", dict(in_channels=f, out_channels=3, heads=2, edge_dim=d), True),
        ("gatv2_edge_float_shared", dict(in_channels=f, out_channels=3, heads=2, edge_dim=d, fill_value=-0.75,
                                         share_weights=True), True),
        ("gatv2_no_loops", dict(in_channels=f, out_channels=3, heads=2, add_self_loops=False), False),
    ]
    for name, kw, use_ea in v2_cases:
        layer = GATv2Conv(**kw)
        randomize(layer, gen)
        _graph_case(st, name, {"layer": "GATv2Conv", "kwargs": kw}, layer, x, ei, ea if use_ea else None,
                    gen_np, attn=True)
    # bipartite (x_src [7, 5], x_dst [5, 4]): loops are added for min(7, 5) nodes, as in PyG;
    # target 4 has no in-edge, duplicates and a "self loop" pair (2 -> 2) included
    n_s, n_t, f_t = 7, 5, 4
    bi = np.array([[0, 1, 1, 2, 3, 5, 6, 6, 4, 2, 0],
                   [1, 0, 0, 2, 3, 1, 2, 2, 0, 3, 3]], dtype=np.int64)
    xb = (f32(gen_np, n_s, f), f32(gen_np, n_t, f_t))
    eab = f32(gen_np, bi.shape[1], d)
    bip_cases = [
        ("gat_bipartite", "GATConv", dict(in_channels=[f, f_t], out_channels=3, heads=2), False),
        ("gat_bipartite_no_loops_edge", "GATConv",
         dict(in_channels=[f, f_t], out_channels=3, heads=2, add_self_loops=False, edge_dim=d), True),
        ("gatv2_bipartite_edge", "GATv2Conv", dict(in_channels=[f, f_t], out_channels=3, heads=2, edge_dim=d), True),
    ]
    for name, cls_name, kw, use_ea in bip_cases:
        cls = {"GATConv": GATConv, "GATv2Conv": GATv2Conv}[cls_name]
        layer = cls(**{**kw, "in_channels": tuple(kw["in_channels"])})
        randomize(layer, gen)
        _graph_case(st, name, {"layer": cls_name, "kwargs": kw, "bipartite": True}, layer, xb, bi,
                    eab if use_ea else None, gen_np, attn=True)
    return st


def make_gin_sage(gen, gen_np) -> Store:
    torch = _t()
    from torch_geometric.nn import GINConv, GINEConv, SAGEConv
    st = Store("gin_sage")
    n, ei = test_graph(gen_np)
    f, d = 5, 3
    x = f32(gen_np, n, f)
    ea_d = f32(gen_np, ei.shape[1], d)
    ea_f = f32(gen_np, ei.shape[1], f)

    def mlp():
        return torch.nn.Sequential(torch.nn.Linear(f, 7), torch.nn.ReLU(), torch.nn.Linear(7, 4))

    mlp_meta = {"nn": [["Linear", f, 7], ["ReLU"], ["Linear", 7, 4]]}
    for name, kw in [("gin_eps_fixed", dict(eps=-0.2, train_eps=False)),
                     ("gin_eps_train", dict(eps=0.3, train_eps=True))]:
        layer = GINConv(mlp(), **kw)
        randomize(layer, gen)
        with torch.no_grad():
            layer.eps.fill_(float(np.float32(kw["eps"])))  # the value stored in sd/eps
        _graph_case(st, name, {"layer": "GINConv", "kwargs": kw, **mlp_meta}, layer, x, ei, None, gen_np, False)
    for name, kw, ea in [("gine_edge_dim", dict(eps=0.1, train_eps=True, edge_dim=d), ea_d),
                         ("gine_no_edge_dim", dict(eps=0.0, train_eps=False), ea_f)]:
        layer = GINEConv(mlp(), **kw)
        randomize(layer, gen)
        with torch.no_grad():
            layer.eps.fill_(float(np.float32(kw["eps"])))  # the value stored in sd/eps
        _graph_case(st, name, {"layer": "GINEConv", "kwargs": kw, **mlp_meta}, layer, x, ei, ea, gen_np, False)
    sage_cases = [
        ("sage_mean", dict(aggr="mean")),
        ("sage_max", dict(aggr="max")),
        ("sage_sum", dict(aggr="sum")),
        ("sage_mean_normalize", dict(aggr="mean", normalize=True)),
        ("sage_max_no_root", dict(aggr="max", root_weight=False)),
        ("sage_mean_project", dict(aggr="mean", project=True)),
        ("sage_max_project_normalize", dict(aggr="max", project=True, normalize=True)),
        ("sage_sum_no_bias", dict(aggr="sum", bias=False)),
    ]
    for name, kw in sage_cases:
        layer = SAGEConv(f, 4, **kw)
        randomize(layer, gen)
        _graph_case(st, name, {"layer": "SAGEConv", "kwargs": {"in_channels": f, "out_channels": 4, **kw}},
                    layer, x, ei, None, gen_np, False)
    return st


def make_dirgnn(gen, gen_np) -> Store:
    """``DirGNNConv`` around ``SAGEConv`` (alpha, root weight, the inner aggregation)."""
    from torch_geometric.nn import DirGNNConv, SAGEConv
    st = Store("dirgnn")
    n, ei = test_graph(gen_np)
    f = 5
    x = f32(gen_np, n, f)
    for name, kw, inner in [("dirgnn_sage_mean", dict(alpha=0.5), dict(aggr="mean")),
                            ("dirgnn_sage_alpha03", dict(alpha=0.3), dict(aggr="mean")),
                            ("dirgnn_sage_sum_no_root", dict(alpha=0.7, root_weight=False), dict(aggr="sum")),
                            ("dirgnn_sage_max_alpha1", dict(alpha=1.0), dict(aggr="max"))]:
        layer = DirGNNConv(SAGEConv(f, 4, **inner), **kw)
        randomize(layer, gen)
        _graph_case(st, name, {"layer": "DirGNNConv", "kwargs": kw,
                               "conv": {"in_channels": f, "out_channels": 4, **inner}},
                    layer, x, ei, None, gen_np, False)
    return st


# ----------------------------------------------------------------------------- readouts
def make_readout(gen, gen_np) -> Store:
    torch = _t()
    from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
    from torch_geometric.nn.aggr import AttentionalAggregation
    from torch_geometric.utils import softmax as pyg_softmax
    st = Store("readout")
    n, f = 14, 5
    x = f32(gen_np, n, f)
    # unsorted batch vector, graph 3 has no node (size=4 given), graph 2 has a single node
    batch = np.array([0, 1, 0, 1, 1, 0, 2, 1, 0, 0, 4, 4, 1, 4], dtype=np.int64)
    size = 5
    bt = torch.from_numpy(batch)

    def pooled_case(name, meta, fn, module=None, alpha_fn=None):
        c = st.case(name, meta)
        if module is not None:
            c.state_dict(module)
            module.zero_grad()
        c.put("in/x", x, dtype=np.float32)
        c.put("in/batch", batch, dtype=np.int64)
        xt = leaf(x)
        y = fn(xt)
        c.put("out/y", y)
        if alpha_fn is not None:
            c.put("out/alpha", alpha_fn(xt))
        r = f32(gen_np, *y.shape)
        c.put("in/gout", r, dtype=np.float32)
        (y * torch.from_numpy(r.astype(np.float64))).sum().backward()
        c.put("grad/x", xt.grad)
        if module is not None:
            c.param_grads(module)

    for name, fn in [("global_add_pool", global_add_pool), ("global_mean_pool", global_mean_pool),
                     ("global_max_pool", global_max_pool)]:
        pooled_case(name, {"layer": name, "size": size}, lambda xt, fn=fn: fn(xt, bt, size))

    # gate_nn -> [N, 1]; nn -> [N, 6]
    gate = torch.nn.Sequential(torch.nn.Linear(f, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    nnm = torch.nn.Sequential(torch.nn.Linear(f, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6))
    aa = AttentionalAggregation(gate, nnm)
    randomize(aa, gen, scale=0.8)
    pooled_case("attentional_gate1_nn", {"layer": "AttentionalAggregation", "size": size,
                                         "gate_nn": [["Linear", f, 4], ["Tanh"], ["Linear", 4, 1]],
                                         "nn": [["Linear", f, 6], ["ReLU"], ["Linear", 6, 6]]},
                lambda xt: aa(xt, bt, dim_size=size), aa,
                lambda xt: pyg_softmax(gate(xt), bt, num_nodes=n, dim=0))
    # gate with one column per feature, no nn
    gate2 = torch.nn.Sequential(torch.nn.Linear(f, f))
    aa2 = AttentionalAggregation(gate2)
    randomize(aa2, gen, scale=0.8)
    pooled_case("attentional_gateF", {"layer": "AttentionalAggregation", "size": size,
                                      "gate_nn": [["Linear", f, f]], "nn": None},
                lambda xt: aa2(xt, bt, dim_size=size), aa2,
                lambda xt: pyg_softmax(gate2(xt), bt, num_nodes=n, dim=0))
    return st


# ----------------------------------------------------------------------------- attention
def make_attention(gen, gen_np) -> Store:
    torch = _t()
    F = torch.nn.functional
    st = Store("attention")
    B, L, S, E, H = 2, 4, 6, 8, 2

    def mha_case(name, kw, xq, xk, xv, kpm=None, attn_mask=None, average=True, batch_first=True):
        m = torch.nn.MultiheadAttention(E, H, batch_first=batch_first, **kw)
        randomize(m, gen)
        m.train()
        c = st.case(name, {"layer": "MultiheadAttention",
                           "kwargs": {"embed_dim": E, "num_heads": H, "batch_first": batch_first, **kw},
                           "average_attn_weights": average})
        c.state_dict(m)
        ts = [leaf(a) for a in (xq, xk, xv)]
        for nm, a in zip(("query", "key", "value"), (xq, xk, xv)):
            c.put(f"in/{nm}", a, dtype=np.float32)
        fkw = {}
        if kpm is not None:
            c.put("in/key_padding_mask", kpm, dtype=np.bool_)
            fkw["key_padding_mask"] = torch.from_numpy(kpm)
        if attn_mask is not None:
            if attn_mask.dtype == np.bool_:  # True = not allowed
                c.put("in/attn_mask", attn_mask, dtype=np.bool_)
                fkw["attn_mask"] = torch.from_numpy(attn_mask)
            else:
                c.put("in/attn_mask", attn_mask, dtype=np.float32)
                fkw["attn_mask"] = torch.from_numpy(attn_mask.astype(np.float64))
        m.zero_grad()
        y, w = m(*ts, need_weights=True, average_attn_weights=average, **fkw)
        c.put("out/y", y)
        c.put("out/weights", w)
        r = f32(gen_np, *y.shape)
        c.put("in/gout", r, dtype=np.float32)
        (y * torch.from_numpy(r.astype(np.float64))).sum().backward()
        for nm, t in zip(("query", "key", "value"), ts):
            c.put(f"grad/{nm}", t.grad)
        c.param_grads(m)

    x = f32(gen_np, B, L, E)
    mha_case("mha_self_avg", {}, x, x, x, average=True)
    mha_case("mha_self_per_head", {}, x, x, x, average=False)
    kpm = np.zeros((B, S), dtype=bool)
    kpm[0, [1, 4]] = True
    kpm[1, 5] = True
    xq = f32(gen_np, B, L, E)
    xk = f32(gen_np, B, S, 5)
    xv = f32(gen_np, B, S, 3)
    mha_case("mha_cross_kdim_vdim_kpm", {"kdim": 5, "vdim": 3}, xq, xk, xv, kpm=kpm, average=False)
    xk8 = f32(gen_np, B, S, E)
    xv8 = f32(gen_np, B, S, E)
    am = f32(gen_np, L, S, scale=0.5)
    mha_case("mha_cross_kpm_attn_mask", {}, xq, xk8, xv8, kpm=kpm, attn_mask=am, average=True)
    mha_case("mha_no_bias", {"bias": False}, xq, xk8, xv8, average=True)
    # sequence-first layout [L, B, E]
    mha_case("mha_seq_first", {}, np.ascontiguousarray(xq.transpose(1, 0, 2)),
             np.ascontiguousarray(xk8.transpose(1, 0, 2)), np.ascontiguousarray(xv8.transpose(1, 0, 2)),
             kpm=kpm, average=False, batch_first=False)
    # unbatched [L, E] / [S, E] with a [S] key padding mask
    mha_case("mha_unbatched", {}, xq[0], xk8[0], xv8[0], kpm=kpm[0], average=False)
    # boolean per-(batch, head) attn_mask [B*H, L, S] together with the key padding mask;
    # key 0 is never masked so no query row is fully masked (torch gives NaN there)
    am3 = gen_np.random((B * H, L, S)) < 0.4
    am3[:, :, 0] = False
    mha_case("mha_bool_attn_mask_3d", {}, xq, xk8, xv8, kpm=kpm, attn_mask=am3, average=False)

    # torch.nn.functional.scaled_dot_product_attention on [Bq, D] queries over shared keys
    def sdpa_case(name, Q, K, V, mask=None, scale=None):
        c = st.case(name, {"layer": "scaled_dot_product_attention", "scale": scale, "dim": int(Q.shape[-1])})
        ts = [leaf(a) for a in (Q, K, V)]
        for nm, a in zip(("query", "key", "value"), (Q, K, V)):
            c.put(f"in/{nm}", a, dtype=np.float32)
        kw = {}
        if mask is not None:
            c.put("in/mask", mask, dtype=np.bool_)
            kw["attn_mask"] = torch.from_numpy(mask)
        if scale is not None:
            kw["scale"] = scale
        y = F.scaled_dot_product_attention(ts[0], ts[1], ts[2], **kw)
        with torch.no_grad():  # the weights, from the same definition torch documents
            s = ts[0] @ ts[1].T * (scale if scale is not None else 1.0 / np.sqrt(Q.shape[-1]))
            if mask is not None:
                s = s.masked_fill(~torch.from_numpy(mask), float("-inf"))
            c.put("out/weights", torch.softmax(s, dim=-1))
        c.put("out/y", y)
        r = f32(gen_np, *y.shape)
        c.put("in/gout", r, dtype=np.float32)
        (y * torch.from_numpy(r.astype(np.float64))).sum().backward()
        for nm, t in zip(("query", "key", "value"), ts):
            c.put(f"grad/{nm}", t.grad)

    Q = f32(gen_np, 5, 6)
    K = f32(gen_np, 9, 6)
    V = f32(gen_np, 9, 4)
    sdpa_case("sdpa_default_scale", Q, K, V)
    mask = gen_np.random((5, 9)) < 0.6
    mask[:, 0] = True  # no fully masked row (torch gives NaN there)
    sdpa_case("sdpa_mask_scale", Q, K, V, mask=mask, scale=0.7)
    return st


# ----------------------------------------------------------------------------- training
def make_training(gen, gen_np) -> Store:
    torch = _t()
    F = torch.nn.functional
    from torch_geometric.nn import GATConv
    st = Store("training")
    n, ei = test_graph(gen_np)
    f, classes, steps = 6, 3, 5
    x = f32(gen_np, n, f)
    y = gen_np.integers(0, classes, size=n).astype(np.int64)
    mask = np.zeros(n, dtype=bool)
    mask[[0, 1, 2, 4, 6, 7, 9, 11]] = True

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("0", GATConv(f, 4, heads=2))
            self.add_module("1", torch.nn.ELU())
            self.add_module("2", GATConv(8, classes, heads=1))

        def forward(self, x, ei):
            m = self._modules
            return m["2"](m["1"](m["0"](x, ei)), ei)

    opts = [
        ("adam", "Adam", dict(lr=0.01, weight_decay=5e-4)),
        ("adamw_amsgrad", "AdamW", dict(lr=0.01, weight_decay=1e-2, amsgrad=True)),
        ("sgd_nesterov", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ]
    net0 = Net()
    randomize(net0, gen)
    init = {k: v.clone() for k, v in net0.state_dict().items()}
    xt = torch.from_numpy(x.astype(np.float64))
    eit = torch.from_numpy(ei)
    yt = torch.from_numpy(y)
    mt = torch.from_numpy(mask)
    for name, cls, kw in opts:
        net = Net().double()
        net.load_state_dict(init)
        opt = getattr(torch.optim, cls)(net.parameters(), **kw)
        c = st.case(name, {"model": [["GATConv", f, 4, {"heads": 2}], ["ELU"], ["GATConv", 8, classes, {"heads": 1}]],
                           "optimizer": cls, "kwargs": kw, "steps": steps,
                           "loss": "cross_entropy(logits[mask], y[mask]) (mean)"})
        c.state_dict(net)
        c.put("in/x", x, dtype=np.float32)
        c.put("in/edge_index", ei, dtype=np.int64)
        c.put("in/y", y, dtype=np.int64)
        c.put("in/mask", mask, dtype=np.bool_)
        losses = []
        net.train()
        for step in range(steps):
            opt.zero_grad()
            out = net(xt, eit)
            loss = F.cross_entropy(out[mt], yt[mt])
            loss.backward()
            if step == 0:
                c.put("out/logits0", out)
                c.param_grads(net)
            opt.step()
            losses.append(float(loss.detach()))
            for k, v in net.state_dict().items():
                c.put(f"step{step + 1}/{k}", v, dtype=np.float64)
        c.put("out/losses", np.array(losses, dtype=np.float64))
    return st


# ----------------------------------------------------------------------------- geoopt
def make_poincare(gen, gen_np) -> Store | None:
    try:
        import geoopt
    except ImportError:
        print("geoopt not installed: poincare.npz not (re)generated")
        return None
    torch = _t()
    st = Store("poincare")
    n, d = 9, 4
    for c_val in (0.1, 1.0, 2.0):
        r_max = 1.0 / np.sqrt(c_val)

        def points(edge):
            """The origin, a point at ``edge`` of the radius, one at 0.85, the rest random."""
            dirs = gen_np.standard_normal((n, d))
            dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
            frac = np.concatenate([[0.0, edge, 0.85], gen_np.uniform(0.05, 0.85, size=n - 3)])
            return dirs * (frac * r_max)[:, None]

        # float64: a point at 0.999 of the radius and its antipode (artanh of ~1 - 1e-6: the
        # clamps and the boundary are exercised, float64 still resolves the result). float32:
        # 0.9 at most -- closer to the boundary, float32 rounding of |(-x) (+) y| ~ 1 is
        # amplified by 1 / (1 - z^2) and both float32 implementations are equally wrong.
        for dt_name, dt, edge in (("f32", np.float32, 0.9), ("f64", np.float64, 0.999)):
            x = points(edge).astype(dt)
            y = points(edge).astype(dt)
            y[1] = -x[1]   # two near-boundary antipodal points
            u = (gen_np.standard_normal((n, d)) * 0.8).astype(dt)
            u[0] = 0.0     # a zero tangent vector
            u[3] *= 20.0   # a long one (tanh saturates, the result is projected)
            tdt = torch.float32 if dt == np.float32 else torch.float64
            ball = _geoopt_ball(c_val, tdt)  # c exact in the working dtype
            assert abs(float(ball.c) - c_val) <= 4 * np.finfo(dt).eps * c_val, float(ball.c)
            X, Y, U = (torch.tensor(a, dtype=tdt) for a in (x, y, u))
            cs = st.case(f"c{c_val:g}_{dt_name}", {"manifold": "PoincareBall", "c": c_val, "dtype": dt_name})
            for nm, a in (("x", x), ("y", y), ("u", u)):
                cs.put(f"in/{nm}", a, dtype=dt)
            r = gen_np.uniform(-2.0, 2.0, size=(n, 1)).astype(dt)
            mat = (gen_np.standard_normal((d, d)) * 0.7).astype(dt)
            v = (gen_np.standard_normal((n, d)) * 0.5).astype(dt)
            outside = (gen_np.standard_normal((n, d)) * 2.0 * r_max).astype(dt)
            for nm, a in (("r", r), ("m", mat), ("v", v), ("outside", outside)):
                cs.put(f"in/{nm}", a, dtype=dt)
            R, M, Vt, O = (torch.tensor(a, dtype=tdt) for a in (r, mat, v, outside))
            res = {
                "cdist": ball.dist(X[:, None, :], Y[None, :, :]),
                "mobius_sub": ball.mobius_sub(X, Y),
                "mobius_scalar_mul": ball.mobius_scalar_mul(R, X),
                "mobius_matvec": ball.mobius_matvec(M, X),
                "transp": ball.transp(X, Y, Vt),
                "egrad2rgrad": ball.egrad2rgrad(X, Vt),
                # geoopt 0.5.1's inner(keepdim=False) multiplies lambda_x^2 [N, 1] by <u, v> [N]
                # and broadcasts to [N, N]; keepdim=True gives the intended per-point value
                "inner": ball.inner(X, U, Vt, keepdim=True)[:, 0],
                "norm": ball.norm(X, Vt),
                "lambda_x": ball.lambda_x(X),
                "retr": ball.retr(X, Vt * 0.3),
                "projx": ball.projx(O),
                "gyration": ball.gyration(X, Y, Vt),
                "dist": ball.dist(X, Y),
                "mobius_add": ball.mobius_add(X, Y),
                "expmap": ball.expmap(X, U),
                "logmap": ball.logmap(X, Y),
                "expmap0": ball.expmap0(U),
                "logmap0": ball.logmap0(Y),
                "dist0": ball.dist0(X),
            }
            for k, v in res.items():
                cs.put(f"out/{k}", v, dtype=dt)
    return st


# ----------------------------------------------------------------------------- nn modules, losses
def make_nn(gen, gen_np) -> Store:
    """torch.nn modules (Linear, LayerNorm, LeakyReLU, ELU, Tanh, ReLU in a Sequential) and the
    losses of torch.nn.functional used for training (value and d loss / d input)."""
    torch = _t()
    F = torch.nn.functional
    tnn = torch.nn
    st = Store("nn")
    specs = {
        "seq_mlp_layernorm": ([["Linear", [5, 6], {}], ["LayerNorm", [6], {"eps": 1e-3}],
                               ["LeakyReLU", [0.1], {}], ["Linear", [6, 4], {"bias": False}],
                               ["ELU", [0.7], {}], ["Tanh", [], {}]], (9, 5)),
        "layernorm_2d_shape": ([["LayerNorm", [[3, 4]], {}]], (5, 3, 4)),
        "layernorm_no_affine_3d": ([["LayerNorm", [4], {"elementwise_affine": False}], ["ReLU", [], {}],
                                    ["Linear", [4, 2], {}]], (2, 3, 4)),
    }
    for name, (spec, shape) in specs.items():
        mods = [getattr(tnn, cls)(*args, **kw) for cls, args, kw in spec]
        m = tnn.Sequential(*mods)
        randomize(m, gen, scale=0.7)
        c = st.case(name, {"nn": spec})
        c.state_dict(m)
        x = f32(gen_np, *shape)
        c.put("in/x", x, dtype=np.float32)
        xt = leaf(x)
        m.zero_grad()
        y = m(xt)
        c.put("out/y", y)
        r = f32(gen_np, *y.shape)
        c.put("in/gout", r, dtype=np.float32)
        (y * torch.from_numpy(r.astype(np.float64))).sum().backward()
        c.put("grad/x", xt.grad)
        c.param_grads(m)

    def loss_case(name, meta, arrays, fn):
        c = st.case(name, {"loss": meta})
        ts = {}
        for k, a in arrays.items():
            c.put(f"in/{k}", a)
            ts[k] = leaf(a) if a.dtype == np.float32 else torch.from_numpy(a)
        val = fn(ts)
        val.backward()
        c.put("out/loss", val)
        for k, t in ts.items():
            if t.is_floating_point() and t.grad is not None:
                c.put(f"grad/{k}", t.grad)

    n, k = 8, 4
    logits = f32(gen_np, n, k, scale=2.0)
    y = gen_np.integers(0, k, size=n).astype(np.int64)
    w = gen_np.uniform(0.2, 2.0, size=k).astype(np.float32)
    rows = np.array([0, 2, 3, 5, 7], dtype=np.int64)
    loss_case("ce_plain", {"fn": "cross_entropy"}, {"logits": logits, "y": y},
              lambda t: F.cross_entropy(t["logits"], t["y"]))
    loss_case("ce_mask_weight_smoothing", {"fn": "cross_entropy", "label_smoothing": 0.1},
              {"logits": logits, "y": y, "weight": w, "mask": rows},
              lambda t: F.cross_entropy(t["logits"][t["mask"]], t["y"][t["mask"]],
                                        weight=t["weight"].detach(), label_smoothing=0.1))
    loss_case("ce_sum", {"fn": "cross_entropy", "reduction": "sum"}, {"logits": logits, "y": y},
              lambda t: F.cross_entropy(t["logits"], t["y"], reduction="sum"))
    pred, target = f32(gen_np, 6, 3), f32(gen_np, 6, 3)
    for red in ("mean", "sum"):
        loss_case(f"mse_{red}", {"fn": "mse", "reduction": red}, {"pred": pred, "target": target},
                  lambda t, red=red: F.mse_loss(t["pred"], t["target"].detach(), reduction=red))
    bl = f32(gen_np, 6, 3, scale=3.0)
    bl[0, 0], bl[0, 1] = 40.0, -40.0  # saturated logits
    bt = gen_np.uniform(0, 1, size=(6, 3)).astype(np.float32)
    bt[1] = np.round(bt[1])
    pw = gen_np.uniform(0.5, 3.0, size=3).astype(np.float32)
    loss_case("bce_logits_pos_weight", {"fn": "binary_cross_entropy_with_logits"},
              {"logits": bl, "targets": bt, "pos_weight": pw},
              lambda t: F.binary_cross_entropy_with_logits(t["logits"], t["targets"].detach(),
                                                           pos_weight=t["pos_weight"].detach()))
    loss_case("bce_logits_sum", {"fn": "binary_cross_entropy_with_logits", "reduction": "sum"},
              {"logits": bl, "targets": bt},
              lambda t: F.binary_cross_entropy_with_logits(t["logits"], t["targets"].detach(), reduction="sum"))
    x1, x2 = f32(gen_np, 10), f32(gen_np, 10)
    sign = np.where(gen_np.random(10) < 0.5, -1.0, 1.0).astype(np.float32)
    loss_case("margin_ranking", {"fn": "margin_ranking", "margin": 0.3}, {"x1": x1, "x2": x2, "y": sign},
              lambda t: F.margin_ranking_loss(t["x1"], t["x2"], t["y"].detach(), margin=0.3))
    return st


def _geoopt_ball(c_val: float, tdt):
    """geoopt's PoincareBall in dtype ``tdt``. geoopt stores c as ``isp_c = softplus^-1(c)``,
    initialised in float32 (so even a float64 ball has a float32-rounded c, and its sqrt(c)
    and projection margin follow): cast the module and set ``isp_c`` in the working dtype."""
    import geoopt
    torch = _t()
    ball = geoopt.PoincareBall(c=c_val).to(tdt)
    with torch.no_grad():
        ball.isp_c.copy_(torch.tensor(np.log(np.expm1(c_val)), dtype=tdt))
    return ball


def make_riemannian(gen, gen_np) -> Store | None:
    """geoopt's RiemannianAdam / RiemannianSGD on a ball parameter [6, 3] plus a Euclidean
    parameter [4], loss 0.5 |X - T|^2 + 0.5 |e - s|^2 (so the test computes the Euclidean
    gradients X - T and e - s itself); targets partly outside the ball, so steps get projected."""
    try:
        import geoopt
    except ImportError:
        print("geoopt not installed: riemannian.npz not (re)generated")
        return None
    torch = _t()
    st = Store("riemannian")
    steps = 6
    cases = [
        ("radam_c1", "RiemannianAdam", dict(lr=0.05), 1.0),
        ("radam_amsgrad_wd_c0.5", "RiemannianAdam", dict(lr=0.05, amsgrad=True, weight_decay=0.01), 0.5),
        ("rsgd_plain_c1", "RiemannianSGD", dict(lr=0.2), 1.0),
        ("rsgd_momentum_damp_c1", "RiemannianSGD", dict(lr=0.1, momentum=0.9, dampening=0.1), 1.0),
        ("rsgd_nesterov_wd_c2", "RiemannianSGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
         2.0),
    ]
    for name, cls, kw, c_val in cases:
        r_max = 1.0 / np.sqrt(c_val)
        dirs = gen_np.standard_normal((6, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        x0 = (dirs * gen_np.uniform(0.1, 0.8, size=(6, 1)) * r_max).astype(np.float32)
        t = (gen_np.standard_normal((6, 3)) * r_max).astype(np.float32)
        e0 = f32(gen_np, 4)
        s = f32(gen_np, 4)
        ball = _geoopt_ball(c_val, torch.float64)
        P = geoopt.ManifoldParameter(torch.tensor(x0, dtype=torch.float64), manifold=ball)
        E = torch.nn.Parameter(torch.tensor(e0, dtype=torch.float64))
        opt = getattr(geoopt.optim, cls)([P, E], **kw)
        c = st.case(name, {"optimizer": cls, "kwargs": kw, "c": c_val, "steps": steps,
                           "loss": "0.5 |X - T|^2 + 0.5 |e - s|^2"})
        for nm, a in (("x0", x0), ("t", t), ("e0", e0), ("s", s)):
            c.put(f"in/{nm}", a, dtype=np.float32)
        T, S = torch.tensor(t, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
        for step in range(steps):
            opt.zero_grad()
            loss = 0.5 * ((P - T) ** 2).sum() + 0.5 * ((E - S) ** 2).sum()
            loss.backward()
            opt.step()
            c.put(f"step{step + 1}/x", P)
            c.put(f"step{step + 1}/e", E)
    return st


def main() -> int:
    torch = _t()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    gen_np = np.random.default_rng(SEED)
    meta = versions()
    # the first eight files share one generator (they are always written together); files
    # added later draw from their own, so ``--only dirgnn`` rewrites that file alone and
    # leaves every other file as it was
    extra = {"dirgnn": make_dirgnn}
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
    if only is not None and not set(only) <= set(extra):
        print(f"--only takes {sorted(extra)}; the other files are written together (no --only)")
        return 2
    stores = [] if only is not None else [
        make_gat(gen, gen_np), make_gin_sage(gen, gen_np), make_readout(gen, gen_np), make_attention(gen, gen_np),
        make_training(gen, gen_np), make_poincare(gen, gen_np), make_riemannian(gen, gen_np), make_nn(gen, gen_np)]
    for name, make in extra.items():
        if only is None or name in only:
            stores.append(make(torch.Generator().manual_seed(SEED + 1), np.random.default_rng(SEED + 1)))
    total = 0
    for st in stores:
        if st is None:
            continue
        path = st.write(meta)
        size = os.path.getsize(path)
        total += size
        ncases = sum(1 for k in st.arrays if k.endswith("/meta"))
        print(f"{os.path.relpath(path)}: {ncases} cases, {size / 1024:.1f} KiB")
    print(f"total {total / 1024:.1f} KiB; versions {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
