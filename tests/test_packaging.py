"""Packaging: the wheel installs ruvector_graph_attn.connectors from the repo's connectors/ folder,
the console script exists, and .ci/run runs the README's test command verbatim."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    cmds = _readme_commands()
    assert len(cmds) >= 2
    demo, tests = cmds[0], cmds[1]
    assert "ruvector-graph-attn demo" in demo
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, "the .ci/run script must run the README's test command verbatim"


@pytest.mark.slow
def test_wheel_installs_connectors_subpackage(tmp_path):
    wheel_dir = tmp_path / "wheel"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    wheels = list(wheel_dir.glob("ruvector_graph_attn-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "ruvector_graph_attn/connectors/base.py" in names
    assert "ruvector_graph_attn/connectors/__init__.py" in names
    assert not any(n.startswith("connectors/") for n in names), "no top-level 'connectors' module"
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert entry and "ruvector-graph-attn = ruvector_graph_attn.cli:main" in zipfile.ZipFile(wheels[0]).read(entry[0]).decode()
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheels[0])],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    code = (
        "import ruvector_graph_attn as rga, ruvector_graph_attn.connectors as c;"
        "from ruvector_graph_attn.connectors.base import Subgraph;"
        "print(c.__file__); print(rga.__file__)"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0].startswith(str(target)) and lines[1].startswith(str(target))


def test_editable_install_maps_connectors():
    import ruvector_graph_attn.connectors as c

    assert Path(c.__file__).resolve().parent == (ROOT / "connectors").resolve()


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "demo" in r.stdout and "bench" in r.stdout
    r = subprocess.run([sys.executable, "-m", "ruvector_graph_attn.cli", "bench", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown benchmark" in r.stderr
