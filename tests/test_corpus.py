"""corpus/README.md lists every file of corpus/ with its SHA-256, and nothing is missing or extra."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
ROW = re.compile(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|", re.MULTILINE)


def listed() -> dict[str, str]:
    return dict(ROW.findall((CORPUS / "README.md").read_text()))


def test_readme_lists_files():
    assert len(listed()) >= 50


def test_every_listed_file_has_its_sha256():
    wrong = {p: h for p, h in listed().items()
             if not (CORPUS / p).is_file() or hashlib.sha256((CORPUS / p).read_bytes()).hexdigest() != h}
    assert wrong == {}


def test_every_file_in_corpus_is_listed():
    present = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()} - {"README.md"}
    assert present - set(listed()) == set()


def test_demo_finds_the_corpus_of_its_checkout(monkeypatch):
    from veil.cli.demo import find_corpus

    monkeypatch.delenv("VEIL_CORPUS", raising=False)
    assert find_corpus() == CORPUS / "evidence"


def test_demo_prefers_veil_corpus(monkeypatch, tmp_path):
    from veil.cli.demo import find_corpus

    (tmp_path / "evidence").mkdir()
    monkeypatch.setenv("VEIL_CORPUS", str(tmp_path))
    assert find_corpus() == tmp_path / "evidence"
