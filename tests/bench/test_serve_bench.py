"""bench/serve.py end to end with tiny settings: both servers start, the load runs, the JSON line is well-formed.

Checks the shape and sign of the figures, not the goal values (this machine is
shared and small). Two engine start-ups (~30 s each here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: pip install -e '.[cpu,enclave]' (see docs/enclave.md)")
pytest.importorskip("smg_grpc_servicer", reason="smg-grpc-servicer is not installed: pip install -e '.[enclave]'")

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[2]
LEVEL_KEYS = {"streams", "calls", "rounds", "baseline_tokens_per_s", "enclave_tokens_per_s", "tokens_per_s_ratio",
              "baseline_ttft_p50_ms", "baseline_ttft_p99_ms", "enclave_ttft_p50_ms", "enclave_ttft_p99_ms",
              "ttft_p50_delta_ms", "baseline_chunks_per_call", "enclave_chunks_per_call",
              "baseline_server_cpu_us_per_token", "enclave_server_cpu_us_per_token",
              "baseline_client_cpu_us_per_token", "enclave_client_cpu_us_per_token"}


def test_serve_bench_prints_its_figures_as_the_last_line():
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "serve.py"), "--streams", "1,2", "--max-tokens", "4",
                           "--requests", "1", "--rounds", "1"], capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["max_tokens"], result["requests_per_stream"], result["rounds"]) == (4, 1, 1)
    assert [lv["streams"] for lv in result["levels"]] == [1, 2]
    for lv in result["levels"]:
        assert set(lv) == LEVEL_KEYS
        assert lv["calls"] == lv["streams"] and lv["rounds"] == 1
        assert 1 <= lv["baseline_chunks_per_call"] <= 4 and 1 <= lv["enclave_chunks_per_call"] <= 4
        cpu = {k for k in LEVEL_KEYS if "_cpu_" in k}       # clock-tick resolution: 4 tokens may read 0
        for key in LEVEL_KEYS - cpu - {"ttft_p50_delta_ms"}:
            assert lv[key] > 0, key
        assert all(lv[key] >= 0 for key in cpu)
        assert lv["ttft_p50_delta_ms"] == pytest.approx(lv["enclave_ttft_p50_ms"] - lv["baseline_ttft_p50_ms"],
                                                        abs=0.02)
        assert lv["tokens_per_s_ratio"] == pytest.approx(lv["enclave_tokens_per_s"] / lv["baseline_tokens_per_s"],
                                                         rel=0.01)
    assert result["tokens_per_s_ratio"] == min(lv["tokens_per_s_ratio"] for lv in result["levels"])
    assert result["ttft_p50_delta_ms"] == max(lv["ttft_p50_delta_ms"] for lv in result["levels"])
    assert result["outputs_identical"] is True and result["mismatched_prompts"] == 0


def test_serve_bench_rejects_bad_concurrency_levels():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "serve.py"), "--streams", "0,8"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert "concurrency levels must be positive integers" in done.stderr
