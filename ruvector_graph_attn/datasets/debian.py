"""Debian package archive indexes (``Packages`` files) as a real graph with texts.

The ``Packages`` index that ``apt-get update`` fetches holds one record ("stanza") per binary
package: ``Field: value`` lines, continuation lines starting with a space or tab, records
separated by blank lines (Debian Policy, section 5.1). This module reads the fields the
benchmarks need:

``Package``      the node id.
``Depends``      comma-separated groups; each group is one or more alternatives ``a | b``;
                 each alternative ``name[:arch] [(op version)] [[arch list]]`` (Policy 7.1).
                 Version constraints and architecture restrictions are kept in the parsed
                 record but do not change the graph; ``:any`` / ``:native`` qualifiers are
                 stripped from the name.
``Section``      the label for section classification (an archive-area prefix such as
                 ``contrib/`` or ``non-free/`` is dropped: ``contrib/games`` -> ``games``).
``Description``  first line the synopsis, following lines the extended description (a line
                 holding only ``.`` is a paragraph break).

Graph (:func:`dependency_graph`): one node per distinct package name (sorted by name, so node
indices are reproducible); for every ``Depends`` group one edge ``package -> dependency`` to the
first alternative that is a real package in the archive (the alternative apt tries first);
when no alternative is a real package but one is provided (``Provides``) by real packages, the
edge goes to the provider that sorts first by name. Self-loops and repeated edges are dropped.
When several indexes list the same package (the release, ``-updates``, ``-security``), the
record read last wins, so pass the indexes in the order release, updates, security.
"""
from __future__ import annotations

import bz2
import glob
import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

from ..errors import CorruptFileError, InvalidInputError

__all__ = [
    "Dependency", "PackageRecord", "DependencyGraph", "parse_packages", "parse_depends",
    "read_packages_file", "default_package_lists", "load_records", "dependency_graph",
    "package_text",
]

_FIELD = re.compile(r"^([!-9;-~]+):[ \t]*(.*)$")   # field names: printable ASCII except ':'
_ALT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9+.\-]*)(?::(?P<arch>[A-Za-z0-9\-]+))?"
    r"\s*(?:\(\s*(?P<op><<|<=|=|>=|>>|<|>)\s*(?P<ver>[^)\s]+)\s*\))?"
    r"\s*(?:\[(?P<archs>[^\]]*)\])?\s*(?:<[^>]*>\s*)*$")


@dataclass(frozen=True)
class Dependency:
    """One alternative of a relation field: ``name[:arch] (op version) [archs]``."""

    name: str
    arch: Optional[str] = None          # ":any", ":native", ":amd64" qualifier (without ':')
    op: Optional[str] = None            # "<<", "<=", "=", ">=", ">>" (legacy "<"/">" kept as written)
    version: Optional[str] = None
    archs: tuple = ()                   # architecture restriction list "[amd64 !i386]"


@dataclass
class PackageRecord:
    """The fields of one ``Packages`` stanza that the benchmarks use."""

    package: str
    version: str = ""
    architecture: str = ""
    section: str = ""
    synopsis: str = ""
    description: str = ""               # extended description, paragraphs joined by blank lines
    depends: list = field(default_factory=list)    # list[list[Dependency]]: groups of alternatives
    provides: list = field(default_factory=list)   # list[Dependency]


def parse_depends(value: str, field_name: str = "Depends") -> list:
    """Parse a relation field into groups of alternatives: ``list[list[Dependency]]``.

    >>> [[d.name for d in g] for g in parse_depends("libc6 (>= 2.34), python3:any | pypy")]
    [['libc6'], ['python3', 'pypy']]
    """
    groups = []
    for group in value.split(","):
        group = group.strip()
        if not group:
            continue
        alts = []
        for alt in group.split("|"):
            m = _ALT.match(alt)
            if m is None:
                raise InvalidInputError(f"malformed {field_name} entry {alt.strip()!r} in {value[:200]!r}")
            archs = tuple(m.group("archs").split()) if m.group("archs") else ()
            alts.append(Dependency(m.group("name"), m.group("arch"), m.group("op"), m.group("ver"), archs))
        groups.append(alts)
    return groups


def _stanzas(lines: Iterable[str]):
    fields: dict = {}
    last: Optional[str] = None
    lineno = 0
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                raise CorruptFileError(f"line {lineno}: continuation line outside a field: {line[:80]!r}")
            fields[last].append(line[1:])
            continue
        m = _FIELD.match(line)
        if m is None:
            raise CorruptFileError(f"line {lineno}: expected 'Field: value', got {line[:80]!r}")
        last = m.group(1).lower()
        fields[last] = [m.group(2)]
    if fields:
        yield fields


def _description(parts: list) -> tuple[str, str]:
    synopsis = parts[0].strip()
    paras, cur = [], []
    for line in parts[1:]:
        s = line.strip()
        if s == ".":
            if cur:
                paras.append(" ".join(cur))
            cur = []
        elif s:
            cur.append(s)
    if cur:
        paras.append(" ".join(cur))
    return synopsis, "\n\n".join(paras)


