"""Sealing and unsealing throughput, and time-to-ready of a sealed model vs the plaintext one in vLLM.

    .venv/bin/python bench/unseal.py [--model-dir DIR] [--skip-vllm]

Builds a ≥ 1 GB Llama-shaped model locally (enclave.testmodel, size "1gb")
unless --model-dir names one, seals it, then measures:

- seal and unseal GB/s (unseal = authenticate and decrypt every chunk into
  locked anonymous memory, all cores, as the vLLM loader does);
- this machine's AES-256-GCM `decrypt_into` rate on one core (4 MiB chunks,
  the format's default) — the limit is that rate × the cores used;
- the rate at which the machine hands out fresh locked memory of the model's
  size (page faults, zeroing, mlock): a floor under any in-memory load;
- time-to-ready: a fresh process starting vLLM on the plaintext model vs on
  the sealed model (load format `veil-sealed`, key through the key agent).

The last line is JSON with `unseal_fraction_of_aes_limit` (unseal GB/s over
single-core AES GB/s × workers) and `time_to_ready_ratio` (sealed / plain).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GB = 1e9


def aes_single_core_gbps(seconds: float = 2.0, chunk: int = 4 << 20) -> float:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aes = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    sealed = aes.encrypt(nonce, os.urandom(chunk), b"")
    out = bytearray(chunk)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        aes.decrypt_into(nonce, sealed, b"", out)
        done += chunk
    return done / (time.perf_counter() - start) / GB


def fault_in_gbps(size: int, workers: int) -> float:
    """How fast this machine hands out fresh locked anonymous memory (what any in-memory load pays: page faults,
    zeroing, locking) to `workers` threads faulting it in chunk-sized pieces, as unsealing does: a floor under
    unsealing that no cipher speed removes."""
    from concurrent.futures import ThreadPoolExecutor

    from enclave.sealing import CHUNK_SIZE as chunk
    from enclave.secrets import SecureBuffer

    start = time.perf_counter()
    with SecureBuffer(size) as buffer, ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda at: buffer.populate(at, min(at + chunk, size)), range(0, size, chunk)))
        elapsed = time.perf_counter() - start
    return size / elapsed / GB


def model_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())


def seal_and_unseal(model_dir: Path, work: Path, runs: int):
    """Seal once, then unseal `runs` times (each: decrypt every file into fresh locked memory, then wipe it):
    (key, sealed dir, bytes, seal seconds, unseal seconds per run, worker threads). The first run is the first
    time this process touches that much memory, which on a VM costs more (the host backs the pages then)."""
    from enclave.secrets import DataKey
    from enclave.sealing import open_sealed, seal_model

    key = DataKey.generate()
    size = model_bytes(model_dir)
    sealed = work / "sealed"
    start = time.perf_counter()
    seal_model(model_dir, sealed, key)
    seal_s = time.perf_counter() - start
    model = open_sealed(sealed, key)
    unseal_s = []
    for _ in range(runs):
        start = time.perf_counter()
        for _name, buffer in model.read_all():
            buffer.close()
        unseal_s.append(time.perf_counter() - start)
    return key, sealed, size, seal_s, unseal_s, model._workers


CHILD = """
import sys, time
start = time.perf_counter()
from vllm import LLM
if __name__ == "__main__":
    kind, model = sys.argv[1], sys.argv[2]
    kwargs = dict(dtype="float32", max_model_len=256, gpu_memory_utilization=0.1, enforce_eager=True)
    if kind == "sealed":
        from enclave.plugin import register
        register()
        kwargs.update(load_format="veil-sealed",
                      model_loader_extra_config={"sealed_dir": sys.argv[3], "key_agent": sys.argv[4]})
    llm = LLM(model=model, **kwargs)
    print("READY", time.perf_counter() - start, flush=True)
"""


def time_to_ready(args: list[str], work: Path) -> float:
    script = work / "ready.py"
    script.write_text(CHILD)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                          timeout=900)
    wall = time.perf_counter() - start
    if done.returncode != 0 or "READY" not in done.stdout:
        raise SystemExit(f"vLLM did not become ready ({args[0]}):\n{done.stderr[-3000:]}")
    return wall


def sealed_ready(sealed: Path, key, work: Path) -> float:
    from enclave.keyagent import KeyAgent
    from enclave.sealing import open_sealed
    from enclave.staging import staged_config

    start = time.perf_counter()
    with staged_config(open_sealed(sealed, key)) as config, KeyAgent(key) as agent:
        staging = time.perf_counter() - start
        return staging + time_to_ready(["sealed", str(config), str(sealed), agent.name], work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="an existing model directory (default: build 1 GB)")
    parser.add_argument("--skip-vllm", action="store_true", help="throughput only, no time-to-ready")
    parser.add_argument("--runs", type=int, default=3, help="unseal and fault-in runs (the median is reported)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="veil-bench-unseal-"))
    try:
        model_dir = args.model_dir
        if model_dir is None:
            from enclave.testmodel import build_test_model
            print("building a 1 GB test model …", flush=True)
            model_dir = build_test_model(work / "model", size="1gb")
        key, sealed, size, seal_s, unseal_runs, workers = seal_and_unseal(model_dir, work, args.runs)
        unseal = size / statistics.median(unseal_runs) / GB
        aes = aes_single_core_gbps()
        fault = statistics.median(fault_in_gbps(size, workers) for _ in range(args.runs))
        result = {"model_bytes": size, "seal_gbps": round(size / seal_s / GB, 3), "unseal_gbps": round(unseal, 3),
                  "unseal_first_run_gbps": round(size / unseal_runs[0] / GB, 3), "workers": workers,
                  "aes_gcm_single_core_gbps": round(aes, 3),
                  "unseal_fraction_of_aes_limit": round(unseal / (aes * workers), 3),
                  "fault_in_gbps": round(fault, 3), "unseal_fraction_of_fault_in": round(unseal / fault, 3)}
        print(f"sealed {size / GB:.2f} GB at {result['seal_gbps']} GB/s; unsealed at {result['unseal_gbps']} GB/s "
              f"(median of {args.runs}; first run {result['unseal_first_run_gbps']} GB/s; {workers} workers); "
              f"AES-256-GCM decrypt_into on one core: {result['aes_gcm_single_core_gbps']} GB/s; "
              f"fresh locked memory alone, {workers} threads: {result['fault_in_gbps']} GB/s")
        if not args.skip_vllm:
            plain = time_to_ready(["plain", str(model_dir)], work)
            sealed_s = sealed_ready(sealed, key, work)
            result.update(plain_ready_s=round(plain, 2), sealed_ready_s=round(sealed_s, 2),
                          time_to_ready_ratio=round(sealed_s / plain, 3))
            print(f"time to ready: plaintext {plain:.1f} s, sealed {sealed_s:.1f} s")
        key.wipe()
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
