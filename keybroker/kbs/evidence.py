"""Turn `tee-evidence` into attestation.Evidence, and check the TEE's public key.

Accepted forms (KBS protocol, trustee kbs/docs/kbs_attestation_protocol.md): the composite form
`{"primary_evidence": P, "additional_evidence": "<json string>"}` or, as older
Trustee clients send it, the primary evidence object alone. TDX:
`{"quote": base64}`. SNP (Veil form, see docs/broker.md):
`{"attestation_report": base64 of the 1184-byte report, "cert_chain": [base64 DER, …] | null}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from attestation.errors import ParseError
from attestation.evidence import Evidence

from ..errors import Reason

MAX_EVIDENCE = 1 << 20


class EvidenceRejected(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Submitted:
    evidence: Evidence
    additional_evidence: str


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > MAX_EVIDENCE:
        raise EvidenceRejected(Reason("kbs.evidence_format", f"{field} must be a non-empty base64 string"))
    text = value.strip()
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceRejected(Reason("kbs.evidence_format", f"{field} is not base64")) from None


def _primary(tee: str, primary: Any) -> Evidence:
    if not isinstance(primary, dict):
        raise EvidenceRejected(Reason("kbs.evidence_format", "primary evidence must be a JSON object"))
    if tee == "tdx":
        return Evidence("tdx", _b64(primary.get("quote"), "tdx quote"))
    chain = primary.get("cert_chain") or []
    if not isinstance(chain, list):
        raise EvidenceRejected(Reason("kbs.evidence_format", "snp cert_chain must be a list"))
    certs = tuple(_b64(c.get("data") if isinstance(c, dict) else c, "snp cert_chain item") for c in chain)
    return Evidence("snp", _b64(primary.get("attestation_report"), "snp attestation_report"), certs)


def decode(tee: str, tee_evidence: Any) -> Submitted:
    if isinstance(tee_evidence, str):                      # some clients send the JSON as a string
        try:
            tee_evidence = json.loads(tee_evidence)
        except ValueError:
            raise EvidenceRejected(Reason("kbs.evidence_format", "tee-evidence is not JSON")) from None
    if not isinstance(tee_evidence, dict):
        raise EvidenceRejected(Reason("kbs.evidence_format", "tee-evidence must be a JSON object"))
    if "primary_evidence" in tee_evidence:
        additional = tee_evidence.get("additional_evidence") or ""
        if not isinstance(additional, str):
            raise EvidenceRejected(Reason("kbs.evidence_format", "additional_evidence must be a JSON string"))
        return Submitted(_primary(tee, tee_evidence["primary_evidence"]), additional)
    return Submitted(_primary(tee, tee_evidence), "")


def check_tee_pubkey(jwk: dict[str, Any]) -> None:
    """The key releases are wrapped to (jwe.tee_key): EC P-256/384/521 for ECDH-ES+A256KW, or RSA ≥ 2048 for
    RSA-OAEP-256."""
    from joserfc.errors import JoseError

    from .jwe import tee_key

    try:
        tee_key(jwk)
        return
    except (JoseError, ValueError, TypeError, KeyError):      # binascii.Error is a ValueError
        pass
    kty, alg = jwk.get("kty"), jwk.get("alg")
    raise EvidenceRejected(Reason("kbs.tee_pubkey", "tee-pubkey must be an EC P-256/P-384/P-521 JWK "
                                  "(alg ECDH-ES+A256KW) or an RSA JWK of at least 2048 bits (alg RSA-OAEP-256)",
                                  expected="EC P-256/384/521 or RSA>=2048", actual=f"kty={kty} alg={alg}"))


def parse_error_reason(exc: ParseError) -> Reason:
    return Reason(exc.code, exc.message)