def parse_packages(lines: Iterable[str]) -> list:
    """Parse ``Packages`` text (an iterable of lines, or one string) into :class:`PackageRecord` s
    in file order. Stanzas without a ``Package`` field raise :class:`CorruptFileError`."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    out = []
    for f in _stanzas(lines):
        if "package" not in f:
            raise CorruptFileError(f"a Packages stanza has no Package field (fields: {sorted(f)[:8]})")
        rec = PackageRecord(package=f["package"][0].strip())
        rec.version = " ".join(f.get("version", [""])).strip()
        rec.architecture = " ".join(f.get("architecture", [""])).strip()
        section = " ".join(f.get("section", [""])).strip()
        rec.section = section.rsplit("/", 1)[-1]
        if "description" in f:
            rec.synopsis, rec.description = _description(f["description"])
        if "depends" in f:
            rec.depends = parse_depends(" ".join(f["depends"]), "Depends")
        if "provides" in f:
            rec.provides = [g[0] for g in parse_depends(" ".join(f["provides"]), "Provides")]
        out.append(rec)
    return out


def read_packages_file(path: str) -> list:
    """Records of one ``Packages`` file; ``.gz``, ``.xz``, ``.bz2`` are decompressed in process,
    ``.lz4`` (apt's default on-disk format) with the ``lz4`` command-line tool."""
    if not os.path.isfile(path):
        raise InvalidInputError(f"no such Packages file: {path!r}")
    if path.endswith(".lz4"):
        tool = shutil.which("lz4")
        if tool is None:
            raise InvalidInputError(f"{path} is lz4-compressed and the 'lz4' command is not installed")
        proc = subprocess.run([tool, "-dc", path], capture_output=True, check=False)
        if proc.returncode != 0:
            raise CorruptFileError(f"lz4 could not decompress {path}: {proc.stderr.decode(errors='replace')[:200]}")
        text = proc.stdout.decode("utf-8", errors="replace")
    else:
        opener = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}.get(os.path.splitext(path)[1], open)
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise CorruptFileError(f"could not read {path}: {exc}") from exc
    return parse_packages(text.splitlines())


def default_package_lists(lists_dir: str = "/var/lib/apt/lists") -> list:
    """The binary ``Packages`` indexes apt keeps in ``lists_dir``, ordered release, updates,
    security, backports (then by name), so later (newer) records win in :func:`load_records`."""
    paths = [p for p in glob.glob(os.path.join(lists_dir, "*_binary-*_Packages*"))
             if not p.endswith(".diff_Index")]

    def rank(p: str):
        b = os.path.basename(p)
        return (2 if "-security" in b else 1 if "-updates" in b else 3 if "-backports" in b else 0, b)

    return sorted(paths, key=rank)


def load_records(paths: Sequence[str]) -> list:
    """Records of several indexes, one per package name (the record read last wins), sorted by name."""
    if not paths:
        raise InvalidInputError("no Packages files given (run `apt-get update` to fetch them)")
    by_name: dict = {}
    for p in paths:
        for r in read_packages_file(p):
            by_name[r.package] = r
    return [by_name[k] for k in sorted(by_name)]


def package_text(rec: PackageRecord, max_chars: int = 600) -> str:
    """The text embedded for a package: synopsis, then the extended description, cut to
    ``max_chars`` characters (the package name is left out: it would leak dependency names)."""
    text = rec.synopsis if not rec.description else f"{rec.synopsis}. {rec.description}"
    return text.replace("\n\n", " ")[:max_chars]


@dataclass
class DependencyGraph:
    """A package dependency graph: ``edge_index[0] -> edge_index[1]`` means "depends on"."""

    names: list                 # node index -> package name (sorted)
    edge_index: np.ndarray      # [2, E] int64
    sections: list              # node index -> section name
    texts: list                 # node index -> text to embed (see package_text)
    records: list

    @property
    def num_nodes(self) -> int:
        return len(self.names)

    def section_labels(self) -> tuple[np.ndarray, list]:
        """``(y [N] int64, class names)``: section index of every node (classes sorted by name)."""
        classes = sorted(set(self.sections))
        pos = {c: i for i, c in enumerate(classes)}
        return np.array([pos[s] for s in self.sections], np.int64), classes

    def fingerprint(self) -> str:
        """SHA-256 of the node names, texts and edges (keys caches of derived data)."""
        h = hashlib.sha256()
        for n, t in zip(self.names, self.texts):
            h.update(n.encode())
            h.update(b"\0")
            h.update(t.encode())
            h.update(b"\1")
        h.update(np.ascontiguousarray(self.edge_index).tobytes())
        return h.hexdigest()


def dependency_graph(records: Sequence[PackageRecord], max_chars: int = 600) -> DependencyGraph:
    """Build the graph described in the module docstring from parsed records."""
    by_name: dict = {}
    for r in records:
        by_name[r.package] = r
    names = sorted(by_name)
    pos = {n: i for i, n in enumerate(names)}
    providers: dict = {}
    for n in names:
        for p in by_name[n].provides:
            providers.setdefault(p.name, []).append(n)
    src, dst = [], []
    for n in names:
        i = pos[n]
        for group in by_name[n].depends:
            target = next((a.name for a in group if a.name in pos), None)
            if target is None:
                provs = sorted({q for a in group for q in providers.get(a.name, ())})
                target = provs[0] if provs else None
            if target is not None and pos[target] != i:
                src.append(i)
                dst.append(pos[target])
    if src:
        ei = np.unique(np.array([src, dst], np.int64), axis=1)
    else:
        ei = np.zeros((2, 0), np.int64)
    recs = [by_name[n] for n in names]
    return DependencyGraph(names=names, edge_index=ei, sections=[r.section or "unknown" for r in recs],
                           texts=[package_text(r, max_chars) for r in recs], records=recs)
