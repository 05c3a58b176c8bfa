"""Attested client: trust the enclave's TLS key only after its evidence verifies and satisfies a policy.

    trust = ClientTrust(anchors=..., collateral=..., policy=load_policy(path), resource="dev/tiny/dek")
    with attest("host:50051", trust, token=jwt) as session:      # no prompt has been sent yet
        for text in session.generate("Hello", max_tokens=16):
            print(text, end="")

Steps of attest(): (1) fetch the server's certificate, pinning nothing;
(2) open a channel pinned to exactly that certificate; (3) GetAttestation with
a fresh 32-byte nonce over it; (4) the echoed certificate and nonce match;
(5) verify the evidence (attestation.verify) against the client's anchors;
(6) its report data binds {nonce, JWK of the certificate's key} by the KBS
rule; (7) the policy allows the claims. Any failure raises
AttestedChannelError and closes the channel: no prompt is ever sent. Prompts
then go over the same pinned channel, so only the attested key can read them.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import socket
import ssl
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.anchors import TrustAnchors
from attestation.binding import check_report_data
from attestation.collateral import ChainedCollateral, CollateralSource, StaticCollateral, TdxCollateral
from attestation.errors import AttestationError, VerificationError
from attestation.evidence import Evidence
from attestation.options import VerifyOptions
from attestation.verify import verify

from .errors import AttestedChannelError
from .server.protos import attestation_pb2, attestation_pb2_grpc
from .server.tls import SERVER_NAME, certificate_jwk

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientTrust:
    """What the client trusts: anchors, its collateral, its policy (None only when asked explicitly)."""

    anchors: TrustAnchors
    collateral: CollateralSource = field(default_factory=StaticCollateral)
    policy: Any = None                       # a policies.CompiledPolicy
    resource: str | None = None              # the resource name the policy is evaluated for
    allow_no_policy: bool = False            # development: verified evidence suffices
    check_revocation: bool = True
    allow_debug: bool = False
    use_server_collateral: bool = True       # vendor-signed; verified against `anchors` like any other
    clock: Clock = field(default=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True, slots=True)
class Attested:
    """What the client established: the certificate, verified claims, the policy decision."""

    certificate: x509.Certificate
    claims: Any
    decision: Any
    nonce: str


def split_target(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"target {target!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def fetch_certificate(target: str, *, timeout: float = 10.0) -> x509.Certificate:
    """The certificate the server presents, unverified (step 1: trust comes from attestation)."""
    host, port = split_target(target)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise AttestedChannelError(f"no TLS server at {target}: {exc}") from None
    if not der:
        raise AttestedChannelError(f"{target} presented no certificate")
    return x509.load_der_x509_certificate(der)


def pinned_channel(target: str, certificate: x509.Certificate) -> grpc.Channel:
    """A channel that accepts only a server holding `certificate`'s key (it is the only root)."""
    creds = grpc.ssl_channel_credentials(root_certificates=certificate.public_bytes(Encoding.PEM))
    return grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", SERVER_NAME),
                                                       ("grpc.max_receive_message_length", -1)])


def _server_collateral(reply) -> CollateralSource:
    tdx_sets: tuple[TdxCollateral, ...] = ()
    if reply.HasField("tdx_collateral"):
        c = reply.tdx_collateral
        tdx_sets = (TdxCollateral(**{f: getattr(c, f) for f in TdxCollateral.__dataclass_fields__}),)
    crls = {(c.product, c.signer): c.der for c in reply.snp_crls}
    return StaticCollateral(tdx_sets=tdx_sets, snp_crls=crls)


def check_evidence(reply, certificate: x509.Certificate, nonce: str, trust: ClientTrust) -> Attested:
    """Steps 4–7 on a GetAttestation reply; AttestedChannelError names the first failure."""
    if reply.tls_certificate != certificate.public_bytes(Encoding.DER):
        raise AttestedChannelError("the attestation is for another TLS certificate than the one presented",
                                   (("enclave.tls_certificate", "certificate mismatch"),))
    if reply.nonce != nonce:
        raise AttestedChannelError("the attestation answers another nonce", (("enclave.nonce", "nonce mismatch"),))
    sources = [trust.collateral] + ([_server_collateral(reply)] if trust.use_server_collateral else [])
    at = trust.clock()
    opts = VerifyOptions(anchors=trust.anchors, collateral=ChainedCollateral(tuple(sources)), at=at,
                         check_revocation=trust.check_revocation, allow_debug=trust.allow_debug)
    try:
        result = verify(Evidence(reply.tee, reply.evidence, tuple(reply.certificates)), opts)  # type: ignore[arg-type]
    except AttestationError as exc:
        raise AttestedChannelError(f"the server's evidence is unreadable: {exc}", ((exc.code, str(exc)),)) from None
    if not result.verified:
        reasons = tuple((f.code, f.message) for f in result.errors)
        raise AttestedChannelError("the server's evidence does not verify: " + "; ".join(m for _, m in reasons),
                                   reasons)
    try:
        check_report_data(result.claims.report_data, nonce, certificate_jwk(certificate),
                          additional_evidence=reply.additional_evidence, hash_alg=reply.hash_alg or "sha384")
    except (VerificationError, ValueError) as exc:
        raise AttestedChannelError("the evidence does not bind this nonce and TLS key",
                                   (("binding.report_data", str(exc)),)) from None
    decision = evaluate_policy(trust, result.claims, at)
    return Attested(certificate, result.claims, decision, nonce)


