"""veil.attestation.v1.Attestation: evidence binding a client's nonce and the enclave's TLS key.

    report_data = attestation.binding.report_data(nonce, tee_pubkey=JWK(TLS key))

— the KBS protocol's rule, the same the key broker checks, so one verifier
and one binding serve both. Collateral may ride along (signed by the vendor,
checked by the client against its own anchors).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Callable, Protocol

import grpc

from attestation.attesters import Attester
from attestation.binding import report_data
from attestation.collateral import TdxCollateral

from .protos import attestation_pb2, attestation_pb2_grpc
from .tls import TlsIdentity

MIN_NONCE_BYTES = 16
MAX_NONCE_CHARS = 512
HASH_ALG = "sha384"


class CollateralProvider(Protocol):
    """Optional: collateral the enclave ships with its evidence (e.g. from the emulated vendor)."""

    def tdx(self, fmspc: str, ca: str) -> TdxCollateral: ...


def _nonce_problem(nonce: str) -> str | None:
    if not nonce or len(nonce) > MAX_NONCE_CHARS:
        return f"nonce must be 1..{MAX_NONCE_CHARS} characters of base64"
    try:
        raw = base64.b64decode(nonce + "=" * (-len(nonce) % 4), altchars=b"-_" if "-" in nonce or "_" in nonce
                               else None, validate=True)
    except (binascii.Error, ValueError):
        return "nonce is not base64"
    if len(raw) < MIN_NONCE_BYTES:
        return f"nonce must carry at least {MIN_NONCE_BYTES} random bytes, got {len(raw)}"
    return None


def tdx_collateral_message(c: TdxCollateral) -> attestation_pb2.TdxCollateral:
    return attestation_pb2.TdxCollateral(**{f: getattr(c, f) for f in TdxCollateral.__dataclass_fields__})


class AttestationServicer(attestation_pb2_grpc.AttestationServicer):
    """Answers GetAttestation with fresh evidence from `attester` over this server's TLS key."""

    def __init__(self, attester: Attester, identity: TlsIdentity, *,
                 tdx_collateral: Callable[[], TdxCollateral | None] | None = None,
                 snp_crls: Callable[[], list[tuple[str, str, bytes]]] | None = None) -> None:
        self._attester = attester
        self._identity = identity
        self._jwk = identity.jwk()
        self._tdx_collateral = tdx_collateral
        self._snp_crls = snp_crls

    async def GetAttestation(self, request, context):
        problem = _nonce_problem(request.nonce)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        data = report_data(request.nonce, self._jwk, hash_alg=HASH_ALG)
        evidence = self._attester.collect(data)
        reply = attestation_pb2.GetAttestationResponse(
            tee=evidence.tee, evidence=evidence.report, certificates=list(evidence.certificates),
            nonce=request.nonce, tee_pubkey_jwk=json.dumps(self._jwk, sort_keys=True),
            tls_certificate=self._identity.certificate_der, hash_alg=HASH_ALG, additional_evidence="")
        if evidence.tee == "tdx" and self._tdx_collateral is not None:
            collateral = self._tdx_collateral()
            if collateral is not None:
                reply.tdx_collateral.CopyFrom(tdx_collateral_message(collateral))
        if evidence.tee == "snp" and self._snp_crls is not None:
            reply.snp_crls.extend(attestation_pb2.SnpCrl(product=p, signer=s, der=d) for p, s, d in self._snp_crls())
        return reply


def emulated_collateral(vendor, *, clock: Callable[[], dt.datetime] | None = None):
    """(tdx_collateral, snp_crls) providers backed by the emulated vendor, current at clock()."""
    now = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def tdx() -> TdxCollateral:
        return vendor.tdx_collateral(at=now())

    def crls() -> list[tuple[str, str, bytes]]:
        return [("Milan", "vcek", vendor.snp_crl("Milan", "vcek", at=now()))]

    return tdx, crls
