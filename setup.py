"""Package layout only: maps the repository folder ``connectors/`` to the import path
``ruvector_graph_attn.connectors`` (see docs/architecture.md). Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

core = ["ruvector_graph_attn"] + [
    "ruvector_graph_attn." + p for p in find_packages("ruvector_graph_attn")
]
conn = ["ruvector_graph_attn.connectors"] + [
    "ruvector_graph_attn.connectors." + p for p in find_packages("connectors")
]
package_dir = {"ruvector_graph_attn": "ruvector_graph_attn",
               "ruvector_graph_attn.connectors": "connectors"}
setup(packages=core + conn, package_dir=package_dir)
