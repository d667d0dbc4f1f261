"""Training matches PyTorch Geometric step for step (same weights, Adam, no dropout)."""
from __future__ import annotations

import numpy as np
import pytest

from ruvector_graph_attn.bench.train import build_ours, build_pyg
from ruvector_graph_attn.training import SGD, Adam, AdamW, cross_entropy
from ruvector_graph_attn.training.checkpoint import export_pyg_state_dict, import_pyg_state_dict
from ruvector_graph_attn.training.datasets import cora_like

pytestmark = pytest.mark.torch


def _no_dropout_ours(m):
    for _, mod in m.named_modules():
        if type(mod).__name__ == "Dropout":
            mod.p = 0.0
        if isinstance(getattr(mod, "dropout", None), float):
            object.__setattr__(mod, "dropout", 0.0)


@pytest.mark.parametrize("name", ["gat", "sage", "gin"])
@pytest.mark.parametrize("opt_name", ["adam", "adamw", "sgd"])
def test_trajectory_equals_pyg(name, opt_name):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_geometric")
    import torch.nn.functional as F

    ds = cora_like(seed=3, num_nodes=300, num_features=40, num_undirected_edges=900, topic_size=10,
                   train_per_class=10, num_val=50, num_test=50)
    m = build_ours(name, 40, 7, seed=1)
    _no_dropout_ours(m)
    pm = build_pyg(name, 40, 7)
    pm.load_state_dict({k: torch.from_numpy(v) for k, v in export_pyg_state_dict(m, layout="torch").items()})
    for mod in pm.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
        if isinstance(getattr(mod, "dropout", None), float):
            mod.dropout = 0.0
    if opt_name == "adam":
        opt, popt = Adam(m.parameters(), lr=0.01, weight_decay=5e-4), torch.optim.Adam(pm.parameters(), lr=0.01,
                                                                                        weight_decay=5e-4)
    elif opt_name == "adamw":
        opt, popt = AdamW(m.parameters(), lr=0.01, amsgrad=True), torch.optim.AdamW(pm.parameters(), lr=0.01,
                                                                                     amsgrad=True)
    else:
        opt = SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        popt = torch.optim.SGD(pm.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    x, ei, y = torch.from_numpy(ds.x), torch.from_numpy(ds.edge_index), torch.from_numpy(ds.y)
    tm = torch.from_numpy(ds.train_mask)
    for _ in range(8):
        m.train()
        m.zero_grad()
        out = m(ds.x, ds.edge_index)
        loss, g = cross_entropy(out, ds.y, mask=ds.train_mask)
        m.backward(g)
        opt.step()
        pm.train()
        popt.zero_grad()
        po = pm(x, ei)
        pl = F.cross_entropy(po[tm], y[tm])
        pl.backward()
        popt.step()
        assert loss == pytest.approx(float(pl.detach()), rel=1e-4, abs=1e-5)
        np.testing.assert_allclose(out, po.detach().numpy(), rtol=1e-3, atol=1e-4)
    # and the trained PyG weights load back here with identical outputs
    back = build_ours(name, 40, 7, seed=5)
    import_pyg_state_dict(back, pm.state_dict(), layout="torch")
    back.eval()
    pm.eval()
    with torch.no_grad():
        np.testing.assert_allclose(back(ds.x, ds.edge_index), pm(x, ei).numpy(), rtol=1e-4, atol=1e-5)
