"""Serving through the enclave vs vLLM's own plaintext gRPC server: output tokens/s and time to first token.

    .venv/bin/python bench/serve.py [--streams 1,8,32] [--max-tokens 32] [--requests 3] [--rounds 3]
                                    [--model-dir DIR]

Both sides serve the same model with the same engine settings, one server
process at a time:

- baseline: vLLM's unmodified gRPC launcher (`python -m
  vllm.entrypoints.launchers.grpc_server`, smg-grpc-servicer's VllmEngineServicer
  on an insecure port) over the plaintext model directory;
- enclave: `veil enclave serve` on the sealed model (emulated TDX, key file) —
  TLS whose key the attestation binds, bearer-JWT auth, signed per-call audit.
  The client attests it once (enclave.client.attest, development policy) and
  then streams over a channel pinned to the attested certificate, as a real
  client does.

For each side and each concurrency level N, N streams each send `--requests`
streaming Generate calls back to back (greedy, fixed max_tokens, ignore_eos,
so both sides produce the same token counts), after warm-up calls. Output
tokens/s is all output tokens over the level's wall time; TTFT is client-side,
from the call's start to its first streamed token. Each level runs `--rounds`
times and the best round counts (highest tokens/s, lowest TTFT p50 and p99):
other processes on a small shared machine only ever slow a round down. The
greedy completions of both sides are compared prompt by prompt.

Wall-clock figures on a shared machine move with everyone else's load, so the
bench also counts CPU time per output token, summed over all rounds: of the
server's front-end process (gRPC, TLS, auth, call audit, the servicer, the
AsyncLLM output loop — everything the enclave adds runs there; the engine
core and its workers are separate processes) and of this client process.

The last line is JSON with `tokens_per_s_ratio` (enclave / baseline, worst
level), `ttft_p50_delta_ms` (enclave − baseline p50, worst level) and `levels`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL_NAME = "veil-tiny"
AUDIENCE = "veil-enclave"
ENGINE_ARGS = ("--dtype", "float32", "--max-model-len", "256", "--gpu-memory-utilization", "0.1",
               "--enforce-eager")
PROMPTS = (
    "Confidential computing keeps",
    "The key broker releases",
    "Veil runs vLLM inside",
    "Hello world, this is",
    "Attested TLS binds the server",
    "The enclave decrypts the weights",
    "Every call is audited and",
    "A sealed model never leaves",
)


@dataclass
class Level:
    """One side at one concurrency: per-call TTFTs, token counts and completions by prompt."""

    streams: int
    wall_s: float = 0.0
    tokens: int = 0
    chunks: int = 0
    server_cpu_s: float = 0.0          # the server's front-end process (not the engine core)
    client_cpu_s: float = 0.0
    ttft_ms: list[float] = field(default_factory=list)
    outputs: dict[str, list[int]] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    def ttft(self, q: float) -> float:
        ordered = sorted(self.ttft_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the load: the same client code for both sides -----------------------------------------------------


def generate_request(prompt: str, max_tokens: int):
    from smg_grpc_proto import vllm_engine_pb2

    return vllm_engine_pb2.GenerateRequest(
        request_id=str(uuid.uuid4()), text=prompt, stream=True,
        sampling_params=vllm_engine_pb2.SamplingParams(temperature=0.0, max_tokens=max_tokens, min_tokens=max_tokens,
                                                       ignore_eos=True, skip_special_tokens=True))


async def one_call(stub, metadata, prompt: str, max_tokens: int, level: Level) -> None:
    ids: list[int] = []
    first: float | None = None
    start = time.perf_counter()
    async for reply in stub.Generate(generate_request(prompt, max_tokens), metadata=metadata):
        if reply.HasField("chunk") and reply.chunk.token_ids:
            if first is None:
                first = time.perf_counter()
            ids.extend(reply.chunk.token_ids)
            level.chunks += 1
    if first is None or len(ids) != max_tokens:
        raise SystemExit(f"a call returned {len(ids)} tokens where {max_tokens} were asked (ignore_eos)")
    level.ttft_ms.append((first - start) * 1000)
    level.tokens += len(ids)
    level.outputs.setdefault(prompt, ids)


def cpu_seconds(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def run_level(stub, metadata, streams: int, requests: int, max_tokens: int, server=None) -> Level:
    import psutil

    level = Level(streams)
    client = psutil.Process()
    cpu = (cpu_seconds(server) if server else 0.0, cpu_seconds(client))

    async def stream(index: int) -> None:
        for r in range(requests):
            await one_call(stub, metadata, PROMPTS[(index + r) % len(PROMPTS)], max_tokens, level)

    start = time.perf_counter()
    await asyncio.gather(*(stream(i) for i in range(streams)))
    level.wall_s = time.perf_counter() - start
    level.server_cpu_s = (cpu_seconds(server) if server else 0.0) - cpu[0]
    level.client_cpu_s = cpu_seconds(client) - cpu[1]
    return level


async def measure(channel, metadata, args, server: ServerProcess) -> dict[int, list[Level]]:
    from smg_grpc_proto import vllm_engine_pb2_grpc

    stub = vllm_engine_pb2_grpc.VllmEngineStub(channel)
    # Warm-up: every prompt once, then one round at the highest concurrency; nothing of it is measured.
    await run_level(stub, metadata, len(PROMPTS), 1, args.max_tokens)
    await run_level(stub, metadata, max(args.streams), 1, args.max_tokens)
    return {n: [await run_level(stub, metadata, n, args.requests, args.max_tokens, server.process)
                for _ in range(args.rounds)] for n in args.streams}


# --- servers: one process at a time ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server in its own process group; its output goes to a log file shown if it fails."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.log = name, log
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
               "PYTHONPATH": str(ROOT)}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                         start_new_session=True)
        import psutil

        self.process = psutil.Process(self.proc.pid)       # the front end: gRPC server, servicer, AsyncLLM

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise SystemExit(f"the {self.name} server exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


async def wait_serving(server: ServerProcess, channel, metadata=(), timeout: float = 900) -> None:
    """Poll gRPC health until SERVING (vLLM's health servicer answers once the engine is up)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check()
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5, metadata=metadata)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(1)
    raise SystemExit(f"the {server.name} server did not become ready in {timeout:.0f} s")


