"""Shared fixtures: where the real evidence corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Rich wraps console output at the terminal width (80 when there is none); tests read
# whole lines, so give the CLI a wide virtual terminal.
os.environ.setdefault("COLUMNS", "200")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VEIL_SHARED", REPO.parent / "shared"))
EVIDENCE = SHARED / "evidence"


@pytest.fixture(scope="session")
def evidence_dir() -> Path:
    if not EVIDENCE.is_dir():
        pytest.fail(f"real evidence corpus not found at {EVIDENCE}; set VEIL_SHARED to the shared/ folder")
    return EVIDENCE
