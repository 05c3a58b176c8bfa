"""bench/broker.py and bench/broker_profile.py end to end with tiny settings: the broker and the floor
start, complete releases run, and the last line is well-formed JSON with positive figures.

Checks shape and sign, not the goal values (a small shared machine runs the tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def last_json(argv: list[str]) -> dict:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_broker_bench_prints_its_figures_as_the_last_line():
    result = last_json([str(ROOT / "bench" / "broker.py"), "--seconds", "1", "--clients", "1,4", "--procs", "1"])
    assert set(result) == {"releases_per_s_64", "p99_ms_64", "fraction_of_http_floor", "broker_cpu_ms_per_release",
                           "load_cpu_ms_per_release", "broker_kib_written_per_release", "floor_server_cpu_ms_per_request",
                           "floor_load_cpu_ms_per_request", "floor_p50_ms_64", "floor_p99_ms_64"}
    assert result["floor_p99_ms_64"] >= result["floor_p50_ms_64"] > 0 and result["floor_load_cpu_ms_per_request"] > 0
    assert result["releases_per_s_64"] > 0 and result["p99_ms_64"] > 0 and 0 < result["fraction_of_http_floor"] < 1
    # a release costs the broker more CPU than a trivial request costs the floor server
    assert result["broker_cpu_ms_per_release"] > result["floor_server_cpu_ms_per_request"] > 0
    assert result["load_cpu_ms_per_release"] > 0
    # each release writes at least its attestation entry, whose evidence alone is about 8 KiB of base64
    assert result["broker_kib_written_per_release"] > 8


def test_broker_profile_reports_server_time_per_release():
    result = last_json([str(ROOT / "bench" / "broker_profile.py"), "--releases", "10"])
    assert result["profiled"] is False and result["server_ms_per_release"] > 0
    assert 0 < result["server_cpu_ms_per_release"] <= result["server_ms_per_release"] * 1.5   # CPU of every thread
