"""`veil enclave serve` end to end on real vLLM (CPU) and a REAL key broker: its own progress lines in order,
`--quiet` silencing vLLM's INFO logging, and a shutdown on SIGTERM with exit 0 and no traceback.

Two engine start-ups (about a minute each here): one fetching the key from the broker, one from a key file
with --quiet."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: pip install -e '.[cpu,enclave]' (see docs/enclave.md)")
pytest.importorskip("smg_grpc_servicer", reason="smg-grpc-servicer is not installed: pip install -e '.[enclave]'")

from tests.enclave.conftest import BOOT_RESOURCE as RESOURCE  # noqa: E402

pytestmark = pytest.mark.vllm
REPO = Path(__file__).resolve().parents[2]
READY_S = 420
PROGRESS = [r"attested to the broker at http://127\.0\.0\.1:\d+ \(tdx evidence accepted\)",
            rf"key received: {re.escape(RESOURCE)} ",
            r"vLLM starting on tiny ",
            r"unsealed \d[\d.e+-]* GB in \d+\.\d\d s at \d[\d.e+-]* GB/s",
            r"serving tiny on port \d+ \(TLS only\)",
            r"ready in \d+\.\d s: ",
            r"shutting down: NOT_SERVING, draining",
            r"stopped: engine shut down"]


def serve_until_ready_then_stop(workdir: Path, sealed: Path, vendor_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run `veil enclave serve`, SIGTERM it once it says it is ready; (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_LOGGING")}
    env |= {"PYTHONPATH": str(REPO), "VLLM_CPU_KVCACHE_SPACE": "1"}
    out, err = workdir / "serve.out", workdir / "serve.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "enclave", "serve", "--sealed", str(sealed), "--emulated",
             "--tee", "tdx", "--vendor-dir", str(vendor_dir), "--host", "127.0.0.1", "--port", "0",
             "--no-client-auth", "--dtype", "float32", "--max-model-len", "256", "--gpu-memory-utilization", "0.1",
             "--enforce-eager", *args], cwd=workdir, env=env, stdout=stdout, stderr=stderr)
        try:
            deadline = time.monotonic() + READY_S
            while not re.search(r"^ready in ", out.read_text(), re.M):
                assert proc.poll() is None, f"exited {proc.returncode}: {err.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"not ready in {READY_S} s: {err.read_text()[-3000:]}"
                time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, out.read_text(), err.read_text()


def assert_clean_shutdown(code: int, stdout: str, stderr: str) -> None:
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "__del__" not in stderr, stderr[-3000:]


def test_serve_prints_its_progress_in_order_and_stops_cleanly(boot_broker, vendor, sealed_key, tmp_path):
    sealed, _ = sealed_key
    code, stdout, stderr = serve_until_ready_then_stop(tmp_path, sealed, vendor.directory, "--broker", boot_broker.url,
                                                       "--resource", RESOURCE)
    assert_clean_shutdown(code, stdout, stderr)
    lines = stdout.splitlines()
    found = []
    for pattern in PROGRESS:
        hits = [i for i, line in enumerate(lines) if re.match(pattern, line)]
        assert hits, f"no line matching {pattern!r} in:\n{stdout[-4000:]}"
        found.append(hits[0])
    assert found == sorted(found), [lines[i] for i in found]
    assert re.search(r"\bINFO\b", stdout + stderr), "vLLM logs at INFO by default (what --quiet must silence)"


def test_quiet_keeps_the_progress_lines_and_silences_vllm_info(sealed_key, tmp_path):
    sealed, value = sealed_key
    key_file = tmp_path / "tiny.key"
    key_file.write_bytes(value)
    code, stdout, stderr = serve_until_ready_then_stop(tmp_path, sealed, tmp_path / "vendor", "--key-file",
                                                       str(key_file), "--quiet")
    assert_clean_shutdown(code, stdout, stderr)
    for pattern in PROGRESS[2:]:
        assert re.search("^" + pattern, stdout, re.M), pattern
    info = [line for line in (stdout + stderr).splitlines() if re.search(r"\bINFO\b", line)]
    assert not info, info[:5]
