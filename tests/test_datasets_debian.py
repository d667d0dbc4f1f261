"""Debian Packages parsing and the dependency graph, on real records shipped in tests/data."""
import os

import numpy as np
import pytest

from ruvector_graph_attn.datasets.debian import (
    dependency_graph, load_records, package_text, parse_depends, parse_packages, read_packages_file,
)
from ruvector_graph_attn.errors import CorruptFileError, InvalidInputError

SAMPLE = os.path.join(os.path.dirname(__file__), "data", "Packages_sample")

# edges of the sample worked out by hand from its Depends fields (first real alternative;
# bsd-mailx's "default-mta | mail-transport-agent" goes to the provider exim4-daemon-light)
EXPECTED_EDGES = {
    ("python3-requests", "python3-certifi"), ("python3-requests", "python3-charset-normalizer"),
    ("python3-requests", "python3-idna"), ("python3-requests", "python3-urllib3"),
    ("python3-requests", "python3-chardet"), ("python3-chardet", "python3-pkg-resources"),
    ("python3-alembic", "python3-pkg-resources"), ("python3-alembic", "python3-importlib-metadata"),
    ("python3-alembic", "python3-mako"), ("python3-alembic", "python3-sqlalchemy"),
    ("python3-mako", "python3-pkg-resources"), ("python3-mako", "python3-importlib-metadata"),
    ("python3-mako", "python3-markupsafe"), ("python3-sqlalchemy", "python3-greenlet"),
    ("python3-sqlalchemy", "python3-importlib-metadata"), ("python3-markupsafe", "libc6"),
    ("python3-greenlet", "libc6"), ("python3-greenlet", "libgcc-s1"),
    ("python3-importlib-metadata", "python3-typing-extensions"), ("python3-importlib-metadata", "python3-zipp"),
    ("libc6", "libgcc-s1"), ("libgcc-s1", "gcc-12-base"), ("libgcc-s1", "libc6"),
    ("bsd-mailx", "exim4-daemon-light"), ("bsd-mailx", "liblockfile1"), ("bsd-mailx", "libc6"),
    ("liblockfile1", "libc6"), ("exim4-daemon-light", "libc6"), ("libjs-sphinxdoc", "libjs-jquery"),
    ("python-requests-doc", "libjs-sphinxdoc"),
}


def test_parse_depends_alternatives_versions_arch():
    g = parse_depends("libc6 (>= 2.34), python3:any | pypy [amd64 !i386], foo (<< 1:2.0~rc1-3)")
    assert [[d.name for d in grp] for grp in g] == [["libc6"], ["python3", "pypy"], ["foo"]]
    assert (g[0][0].op, g[0][0].version) == (">=", "2.34")
    assert g[1][0].arch == "any" and g[1][0].op is None
    assert g[1][1].archs == ("amd64", "!i386")
    assert (g[2][0].op, g[2][0].version) == ("<<", "1:2.0~rc1-3")
    with pytest.raises(InvalidInputError):
        parse_depends("libc6 (>= 2.34")


def test_sample_records():
    recs = read_packages_file(SAMPLE)
    assert len(recs) == 25
    req = recs[0]
    assert req.package == "python3-requests" and req.section == "python"
    assert req.synopsis.startswith("elegant and simple HTTP library")
    names = [[d.name for d in g] for g in req.depends]
    assert names[4] == ["python3"] and req.depends[4][0].arch == "any"
    assert req.depends[3][0].op == ">=" and req.depends[3][0].version == "1.21.1"
    exim = [r for r in recs if r.package == "exim4-daemon-light"][0]
    assert {p.name for p in exim.provides} == {"default-mta", "exim4-localscanapi-6.0", "mail-transport-agent"}


def test_sample_graph_edges_sections_texts():
    g = dependency_graph(read_packages_file(SAMPLE))
    assert g.names == sorted(g.names) and g.num_nodes == 25
    got = {(g.names[a], g.names[b]) for a, b in g.edge_index.T.tolist()}
    assert got == EXPECTED_EDGES
    assert g.edge_index.shape == (2, len(EXPECTED_EDGES))
    assert g.sections[g.names.index("0ad-data")] == "games"
    y, classes = g.section_labels()
    assert classes == sorted({"python", "libs", "mail", "games", "javascript", "doc"})
    assert classes[y[g.names.index("bsd-mailx")]] == "mail"
    assert "python3-requests" not in g.texts[g.names.index("python3-requests")]
    assert g.fingerprint() == dependency_graph(read_packages_file(SAMPLE)).fingerprint()


def test_stanza_details_and_errors(tmp_path):
    text = ("Package: a\nSection: contrib/games\nDepends: b, c | d\nDescription: short line\n"
            " first para\n continues\n .\n second para\n\n"
            "Package: b\nSection: non-free/libs\nProvides: c\n\nPackage: d\n")
    recs = parse_packages(text)
    assert [r.section for r in recs] == ["games", "libs", ""]
    assert recs[0].description == "first para continues\n\nsecond para"
    assert package_text(recs[0]) == "short line. first para continues second para"
    g = dependency_graph(recs)
    # "c | d": d is a real package (first real alternative wins over the provider of c)
    assert {(g.names[a], g.names[b]) for a, b in g.edge_index.T.tolist()} == {("a", "b"), ("a", "d")}
    assert g.sections[g.names.index("d")] == "unknown"
    with pytest.raises(CorruptFileError):
        parse_packages("Section: x\n")
    with pytest.raises(CorruptFileError):
        parse_packages(" orphan continuation\n")
    with pytest.raises(CorruptFileError):
        parse_packages("Package: a\nno colon here\n")
    with pytest.raises(InvalidInputError):
        read_packages_file(str(tmp_path / "missing"))
    with pytest.raises(InvalidInputError):
        load_records([])


def test_later_index_wins_and_compressed(tmp_path):
    import gzip
    p1 = tmp_path / "Packages"
    p1.write_text("Package: a\nVersion: 1\nDepends: b\n\nPackage: b\n")
    p2 = tmp_path / "Packages.gz"
    with gzip.open(p2, "wt") as fh:
        fh.write("Package: a\nVersion: 2\n")
    recs = load_records([str(p1), str(p2)])
    assert [(r.package, r.version) for r in recs] == [("a", "2"), ("b", "")]
    assert dependency_graph(recs).edge_index.shape == (2, 0)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(CorruptFileError):
        read_packages_file(str(bad))


def test_lz4_index(tmp_path):
    import shutil
    import subprocess
    from tests._require import unavailable

    if shutil.which("lz4") is None:
        unavailable("lz4 command", "not installed (Debian package lz4)")
    out = tmp_path / "Packages.lz4"
    subprocess.run(["lz4", "-q", "-f", SAMPLE, str(out)], check=True)
    assert [r.package for r in read_packages_file(str(out))] == [r.package for r in read_packages_file(SAMPLE)]