def run_baseline(model_dir: Path, work: Path, args) -> dict[int, list[Level]]:
    import grpc

    port = free_port()
    server = ServerProcess("baseline", [sys.executable, "-m", "vllm.entrypoints.launchers.grpc_server",
                                        "--model", str(model_dir), "--served-model-name", MODEL_NAME,
                                        "--host", "127.0.0.1", "--port", str(port), "--disable-log-stats",
                                        *ENGINE_ARGS], work / "baseline.log")

    async def go():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(server, channel)
            return await measure(channel, (), args, server)

    try:
        return asyncio.run(go())
    finally:
        server.stop()


def wait_tls(server: ServerProcess, target: str, timeout: float = 900):
    from enclave.client import fetch_certificate
    from enclave.errors import AttestedChannelError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check()
        try:
            return fetch_certificate(target, timeout=5)
        except AttestedChannelError:
            time.sleep(1)
    raise SystemExit(f"the enclave server did not open its TLS port in {timeout:.0f} s")


def run_enclave(sealed: Path, key_file: Path, vendor_dir: Path, jwks: Path, token: str, trust, work: Path,
                args) -> dict[int, list[Level]]:
    import grpc
    from cryptography.hazmat.primitives.serialization import Encoding

    from enclave.client import attest
    from enclave.server.tls import SERVER_NAME

    port = free_port()
    target = f"127.0.0.1:{port}"
    server = ServerProcess("enclave", [sys.executable, "-m", "veil.cli.main", "enclave", "serve",
                                       "--sealed", str(sealed), "--key-file", str(key_file), "--emulated",
                                       "--vendor-dir", str(vendor_dir), "--host", "127.0.0.1", "--port", str(port),
                                       "--jwks", str(jwks), "--audience", AUDIENCE, *ENGINE_ARGS],
                           work / "enclave.log")
    try:
        wait_tls(server, target)
        # Attest once before any prompt, as a real client does; the load then uses the attested certificate only.
        with attest(target, trust, token=token) as session:
            certificate = session.attested.certificate
        creds = grpc.ssl_channel_credentials(root_certificates=certificate.public_bytes(Encoding.PEM))
        options = [("grpc.ssl_target_name_override", SERVER_NAME), ("grpc.max_receive_message_length", -1)]
        metadata = (("authorization", f"Bearer {token}"),)

        async def go():
            async with grpc.aio.secure_channel(target, creds, options=options) as channel:
                await wait_serving(server, channel)
                return await measure(channel, metadata, args, server)

        return asyncio.run(go())
    finally:
        server.stop()


