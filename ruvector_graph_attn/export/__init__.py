"""Export trained models to other runtimes.

``export_onnx(model, path)``  an ONNX file (opset 18) that onnxruntime and other ONNX runtimes
                              run with dynamic ``x``/``edge_index`` sizes (see onnx_graph.py)
``export_pyg(model, path)``   the PyTorch Geometric ``state_dict`` as ``.npz`` plus the
                              architecture as JSON, for loading into PyG models
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from .onnx_graph import OPSET, export_onnx, uses_edge_features

__all__ = ["export_onnx", "export_pyg", "OPSET", "uses_edge_features"]


def export_pyg(model: Any, path: Union[str, os.PathLike], layout: str = "torch") -> tuple[Path, Path]:
    """Write ``model``'s weights under PyTorch Geometric names to ``path`` (``.npz``, no pickle)
    and its architecture (the checkpoint's JSON model spec plus the layout) next to it as
    ``<path stem>.json``. Returns both paths. ``layout`` as in
    :func:`~ruvector_graph_attn.training.checkpoint.export_pyg_state_dict`."""
    import io

    from ..fileio import write_atomic, write_json_atomic
    from ..training.checkpoint import export_pyg_state_dict, get_config

    p = Path(path)
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    sd = export_pyg_state_dict(model, layout=layout)
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in sd.items()})
    write_atomic(p, buf.getvalue())
    cfg_path = p.with_suffix(".json")
    spec = json.loads(get_config(model).model_dump_json())
    write_json_atomic(cfg_path, {"format": "ruvector-graph-attn/pyg-state-dict", "version": 1,
                                 "layout": layout, "model": spec,
                                 "parameters": {k: list(v.shape) for k, v in sd.items()}})
    return p, cfg_path
