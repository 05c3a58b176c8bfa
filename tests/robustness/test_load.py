"""bench/load.py, briefly: 32 clients doing complete key releases for 10 s against one broker on SQLite and
against two replicas sharing PostgreSQL (skipped where none is reachable). Zero errors; bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RSS_GROWTH_MB = 100          # all replicas together, over the measured window


@pytest.mark.parametrize("config", ["sqlite", "postgresql"])
def test_releases_under_load_have_no_errors_and_bounded_memory(config):
    out = subprocess.run([sys.executable, str(REPO / "bench" / "load.py"), "--configs", config, "--seconds", "10",
                          "--clients", "32", "--warmup", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    [row] = json.loads(out.stdout.strip().splitlines()[-1])
    if "skipped" in row:
        pytest.skip(f"{config}: {row['skipped']} at 127.0.0.1:5432 (CI provides one)")
    assert row["replicas"] == (1 if config == "sqlite" else 2)
    assert row["errors"] == 0, row["error_kinds"]
    assert row["releases"] > 0 and row["p99_ms"] is not None
    assert row["rss_end_mb"] - row["rss_start_mb"] < RSS_GROWTH_MB, row
