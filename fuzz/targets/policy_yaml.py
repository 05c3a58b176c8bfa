"""Release policy YAML, through the loader the CLI and broker use (policies.loader.load_policy and lint).

Only PolicyLoadError may come out of load_policy; lint reports problems and
never raises. The input is written to a file because that is the API.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from policies.errors import PolicyLoadError
from policies.loader import lint, load_policy

REFERENCES = Path(__file__).resolve().parents[2] / "policies" / "examples"
_DIR = Path(tempfile.mkdtemp(prefix="veil-fuzz-policy-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
_FILE = _DIR / "policy.yaml"


def test_one_input(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        load_policy(_FILE, [REFERENCES])
    except PolicyLoadError:
        pass
    lint([_FILE])