# --- set-up: model, sealed copy, key file, emulated vendor, client token -------------------------------


def prepare(work: Path, model_dir: Path | None):
    import datetime as dt

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from attestation.emulated import EmulatedVendor
    from enclave.client import ClientTrust
    from enclave.sealing import seal_model
    from enclave.secrets import DataKey
    from enclave.testmodel import build_test_model
    from policies import load_policy

    if model_dir is None:
        model_dir = build_test_model(work / "model", size="tiny", seed=0)
    key = DataKey.generate()
    sealed = work / "sealed"
    seal_model(model_dir, sealed, key, model_name=MODEL_NAME)
    key_file = work / "model.key"                     # development key file (0600), as `veil model seal` writes
    with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(key.bytes())
    key.wipe()
    vendor = EmulatedVendor.create(work / "vendor")
    signer = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signer.public_key()))
    jwks = work / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "bench", "use": "sig", "alg": "ES256"}]}))
    now = dt.datetime.now(dt.timezone.utc)
    token = jwt.encode({"sub": "bench", "aud": AUDIENCE, "iat": now, "exp": now + dt.timedelta(hours=2)}, signer,
                       algorithm="ES256", headers={"kid": "bench"})
    examples = ROOT / "policies" / "examples"
    policy = load_policy(examples / "development-emulated.yaml", references=[examples / "reference-values.yaml"])
    trust = ClientTrust(anchors=vendor.anchors(), policy=policy, resource="dev/tiny/dek")
    return model_dir, sealed, key_file, work / "vendor", jwks, token, trust


# --- report ---------------------------------------------------------------------------------------------


def best(rounds: list[Level]) -> dict[str, float]:
    """The best of the rounds: highest tokens/s, lowest TTFT p50 and p99; chunks per call over all rounds."""
    calls, tokens = sum(len(r.ttft_ms) for r in rounds), sum(r.tokens for r in rounds)
    return {"tokens_per_s": max(r.tokens_per_s for r in rounds), "p50": min(r.ttft(0.5) for r in rounds),
            "p99": min(r.ttft(0.99) for r in rounds), "chunks_per_call": sum(r.chunks for r in rounds) / calls,
            "server_cpu_us": sum(r.server_cpu_s for r in rounds) / tokens * 1e6,
            "client_cpu_us": sum(r.client_cpu_s for r in rounds) / tokens * 1e6}


