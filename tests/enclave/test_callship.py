"""The enclave's call-audit shipper when the broker is away, and when records left memory unshipped."""

from __future__ import annotations

import asyncio
import socket

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from enclave.callaudit import CallAuditChain
from enclave.callship import CallAuditShipper, ShipError, for_identity
from enclave.server.tls import public_jwk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NoAttester:
    tee = "tdx"

    def collect(self, report_data: bytes):
        raise AssertionError("no evidence is collected when the broker cannot even be reached")


def shipper(keep: int = 100) -> CallAuditShipper:
    key = ec.generate_private_key(ec.SECP256R1())
    chain = CallAuditChain(key, keep=keep)
    client = for_identity(f"http://127.0.0.1:{free_port()}", NoAttester(), public_jwk(key.public_key()))
    return CallAuditShipper(chain, client)


def test_an_unreachable_broker_does_not_stop_the_server_and_nothing_is_marked_shipped(capsys):
    from enclave.boot.ship import ship_once as _ship

    s = shipper()
    s.chain.append(caller="alice", method="/vllm.grpc.engine.VllmEngine/Generate", completion_tokens=3)
    asyncio.run(_ship(s))                                 # must return, not raise
    assert s.next_seq == 0 and s.total.records == 0       # retried at the next interval


def test_records_evicted_before_an_acknowledgement_fail_loudly():
    s = shipper(keep=2)
    for _ in range(5):
        s.chain.append(caller="bob", method="/vllm.grpc.engine.VllmEngine/Generate")
    with pytest.raises(ShipError, match="records 0…2 left memory"):
        s.ship()
