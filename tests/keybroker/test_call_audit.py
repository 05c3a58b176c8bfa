"""An enclave ships its signed call-audit chain into the broker's log (POST /kbs/v0/call-audit), against a
real broker: accepted only from the attested key, only continuing the chain, retries acknowledged once."""

from __future__ import annotations

import base64
import copy

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from attestation.attesters.emulated import EmulatedAttester
from enclave.callaudit import CallAuditChain, broker_payload
from enclave.callship import CallAuditShipper, for_identity
from enclave.server.tls import TlsIdentity, public_jwk
from keybroker.audit.calls import check_logged_batches
from keybroker.client import KbsClient, KbsError


def signer() -> tuple[ec.EllipticCurvePrivateKey, CallAuditChain]:
    key = ec.generate_private_key(ec.SECP256R1())
    chain = CallAuditChain(key, model="tiny")
    for n in range(10):
        chain.append(caller=f"user-{n % 3}", method="/vllm.grpc.engine.VllmEngine/Generate", prompt_tokens=5 + n,
                     completion_tokens=16, latency_ms=12.5)
    return key, chain


def attested(broker, vendor, key) -> KbsClient:
    """A KBS client that attests with `key` (public JWK only) as its TEE key."""
    return KbsClient(broker.url, EmulatedAttester(vendor, "tdx"), key=ECKey.import_key(public_jwk(key.public_key())))


def calls_entries(broker) -> list[dict]:
    return [e for e in broker.log() if e["kind"] == "calls"]


def test_batches_continue_the_chain_and_retries_are_acknowledged_once(broker, vendor):
    key, chain = signer()
    client = attested(broker, vendor, key)
    entries = chain.entries()
    first = client.ship_calls(broker_payload(entries[:4], key.public_key()))
    second = client.ship_calls(broker_payload(entries[4:], key.public_key()))
    assert (first["next_seq"], second["next_seq"]) == (4, 10) and not second["duplicate"]
    again = client.ship_calls(broker_payload(entries[4:], key.public_key()))
    assert again == {"log_seq": second["log_seq"], "next_seq": 10, "duplicate": True}
    mine = [e for e in calls_entries(broker) if e["calls"]["tee_pubkey_jwk"]["x"] == public_jwk(key.public_key())["x"]]
    assert [e["calls"]["first_seq"] for e in mine] == [0, 4]
    assert [e["seq"] for e in mine] == [first["log_seq"], second["log_seq"]]
    records = [r["record"] for e in mine for r in e["calls"]["entries"]]
    assert [r["seq"] for r in records] == list(range(10)) and "prompt" not in str(records).replace("prompt_tokens", "")
    assert check_logged_batches((e["seq"], e["calls"]) for e in calls_entries(broker)) == []


def refused(broker, fn, status: int, code: str) -> KbsError:
    before = len(broker.log())
    with pytest.raises(KbsError) as info:
        fn()
    assert (info.value.status, info.value.code) == (status, code), info.value
    new = [e for e in broker.log()[before:] if e["kind"] != "attestation"]     # the client may attest first
    assert [e["kind"] for e in new] == ["denial"] and new[0]["reasons"][0]["code"] == code
    assert new[0]["action"] == "call-audit"
    return info.value


def test_a_batch_signed_by_another_key_is_refused(broker, vendor):
    key, chain = signer()
    other, _ = signer()
    client = attested(broker, vendor, other)                 # attested with another key than the chain's
    refused(broker, lambda: client.ship_calls(broker_payload(chain.entries(), key.public_key())), 401,
            "calls.key_not_attested")


def test_a_gap_in_the_chain_is_refused(broker, vendor):
    key, chain = signer()
    client = attested(broker, vendor, key)
    client.ship_calls(broker_payload(chain.entries()[:3], key.public_key()))
    err = refused(broker, lambda: client.ship_calls(broker_payload(chain.entries()[5:], key.public_key())), 409,
                  "calls.out_of_order")
    assert "expected seq 3" in err.detail


def test_an_edited_record_is_refused(broker, vendor):
    key, chain = signer()
    client = attested(broker, vendor, key)
    batch = broker_payload(chain.entries(), key.public_key())
    edited = copy.deepcopy(batch)
    edited["entries"][2]["record"]["completion_tokens"] = 1          # fewer tokens billed
    err = refused(broker, lambda: client.ship_calls(edited), 400, "calls.invalid")
    assert err.detail.startswith("call record 2:")
    forged = copy.deepcopy(batch)
    forged["entries"][-1]["signature"] = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    forged["head_signature"] = forged["entries"][-1]["signature"]
    assert "signature" in refused(broker, lambda: client.ship_calls(forged), 400, "calls.invalid").detail


def test_without_an_attestation_nothing_is_appended(broker):
    key, chain = signer()
    before = len(calls_entries(broker))
    resp = broker.http.post("/kbs/v0/call-audit", json=broker_payload(chain.entries(), key.public_key()))
    assert resp.status_code == 401 and resp.json()["code"] == "kbs.no_session"
    assert len(calls_entries(broker)) == before


def test_the_enclave_shipper_ships_what_the_server_recorded(broker, vendor):
    identity = TlsIdentity()
    chain = CallAuditChain(identity, model="tiny")
    shipper = CallAuditShipper(chain, for_identity(broker.url, EmulatedAttester(vendor, "tdx"), identity.jwk()),
                               max_batch=4)
    assert shipper.ship().records == 0                      # nothing to ship yet: no request at all
    for n in range(6):
        chain.append(caller="alice", method="/vllm.grpc.engine.VllmEngine/Generate", completion_tokens=n)
    assert (shipper.ship().batches, shipper.next_seq) == (2, 6)
    chain.append(caller="bob", method="/vllm.grpc.engine.VllmEngine/Embed", prompt_tokens=3)
    assert shipper.ship().records == 1 and shipper.next_seq == 7
    attestation = next(e for e in broker.log() if e["kind"] == "attestation"
                       and e["session_id"] == calls_entries(broker)[-1]["session_id"])
    assert attestation["decision"] == "allow"