def evaluate_policy(trust: ClientTrust, claims: Any, at: datetime):
    """The policy step (policies.evaluate); deny unless it allows, or no policy was explicitly accepted."""
    if trust.policy is None:
        if trust.allow_no_policy:
            return None
        raise AttestedChannelError("no policy given: refusing to trust the server (pass a policy)",
                                   (("policy.missing", "no policy"),))
    from policies import evaluate

    decision = evaluate(trust.policy, claims, at=at, resource=trust.resource)
    if not decision.allowed:
        failed = tuple((c.code, f"expected {c.expected}, got {c.actual}") for c in decision.checks if not c.passed)
        raise AttestedChannelError(f"the server's evidence does not satisfy the policy {decision.policy_name} "
                                   f"({len(failed)} failed: {', '.join(code for code, _ in failed)})", failed)
    return decision


class AttestedSession:
    """A channel pinned to an attested certificate; prompts go only here."""

    def __init__(self, channel: grpc.Channel, attested: Attested | None, *, token: str | None = None) -> None:
        """`attested` is None when the channel is trusted through the broker's enclave CA instead."""
        from smg_grpc_proto import vllm_engine_pb2_grpc

        self.channel = channel
        self.attested = attested
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stub = vllm_engine_pb2_grpc.VllmEngineStub(channel)
        self._tokenizer = None

    def __enter__(self) -> AttestedSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def tokenizer(self):
        """The served model's tokenizer (GetTokenizer's bundle), for turning token ids into text."""
        if self._tokenizer is None:
            from smg_grpc_proto.generated import common_pb2
            from tokenizers import Tokenizer

            data = b"".join(c.data for c in self._stub.GetTokenizer(common_pb2.GetTokenizerRequest(),
                                                                     metadata=self._metadata))
            with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                name = next(n for n in bundle.namelist() if n.endswith("tokenizer.json"))
                self._tokenizer = Tokenizer.from_str(bundle.read(name).decode())
        return self._tokenizer

    def generate_ids(self, prompt: str, *, max_tokens: int = 32, temperature: float = 0.0) -> Iterator[list[int]]:
        """Stream the completion's token ids, chunk by chunk."""
        from smg_grpc_proto import vllm_engine_pb2

        request = vllm_engine_pb2.GenerateRequest(
            request_id=str(uuid.uuid4()), text=prompt, stream=True,
            sampling_params=vllm_engine_pb2.SamplingParams(temperature=temperature, max_tokens=max_tokens,
                                                           skip_special_tokens=True))
        for reply in self._stub.Generate(request, metadata=self._metadata):
            if reply.HasField("chunk"):
                yield list(reply.chunk.token_ids)

    def generate(self, prompt: str, **kwargs: Any) -> Iterator[str]:
        """Stream the completion as text increments."""
        tok, ids, shown = self.tokenizer(), [], ""
        for chunk in self.generate_ids(prompt, **kwargs):
            ids.extend(chunk)
            text = tok.decode(ids, skip_special_tokens=True)
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown):]
                shown = text


def attest(target: str, trust: ClientTrust, *, token: str | None = None, timeout: float = 30.0) -> AttestedSession:
    """Steps 1–7; an AttestedSession only when every one passed (else AttestedChannelError)."""
    certificate = fetch_certificate(target, timeout=timeout)
    channel = pinned_channel(target, certificate)
    try:
        nonce = base64.b64encode(secrets.token_bytes(32)).decode()
        stub = attestation_pb2_grpc.AttestationStub(channel)
        try:
            reply = stub.GetAttestation(attestation_pb2.GetAttestationRequest(nonce=nonce), timeout=timeout)
        except grpc.RpcError as exc:
            raise AttestedChannelError(f"GetAttestation failed: {exc.code().name}: {exc.details()}") from None
        attested = check_evidence(reply, certificate, nonce, trust)
    except BaseException:
        channel.close()
        raise
    return AttestedSession(channel, attested, token=token)


def broker_trusted(target: str, ca_pem: bytes, *, token: str | None = None, timeout: float = 30.0) -> AttestedSession:
    """A session with an enclave whose TLS certificate the key broker issued after attesting it: ordinary
    TLS with the broker's enclave CA as the only root. The handshake is completed (and the certificate
    checked) before this returns, so no prompt can go to a server the CA did not vouch for."""
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    channel = grpc.secure_channel(target, creds, options=[("grpc.ssl_target_name_override", SERVER_NAME),
                                                          ("grpc.max_receive_message_length", -1)])
    if _connect(channel, timeout) != grpc.ChannelConnectivity.READY:
        channel.close()
        raise AttestedChannelError(f"{target}: no TLS session with a certificate from the broker's enclave CA "
                                   "(wrong CA, a self-signed or expired certificate, or unreachable)")
    return AttestedSession(channel, None, token=token)


def _connect(channel: grpc.Channel, timeout: float) -> grpc.ChannelConnectivity | None:
    """Connect now; the first settled state (READY, or TRANSIENT_FAILURE when the handshake fails)."""
    settled: list[grpc.ChannelConnectivity] = []
    done = threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            settled.append(state)
            done.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        done.wait(timeout)
    finally:
        channel.unsubscribe(watch)
    return settled[0] if settled else None


def describe(attested: Attested) -> dict[str, Any]:
    """A JSON-able summary for the CLI: the certificate, the TEE, the policy decision."""
    from cryptography.hazmat.primitives import hashes

    return {"certificate_sha256": attested.certificate.fingerprint(hashes.SHA256()).hex(),
            "tee": attested.claims.tee, "anchor": attested.claims.anchor.model_dump(mode="json"),
            "tcb_status": str(attested.claims.tcb_status.value),
            "policy": attested.decision.policy_name if attested.decision is not None else None,
            "allowed": True, "tee_pubkey_jwk": json.dumps(certificate_jwk(attested.certificate), sort_keys=True)}
