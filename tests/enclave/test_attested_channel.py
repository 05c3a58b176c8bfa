"""The attested channel without an engine: TLS only, evidence bound to the TLS key, policy before prompts."""

from __future__ import annotations

import grpc
import pytest
from smg_grpc_proto import vllm_engine_pb2, vllm_engine_pb2_grpc

from attestation.attesters import EmulatedAttester
from enclave.client import attest, fetch_certificate, pinned_channel
from enclave.errors import AttestedChannelError
from enclave.server import BearerAuth, EnclaveServer, TlsIdentity
from enclave.server.attest import emulated_collateral
from tests.enclave.conftest import BackgroundLoop, client_trust, start_server

GENERATE = "/vllm.grpc.engine.VllmEngine/Generate"


@pytest.fixture(scope="module")
def server(vendor, issuer):
    background = BackgroundLoop()
    tdx, crls = emulated_collateral(vendor)
    srv = start_server(background, lambda: EnclaveServer(
        None, identity=TlsIdentity(), attester=EmulatedAttester(vendor, "tdx"),
        auth=BearerAuth(jwks=issuer.jwks, audience=issuer.audience), tdx_collateral=tdx, snp_crls=crls))
    yield srv
    background.run(srv.stop())
    background.close()


def target(server) -> str:
    return f"127.0.0.1:{server.port}"


def generate_calls(server) -> int:
    return sum(1 for e in server.audit if e.method == GENERATE)


def test_attested_client_accepts_the_emulated_enclave(server, vendor):
    with attest(target(server), client_trust(vendor)) as session:
        assert session.attested.claims.tee == "tdx"
        assert session.attested.claims.anchor.kind == "emulated"
        assert session.attested.decision.allowed
        assert session.attested.certificate == server.identity.certificate


def test_policy_that_rejects_the_evidence_sends_no_prompt(server, vendor):
    before = generate_calls(server)
    with pytest.raises(AttestedChannelError) as err:
        attest(target(server), client_trust(vendor, "tdx-production"))
    assert any(code.startswith("policy.") for code, _ in err.value.reasons)
    assert generate_calls(server) == before


def test_untrusted_anchor_is_refused(server, vendor):
    from attestation.anchors import vendor_anchors
    from enclave.client import ClientTrust

    trust = ClientTrust(anchors=vendor_anchors(), policy=None, allow_no_policy=True)
    with pytest.raises(AttestedChannelError, match="does not verify"):
        attest(target(server), trust)


def test_plaintext_connection_is_refused(server):
    channel = grpc.insecure_channel(target(server))
    stub = vllm_engine_pb2_grpc.VllmEngineStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.HealthCheck(vllm_engine_pb2.HealthCheckRequest(), timeout=30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_channel_pinned_to_another_certificate_is_refused(server):
    other = TlsIdentity().certificate
    channel = pinned_channel(target(server), other)
    stub = vllm_engine_pb2_grpc.VllmEngineStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.HealthCheck(vllm_engine_pb2.HealthCheckRequest(), timeout=30)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_generate_needs_a_valid_bearer_token(server, issuer):
    channel = pinned_channel(target(server), fetch_certificate(target(server)))
    stub = vllm_engine_pb2_grpc.VllmEngineStub(channel)
    request = vllm_engine_pb2.GenerateRequest(request_id="r1", text="hi")
    cases = [((), "unauthenticated"),
             ((("authorization", "Bearer " + issuer.token(audience="someone-else")),), "unauthenticated"),
             ((("authorization", "Bearer " + issuer.token(expires_in=-120)),), "unauthenticated")]
    for metadata, outcome in cases:
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Generate(request, metadata=metadata, timeout=30))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert server.audit[-1].outcome == outcome
    # a good token passes authentication (this engine-less server then answers UNIMPLEMENTED)
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Generate(request, metadata=(("authorization", "Bearer " + issuer.token("bob")),), timeout=30))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert (server.audit[-1].principal, server.audit[-1].outcome) == ("bob", "allowed")
    channel.close()


def test_short_nonce_is_rejected(server):
    from enclave.server.protos import attestation_pb2, attestation_pb2_grpc

    channel = pinned_channel(target(server), fetch_certificate(target(server)))
    stub = attestation_pb2_grpc.AttestationStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetAttestation(attestation_pb2.GetAttestationRequest(nonce="c2hvcnQ="), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()


@pytest.mark.parametrize("echoes_own_certificate, message", [
    (False, "another TLS certificate"), (True, "does not bind this nonce and TLS key")])
def test_relayed_evidence_for_another_tls_key_is_refused(vendor, echoes_own_certificate, message):
    """A relay terminates TLS with its own key and forwards evidence bound to the real enclave's key."""
    from enclave.server.attest import AttestationServicer

    background = BackgroundLoop()
    enclave_identity, relay_identity = TlsIdentity(), TlsIdentity()
    tdx, crls = emulated_collateral(vendor)

    def make():
        srv = EnclaveServer(None, identity=relay_identity, attester=EmulatedAttester(vendor, "tdx"), auth=None,
                            tdx_collateral=tdx)
        srv.attestation = AttestationServicer(EmulatedAttester(vendor, "tdx"), enclave_identity, tdx_collateral=tdx)
        if echoes_own_certificate:      # claims the relay's certificate; the evidence still binds the enclave's key
            srv.attestation._identity = relay_identity
        return srv

    relay = start_server(background, make)
    try:
        with pytest.raises(AttestedChannelError, match=message):
            attest(target(relay), client_trust(vendor))
        assert generate_calls(relay) == 0
    finally:
        background.run(relay.stop())
        background.close()
