"""``ruvector-graph-attn doctor`` on a good installation and on broken ones (real subprocesses)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_RUN = "import sys{pre}; from ruvector_graph_attn.cli import main; sys.exit(main(['doctor', '--json']))"


def _doctor(pre: str = "", env: dict | None = None):
    full = dict(os.environ)
    full.update(env or {})
    r = subprocess.run([sys.executable, "-c", _RUN.format(pre=pre)], capture_output=True, text=True,
                       timeout=600, env=full)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def _by_name(report):
    return {c["name"]: c for c in report["checks"]}


@pytest.mark.slow
def test_doctor_good_installation():
    rc, rep = _doctor()
    checks = _by_name(rep)
    assert rc == 0 and rep["ok"] is True
    for name in ("python", "numpy", "numba", "hnswlib", "numba kernels", "hnswlib index", "graph layers"):
        assert checks[name]["ok"] and checks[name]["required"], checks[name]
    assert "threading layer" in checks["numba kernels"]["detail"]
    # the test extra installs the optional parts the test suite exercises
    assert checks["extra [onnx]"]["ok"], checks["extra [onnx]"]


@pytest.mark.slow
def test_doctor_missing_core_package_fails():
    rc, rep = _doctor(pre="; sys.modules['hnswlib'] = None")
    checks = _by_name(rep)
    assert rc == 1 and rep["ok"] is False
    assert not checks["hnswlib"]["ok"] and "hnswlib" in checks["hnswlib"]["fix"]
    assert not checks["hnswlib index"]["ok"]
    assert checks["numpy"]["ok"]


@pytest.mark.slow
def test_doctor_broken_threading_layer_fails():
    rc, rep = _doctor(env={"NUMBA_THREADING_LAYER": "no_such_layer"})
    check = _by_name(rep)["numba kernels"]
    assert rc == 1 and not check["ok"] and "NUMBA_THREADING_LAYER" in check["fix"]


@pytest.mark.slow
def test_doctor_missing_optional_parts_do_not_fail():
    rc, rep = _doctor(pre="; sys.modules['onnxruntime'] = None", env={"PATH": "/nonexistent"})
    checks = _by_name(rep)
    assert rc == 0 and rep["ok"] is True
    assert not checks["extra [onnx]"]["ok"] and "[onnx]" in checks["extra [onnx]"]["fix"]
    assert not checks["java"]["ok"] and not checks["java"]["required"]
    assert not checks["maven"]["ok"] and not checks["node"]["ok"]
