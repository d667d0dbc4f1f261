"""WordNet noun hierarchy from the Princeton WordNet 3.0 database files (Debian package
``wordnet-base``: ``/usr/share/wordnet/data.noun`` and ``index.noun``).

Used only for the Poincaré-embedding reconstruction benchmark. ``data.noun`` has one synset per
line: ``offset lex_filenum ss_type w_cnt word lex_id ... p_cnt [symbol offset pos source/target]...
| gloss`` (``w_cnt`` in hexadecimal; see wndb(5WN)). Hypernym pointers have the symbol ``@``
(instance hypernyms ``@i`` are not followed, as NLTK's ``hypernyms()`` does not). A synset is
named ``lemma.n.NN`` by its first lemma and that lemma's sense number from ``index.noun`` (the
position of the offset in the lemma's sense list), the NLTK convention.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import CorruptFileError, InvalidInputError, UnknownIdError

__all__ = ["read_noun_hypernyms", "subtree_closure", "WORDNET_DIR"]

WORDNET_DIR = "/usr/share/wordnet"


def _lines(path: str):
    if not os.path.isfile(path):
        raise InvalidInputError(f"{path} not found (install the Debian package wordnet-base)")
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("  "):          # the licence header lines start with two spaces
                yield line


def read_noun_hypernyms(wordnet_dir: str = WORDNET_DIR):
    """``(hypernyms: dict offset -> list of hypernym offsets, names: dict offset -> lemma.n.NN)``."""
    hyper: dict = {}
    first_lemma: dict = {}
    for line in _lines(os.path.join(wordnet_dir, "data.noun")):
        parts = line.split(" | ", 1)[0].split()
        try:
            off = int(parts[0])
            w_cnt = int(parts[3], 16)
            lemma = parts[4].lower()
            p = 4 + 2 * w_cnt
            p_cnt = int(parts[p])
            ptrs = parts[p + 1: p + 1 + 4 * p_cnt]
        except (IndexError, ValueError) as exc:
            raise CorruptFileError(f"malformed data.noun line: {line[:80]!r}") from exc
        hyper[off] = [int(ptrs[i + 1]) for i in range(0, len(ptrs), 4)
                      if ptrs[i] == "@" and ptrs[i + 2] == "n"]
        first_lemma[off] = lemma
    sense: dict = {}
    for line in _lines(os.path.join(wordnet_dir, "index.noun")):
        parts = line.split()
        try:
            lemma = parts[0]
            syn_cnt = int(parts[2])
            offsets = [int(x) for x in parts[-syn_cnt:]]
        except (IndexError, ValueError) as exc:
            raise CorruptFileError(f"malformed index.noun line: {line[:80]!r}") from exc
        for i, off in enumerate(offsets, 1):
            sense[(lemma, off)] = i
    names = {off: f"{lem}.n.{sense.get((lem, off), 1):02d}" for off, lem in first_lemma.items()}
    return hyper, names


def subtree_closure(root: str = "mammal.n.01", wordnet_dir: str = WORDNET_DIR):
    """``(names [N], pairs [P, 2])``: the synsets under ``root`` (hyponym closure plus ``root``,
    sorted by name) and every pair ``(u, a)`` with ``a`` a hypernym ancestor of ``u`` inside that set."""
    hyper, names = read_noun_hypernyms(wordnet_dir)
    by_name = {v: k for k, v in names.items()}
    if root not in by_name:
        raise UnknownIdError([root], "WordNet nouns")
    r = by_name[root]
    memo: dict = {}

    def ancestors(o):
        if o in memo:
            return memo[o]
        memo[o] = set()                                # guards cycles (WordNet has none)
        acc = set()
        for h in hyper.get(o, ()):
            acc.add(h)
            acc |= ancestors(h)
        memo[o] = acc
        return acc

    import sys
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    members = sorted((o for o in hyper if o == r or r in ancestors(o)), key=lambda o: names[o])
    pos = {o: i for i, o in enumerate(members)}
    pairs = sorted((pos[o], pos[a]) for o in members for a in ancestors(o) if a in pos)
    return [names[o] for o in members], np.array(pairs, dtype=np.int64).reshape(-1, 2)
