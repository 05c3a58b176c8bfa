"""Fixtures for the enclave server tests: emulated vendor, JWT issuer, a server in a background thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from pathlib import Path
from typing import Awaitable, Callable

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.keybroker.conftest import development_emulated, pinned, start_broker, trust_dirs  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
BOOT_RESOURCE = "dev/tiny/dek"
BOOT_REFUSED = "dev/pinned/dek"


class BackgroundLoop:
    """An asyncio loop in a thread: the enclave server (and its engine) live there; tests stay synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="enclave-test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable, timeout: float = 300):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class JwtIssuer:
    def __init__(self, audience: str = "veil-enclave") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.audience = audience
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**public, "kid": "test-1", "use": "sig", "alg": "ES256"}]}

    def token(self, sub: str = "alice", *, audience: str | None = None, key=None, expires_in: int = 300) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        claims = {"sub": sub, "aud": audience or self.audience, "iat": now,
                  "exp": now + dt.timedelta(seconds=expires_in)}
        return jwt.encode(claims, key or self.key, algorithm="ES256", headers={"kid": "test-1"})


@pytest.fixture(scope="session")
def vendor(tmp_path_factory):
    from attestation.emulated import EmulatedVendor

    return EmulatedVendor.create(tmp_path_factory.mktemp("vendor") / "vendor")


@pytest.fixture(scope="session")
def issuer() -> JwtIssuer:
    return JwtIssuer()


def load_example(name: str):
    from policies import load_policy

    return load_policy(EXAMPLES / f"{name}.yaml", references=[EXAMPLES / "reference-values.yaml"])


def client_trust(vendor, policy_name: str | None = "development-emulated", **kwargs):
    from enclave.client import ClientTrust

    policy = load_example(policy_name) if policy_name else None
    return ClientTrust(anchors=vendor.anchors(), policy=policy, resource="dev/tiny/dek", **kwargs)


def start_server(background: BackgroundLoop, make: Callable[[], object]):
    """Build the EnclaveServer inside the loop (grpc.aio needs it) and start it on a free port."""
    async def go():
        server = make()
        await server.start("127.0.0.1:0")
        return server

    return background.run(go())


@pytest.fixture(scope="module")
def sealed_key(tmp_path_factory):
    """(a tiny sealed model directory named tiny, its 32-byte data key)."""
    from enclave.sealing import seal_model
    from enclave.secrets import DataKey
    from enclave.testmodel import build_test_model

    key = DataKey.generate()
    model = build_test_model(tmp_path_factory.mktemp("model") / "tiny", size="tiny", seed=0)
    out = tmp_path_factory.mktemp("sealed") / "tiny"
    seal_model(model, out, key, model_name="veil-tiny")
    return out, key.bytes()


@pytest.fixture(scope="module")
def boot_broker(trust_dirs, sealed_key, tmp_path_factory):  # noqa: F811 (the keybroker fixture)
    """A real broker (SQLite) holding the sealed model's key under the development policy, and a key under
    a policy pinning an MRTD the emulator does not have."""
    anchors, bundle = trust_dirs
    workdir = tmp_path_factory.mktemp("boot-broker")
    b = start_broker(workdir, f"sqlite:///{workdir / 'broker.db'}", "--allow-emulated", "--emulated-anchors",
                     str(anchors), "--collateral", str(bundle))
    b.admin.push_policy("development-emulated", development_emulated())
    b.admin.create_key(BOOT_RESOURCE, value=sealed_key[1], policy="development-emulated")
    b.admin.push_policy("pinned-elsewhere", pinned("pinned-elsewhere", mrtd=b"\x01" * 48))
    b.admin.create_key(BOOT_REFUSED, policy="pinned-elsewhere")
    yield b
    b.stop()
