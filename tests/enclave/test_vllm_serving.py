"""End to end on real vLLM (CPU): seal → serve over attested TLS → the same completion as plain vLLM.

Two engine start-ups in all (~30 s each here): plain vLLM on the plaintext
model (in a subprocess, for the reference), and the sealed enclave server.
A tampered model's load fails in the worker, ~20 s more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: pip install -e '.[cpu,enclave]' (see docs/enclave.md)")
pytest.importorskip("smg_grpc_servicer", reason="smg-grpc-servicer is not installed: pip install -e '.[enclave]'")

from attestation.attesters import EmulatedAttester  # noqa: E402
from enclave.client import attest  # noqa: E402
from enclave.engine import EngineSettings, sealed_engine  # noqa: E402
from enclave.errors import AttestedChannelError, LoadError, UnsealError  # noqa: E402
from enclave.secrets import DataKey  # noqa: E402
from enclave.sealing import seal_model  # noqa: E402
from enclave.server import BearerAuth, EnclaveServer, TlsIdentity  # noqa: E402
from enclave.server.attest import emulated_collateral  # noqa: E402
from enclave.testmodel import build_test_model  # noqa: E402
from tests.enclave.conftest import BackgroundLoop, client_trust  # noqa: E402

pytestmark = pytest.mark.vllm
PROMPT = "Veil runs vLLM inside"
MAX_TOKENS = 12
GENERATE = "/vllm.grpc.engine.VllmEngine/Generate"

REFERENCE = textwrap.dedent("""
    import json, sys
    from vllm import LLM, SamplingParams
    if __name__ == "__main__":
        llm = LLM(model=sys.argv[1], dtype="float32", max_model_len=256, gpu_memory_utilization=0.1,
                  enforce_eager=True, seed=0)
        out = llm.generate([sys.argv[2]], SamplingParams(temperature=0, max_tokens=int(sys.argv[3])))[0].outputs[0]
        print("REFERENCE " + json.dumps({"ids": list(out.token_ids), "text": out.text}))
""")


@pytest.fixture(scope="module", autouse=True)
def small_cpu_env():
    old = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = "1"
    yield
    if old is None:
        os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)
    else:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = old


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model") / "tiny"
    return build_test_model(directory, size="tiny", seed=0)


@pytest.fixture(scope="module")
def key():
    return DataKey.generate()


@pytest.fixture(scope="module")
def sealed(model, key, tmp_path_factory):
    out = tmp_path_factory.mktemp("sealed") / "tiny"
    seal_model(model, out, key, model_name="veil-tiny")
    return out


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory):
    script = tmp_path_factory.mktemp("ref") / "reference.py"
    script.write_text(REFERENCE)
    done = subprocess.run([sys.executable, str(script), str(model), PROMPT, str(MAX_TOKENS)],
                          capture_output=True, text=True, timeout=400)
    lines = [line for line in done.stdout.splitlines() if line.startswith("REFERENCE ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("REFERENCE "):])


@pytest.fixture(scope="module")
def served(sealed, key, vendor, issuer):
    background = BackgroundLoop()
    engine_cm = sealed_engine(sealed, key, EngineSettings.small_cpu())
    tdx, crls = emulated_collateral(vendor)

    async def up():
        engine = await engine_cm.__aenter__()
        server = EnclaveServer(engine, identity=TlsIdentity(), attester=EmulatedAttester(vendor, "tdx"),
                               auth=BearerAuth(jwks=issuer.jwks, audience=issuer.audience),
                               tdx_collateral=tdx, snp_crls=crls)
        await server.start("127.0.0.1:0")
        return server

    async def down(server):
        await server.stop()
        await engine_cm.__aexit__(None, None, None)

    server = background.run(up(), timeout=400)
    yield server
    background.run(down(server), timeout=120)
    background.close()


def test_sealed_serving_matches_plain_vllm(served, reference, vendor, issuer):
    target = f"127.0.0.1:{served.port}"
    with attest(target, client_trust(vendor), token=issuer.token("alice")) as session:
        ids = [i for chunk in session.generate_ids(PROMPT, max_tokens=MAX_TOKENS) for i in chunk]
        text = "".join(session.generate(PROMPT, max_tokens=MAX_TOKENS))
    assert ids == reference["ids"]
    assert text == reference["text"]
    assert any(e.method == GENERATE and e.principal == "alice" for e in served.audit)


def test_rejecting_policy_sends_no_prompt_to_the_engine(served, vendor, issuer):
    before = [e for e in served.audit if e.method == GENERATE]
    with pytest.raises(AttestedChannelError):
        with attest(f"127.0.0.1:{served.port}", client_trust(vendor, "snp-production"),
                    token=issuer.token()) as session:
            list(session.generate(PROMPT))
    assert [e for e in served.audit if e.method == GENERATE] == before


def test_wrong_key_fails_before_any_engine_starts(sealed):
    async def start():
        async with sealed_engine(sealed, DataKey.generate(), EngineSettings.small_cpu()):
            pass

    background = BackgroundLoop()
    try:
        with pytest.raises(UnsealError, match="manifest"):
            background.run(start(), timeout=60)
    finally:
        background.close()


def test_tampered_chunk_fails_the_load_in_the_worker(sealed, key, tmp_path):
    import shutil

    from enclave.sealing import open_sealed

    copy = tmp_path / "tampered"
    shutil.copytree(sealed, copy)
    blob = copy / open_sealed(copy, key).manifest.file("model.safetensors").blob
    data = bytearray(blob.read_bytes())
    data[200] ^= 0x01                                   # one bit in chunk 0 of the weights
    blob.write_bytes(bytes(data))

    async def start():
        async with sealed_engine(copy, key, EngineSettings.small_cpu()):
            pass

    background = BackgroundLoop()
    try:
        with pytest.raises(LoadError, match=r"model\.safetensors, chunk 0: does not authenticate"):
            background.run(start(), timeout=300)
    finally:
        background.close()