def figures(base: dict[int, list[Level]], encl: dict[int, list[Level]]) -> dict[str, Any]:
    levels = []
    for n in base:
        b, e = best(base[n]), best(encl[n])
        levels.append({"streams": n, "calls": len(base[n][0].ttft_ms), "rounds": len(base[n]),
                       "baseline_tokens_per_s": round(b["tokens_per_s"], 1),
                       "enclave_tokens_per_s": round(e["tokens_per_s"], 1),
                       "tokens_per_s_ratio": round(e["tokens_per_s"] / b["tokens_per_s"], 3),
                       "baseline_ttft_p50_ms": round(b["p50"], 2), "baseline_ttft_p99_ms": round(b["p99"], 2),
                       "enclave_ttft_p50_ms": round(e["p50"], 2), "enclave_ttft_p99_ms": round(e["p99"], 2),
                       "ttft_p50_delta_ms": round(e["p50"] - b["p50"], 2),
                       "baseline_chunks_per_call": round(b["chunks_per_call"], 2),
                       "enclave_chunks_per_call": round(e["chunks_per_call"], 2),
                       "baseline_server_cpu_us_per_token": round(b["server_cpu_us"], 1),
                       "enclave_server_cpu_us_per_token": round(e["server_cpu_us"], 1),
                       "baseline_client_cpu_us_per_token": round(b["client_cpu_us"], 1),
                       "enclave_client_cpu_us_per_token": round(e["client_cpu_us"], 1)})
    runs = [lv for rounds in (*base.values(), *encl.values()) for lv in rounds]
    prompts = sorted({p for lv in runs for p in lv.outputs})
    mismatched = [p for p in prompts if len({tuple(lv.outputs[p]) for lv in runs if p in lv.outputs}) > 1]
    return {"tokens_per_s_ratio": min(lv["tokens_per_s_ratio"] for lv in levels),
            "ttft_p50_delta_ms": max(lv["ttft_p50_delta_ms"] for lv in levels),
            "outputs_identical": not mismatched, "mismatched_prompts": len(mismatched), "levels": levels}


def print_table(result: dict[str, Any], args) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"serving: enclave (attested TLS, JWT, call audit) vs plain vLLM gRPC — "
                        f"{args.max_tokens} tokens/call, {args.requests} calls/stream, best of {args.rounds} rounds")
    for column in ("streams", "baseline tok/s", "enclave tok/s", "ratio", "baseline TTFT p50", "enclave TTFT p50",
                   "Δ p50", "baseline p99", "enclave p99", "server CPU µs/tok", "client CPU µs/tok"):
        table.add_column(column, justify="right")
    for lv in result["levels"]:
        table.add_row(str(lv["streams"]), f"{lv['baseline_tokens_per_s']:.1f}", f"{lv['enclave_tokens_per_s']:.1f}",
                      f"{lv['tokens_per_s_ratio']:.3f}×", f"{lv['baseline_ttft_p50_ms']:.1f} ms",
                      f"{lv['enclave_ttft_p50_ms']:.1f} ms", f"{lv['ttft_p50_delta_ms']:+.1f} ms",
                      f"{lv['baseline_ttft_p99_ms']:.1f} ms", f"{lv['enclave_ttft_p99_ms']:.1f} ms",
                      f"{lv['baseline_server_cpu_us_per_token']:.0f} → {lv['enclave_server_cpu_us_per_token']:.0f}",
                      f"{lv['baseline_client_cpu_us_per_token']:.0f} → {lv['enclave_client_cpu_us_per_token']:.0f}")
    Console(width=200).print(table)
    if not result["outputs_identical"]:
        print(f"MISMATCH: greedy completions differ between the sides for {result['mismatched_prompts']} prompt(s)")


def streams_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be positive integers")
    return sorted(set(values))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=streams_list, default=[1, 8, 32], help="concurrency levels (1,8,32)")
    parser.add_argument("--max-tokens", type=positive, default=32, help="output tokens per call (32)")
    parser.add_argument("--requests", type=positive, default=3, help="calls per stream at each level (3)")
    parser.add_argument("--rounds", type=positive, default=3, help="rounds per level; the best counts (3)")
    parser.add_argument("--model-dir", type=Path, help="a plaintext model directory (default: build the tiny one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="veil-bench-serve-"))
    try:
        model_dir, sealed, key_file, vendor_dir, jwks, token, trust = prepare(work, args.model_dir)
        print("baseline: vLLM gRPC launcher, plaintext model …", flush=True)
        base = run_baseline(model_dir, work, args)
        print("enclave: veil enclave serve, sealed model, attested TLS …", flush=True)
        encl = run_enclave(sealed, key_file, vendor_dir, jwks, token, trust, work, args)
        result = {"max_tokens": args.max_tokens, "requests_per_stream": args.requests, "rounds": args.rounds,
                  **figures(base, encl)}
        print_table(result, args)
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
