"""Shared fixtures: where the real evidence corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Rich wraps console output at the terminal width (80 when there is none); tests read
# whole lines, so give the CLI a wide virtual terminal.
os.environ.setdefault("COLUMNS", "200")

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("VEIL_CORPUS") or REPO / "corpus")   # corpus/README.md lists its files
EVIDENCE = CORPUS / "evidence"


@pytest.fixture(scope="session")
def evidence_dir() -> Path:
    if not EVIDENCE.is_dir():
        pytest.fail(f"real evidence corpus not found at {EVIDENCE}; set VEIL_CORPUS to a folder holding evidence/")
    return EVIDENCE
