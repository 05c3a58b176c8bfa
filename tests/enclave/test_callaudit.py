"""Per-call audit: hash chain, signatures, tamper detection, no text, the server hook (no vLLM needed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError
from smg_grpc_proto import vllm_engine_pb2, vllm_engine_pb2_grpc

from attestation.attesters import EmulatedAttester
from enclave.callaudit import (BATCH_TYPE, CallAuditChain, CallRecord, broker_payload, export_jsonl,
                               meter_handler, parse_jsonl, verify_chain)
from enclave.client import pinned_channel
from enclave.server import BearerAuth, EnclaveServer, TlsIdentity
from tests.enclave.conftest import BackgroundLoop, start_server

GENERATE = "/vllm.grpc.engine.VllmEngine/Generate"
SECRET = "ZEBRA-OCTOPUS-7731 my bank password is hunter2"


def make_chain(n: int = 5, key=None) -> tuple[CallAuditChain, ec.EllipticCurvePrivateKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    chain = CallAuditChain(key, model="tiny")
    for i in range(n):
        chain.append(caller=f"user{i}", method=GENERATE, prompt_tokens=10 + i, completion_tokens=i,
                     latency_ms=1.5 * i, status="OK")
    return chain, key


def docs(chain: CallAuditChain) -> list[dict]:
    return parse_jsonl(export_jsonl(chain.entries()))


def test_round_trip_through_json_lines():
    chain, key = make_chain()
    check = verify_chain(docs(chain), key.public_key())
    assert check.ok, check
    assert check.head == chain.head()[1]
    assert verify_chain(docs(chain), key.public_key(), expected_head=chain.head()[1]).ok
    first = docs(chain)[0]
    assert first["prev_hash"] == "0" * 64
    assert set(first["record"]) == {"seq", "time", "caller", "method", "model", "prompt_tokens",
                                    "completion_tokens", "latency_ms", "status"}
    assert first["record"]["time"].endswith("Z")


def test_a_slice_verifies_from_its_predecessor():
    chain, key = make_chain(6)
    entries = docs(chain)[3:]
    assert verify_chain(entries, key.public_key(), prev_hash=entries[0]["prev_hash"], first_seq=3).ok
    assert not verify_chain(entries, key.public_key()).ok


def test_edit_is_detected():
    chain, key = make_chain()
    entries = docs(chain)
    entries[2]["record"]["completion_tokens"] = 999
    check = verify_chain(entries, key.public_key())
    assert (check.ok, check.first_bad_seq) == (False, 2)
    assert "hash" in check.reason


def test_edit_with_rehash_is_caught_by_the_signature():
    chain, key = make_chain()
    entries = docs(chain)
    entries[4]["record"]["caller"] = "mallory"
    record = CallRecord.model_validate(entries[4]["record"])
    entries[4]["hash"] = hashlib.sha256(bytes.fromhex(entries[4]["prev_hash"]) + record.canonical_bytes()).hexdigest()
    check = verify_chain(entries, key.public_key())
    assert (check.ok, check.first_bad_seq) == (False, 4)
    assert "signature" in check.reason


def test_delete_is_detected():
    chain, key = make_chain()
    entries = docs(chain)
    del entries[1]
    assert verify_chain(entries, key.public_key()).first_bad_seq == 1
    assert verify_chain(docs(chain)[1:], key.public_key()).first_bad_seq == 0


def test_reorder_is_detected():
    chain, key = make_chain()
    entries = docs(chain)
    entries[1], entries[2] = entries[2], entries[1]
    check = verify_chain(entries, key.public_key())
    assert (check.ok, check.first_bad_seq) == (False, 1)


def test_insert_is_detected():
    chain, key = make_chain()
    entries = docs(chain)
    forged = json.loads(json.dumps(entries[2]))
    forged["record"]["caller"] = "ghost"
    entries.insert(3, forged)
    assert verify_chain(entries, key.public_key()).first_bad_seq == 3
    # an insert renumbered to fit is still caught: the following entry no longer links
    other, _ = make_chain(1, key=ec.generate_private_key(ec.SECP256R1()))
    entries = docs(chain)
    alien = docs(other)[0]
    alien["record"]["seq"] = 5
    assert verify_chain(entries + [alien], key.public_key()).first_bad_seq == 5


def test_truncation_is_detected_against_a_known_head():
    chain, key = make_chain()
    check = verify_chain(docs(chain)[:3], key.public_key(), expected_head=chain.head()[1])
    assert (check.ok, check.first_bad_seq) == (False, 3)


def test_chain_signed_by_another_key_is_rejected():
    chain, _ = make_chain()
    check = verify_chain(docs(chain), ec.generate_private_key(ec.SECP256R1()).public_key())
    assert (check.ok, check.first_bad_seq) == (False, 0)
    assert "signature" in check.reason


def test_tls_identity_signs_and_its_certificate_key_verifies():
    identity = TlsIdentity()
    chain = CallAuditChain(identity, model="tiny")
    chain.append(caller="alice", method=GENERATE)
    assert verify_chain(chain.entries(), identity.certificate.public_key()).ok


def test_record_has_no_text_fields():
    with pytest.raises(ValidationError):
        CallRecord(seq=0, time=dt.datetime.now(dt.timezone.utc), caller="a", method=GENERATE, model="m",
                   prompt_tokens=1, completion_tokens=1, latency_ms=1, status="OK", prompt=SECRET)
    with pytest.raises(ValidationError):
        CallRecord(seq=0, time=dt.datetime(2026, 1, 1), caller="a", method=GENERATE, model="m",
                   prompt_tokens=1, completion_tokens=1, latency_ms=1, status="OK")


class FakeContext:
    def __init__(self) -> None:
        self._code = None

    def code(self):
        return self._code


def run_metered(chain: CallAuditChain, behavior, request, caller="alice"):
    handler = grpc.unary_stream_rpc_method_handler(behavior)
    metered = chain.wrap(handler, GENERATE, caller)

    async def go():
        return [r async for r in metered.unary_stream(request, FakeContext())]

    return asyncio.run(go())


def test_prompt_and_completion_text_never_reach_the_chain():
    chain = CallAuditChain(ec.generate_private_key(ec.SECP256R1()), model="tiny")
    request = vllm_engine_pb2.GenerateRequest(request_id="r1", text=SECRET)

    async def generate(req, context):   # streams deltas (2 + 1), echoing the prompt wherever it can
        yield vllm_engine_pb2.GenerateResponse(chunk=vllm_engine_pb2.GenerateStreamChunk(
            token_ids=[1, 2], prompt_tokens=7, completion_tokens=2))
        yield vllm_engine_pb2.GenerateResponse(chunk=vllm_engine_pb2.GenerateStreamChunk(
            token_ids=[3], prompt_tokens=7, completion_tokens=1))
        yield vllm_engine_pb2.GenerateResponse(complete=vllm_engine_pb2.GenerateComplete(   # repeats the last delta
            output_ids=[3], finish_reason=req.text, prompt_tokens=7, completion_tokens=1))

    responses = run_metered(chain, generate, request)
    assert len(responses) == 3
    [entry] = chain.entries()
    assert (entry.record.caller, entry.record.model, entry.record.status) == ("alice", "tiny", "OK")
    assert (entry.record.prompt_tokens, entry.record.completion_tokens) == (7, 3)
    payload = broker_payload(chain.entries(), chain.public_key())
    for blob in (export_jsonl(chain.entries()), json.dumps(payload), repr(chain.entries())):
        assert "ZEBRA" not in blob and "hunter2" not in blob


def test_non_streamed_n2_counts_each_complete():
    chain = CallAuditChain(ec.generate_private_key(ec.SECP256R1()))

    async def generate(req, context):
        for index, count in ((0, 5), (1, 4)):
            yield vllm_engine_pb2.GenerateResponse(complete=vllm_engine_pb2.GenerateComplete(
                output_ids=list(range(count)), prompt_tokens=6, completion_tokens=count, index=index))

    run_metered(chain, generate, vllm_engine_pb2.GenerateRequest(text="x"))
    [entry] = chain.entries()
    assert (entry.record.prompt_tokens, entry.record.completion_tokens) == (6, 9)


def test_failed_call_is_recorded_with_its_status():
    chain = CallAuditChain(ec.generate_private_key(ec.SECP256R1()))

    async def broken(req, context):
        context._code = grpc.StatusCode.RESOURCE_EXHAUSTED
        raise RuntimeError(SECRET)
        yield  # pragma: no cover

    with pytest.raises(RuntimeError):
        run_metered(chain, broken, vllm_engine_pb2.GenerateRequest(text=SECRET), caller=None)
    [entry] = chain.entries()
    assert (entry.record.caller, entry.record.status) == ("anonymous", "RESOURCE_EXHAUSTED")
    assert SECRET not in export_jsonl(chain.entries())


def test_unary_handler_is_metered():
    chain = CallAuditChain(ec.generate_private_key(ec.SECP256R1()))

    async def embed(req, context):
        return vllm_engine_pb2.EmbedResponse(embedding=[0.5], prompt_tokens=4, embedding_dim=1)

    metered = meter_handler(grpc.unary_unary_rpc_method_handler(embed),
                            lambda **f: chain.append(caller="bob", method="/vllm.grpc.engine.VllmEngine/Embed", **f))
    asyncio.run(metered.unary_unary(vllm_engine_pb2.EmbedRequest(), FakeContext()))
    [entry] = chain.entries()
    assert (entry.record.prompt_tokens, entry.record.completion_tokens, entry.record.status) == (4, 0, "OK")


def test_broker_payload_is_self_contained():
    chain, key = make_chain(3)
    payload = broker_payload(chain.entries(), key.public_key())
    assert payload["type"] == BATCH_TYPE
    assert (payload["first_seq"], payload["last_seq"]) == (0, 2)
    assert payload["head_hash"] == chain.head()[1]
    assert payload["batch_digest"] == hashlib.sha256(export_jsonl(chain.entries()).encode()).hexdigest()
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicNumbers
    import base64

    jwk = payload["tee_pubkey_jwk"]
    as_int = lambda s: int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")  # noqa: E731
    public = EllipticCurvePublicNumbers(as_int(jwk["x"]), as_int(jwk["y"]), ec.SECP256R1()).public_key()
    assert verify_chain(payload["entries"], public, prev_hash=payload["prev_hash"]).ok


def test_concurrent_appends_keep_the_chain_valid():
    import threading

    chain, key = make_chain(0)
    threads = [threading.Thread(target=lambda: [chain.append(caller="t", method=GENERATE) for _ in range(50)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert chain.head()[0] == 400
    assert verify_chain(chain.entries(), key.public_key()).ok


@pytest.fixture(scope="module")
def server(vendor, issuer):
    background = BackgroundLoop()
    srv = start_server(background, lambda: EnclaveServer(
        None, identity=TlsIdentity(), attester=EmulatedAttester(vendor, "tdx"),
        auth=BearerAuth(jwks=issuer.jwks, audience=issuer.audience)))
    yield srv
    background.run(srv.stop())
    background.close()


def test_server_records_each_engine_call_signed_with_its_attested_key(server, issuer):
    channel = pinned_channel(f"127.0.0.1:{server.port}", server.identity.certificate)
    stub = vllm_engine_pb2_grpc.VllmEngineStub(channel)
    before = server.calls.head()[0]
    with pytest.raises(grpc.RpcError) as err:          # no token
        list(stub.Generate(vllm_engine_pb2.GenerateRequest(text=SECRET), timeout=30))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:          # authenticated; no engine behind it
        stub.GetModelInfo(vllm_engine_pb2.GetModelInfoRequest(), timeout=30,
                          metadata=[("authorization", f"Bearer {issuer.token('alice')}")])
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)   # public: not metered
    channel.close()

    entries = server.calls.entries()
    assert server.calls.head()[0] == before + 2
    got = [(e.record.caller, e.record.method, e.record.status) for e in entries[-2:]]
    assert got == [("anonymous", GENERATE, "UNAUTHENTICATED"),
                   ("alice", "/vllm.grpc.engine.VllmEngine/GetModelInfo", "UNIMPLEMENTED")]
    assert verify_chain(entries, server.identity.certificate.public_key()).ok
    assert SECRET not in export_jsonl(entries)
