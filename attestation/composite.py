"""Composite evidence: one attestation of a confidential VM together with its GPUs.

Binding (NVIDIA nvtrust local GPU verifier; KBS protocol, trustee kbs/docs/kbs_attestation_protocol.md), with N the
broker's nonce string, K the TEE public key (JWK) and H SHA-384 by default:

    D = H(JCS({"nonce": N, "tee-pubkey": K}))            each GPU's SPDM nonce = D[0:32]
    A = {"nvidia": {"device_evidence_list": [...]}}     as one exact JSON string
    P = H(JCS({"additional-evidence": A, "nonce": N, "tee-pubkey": K}))
                                                        CPU report data = P zero-padded to 64

The GPUs prove freshness and the key through D; the CPU TEE signature covers
the exact GPU evidence bytes through A. The verifier recomputes both.

Envelope (JSON):

    {"format": "veil-composite-evidence", "version": 1, "hash_alg": "sha384",
     "cpu": {"tee": "tdx" | "snp", "evidence": b64, "certificates": [b64 DER, …]},
     "additional_evidence": A}
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from typing import Any, Mapping

from . import binding
from .errors import ParseError, VerificationError
from .evidence import Evidence
from .nvidia.evidence import GpuEvidence, evidence_list_json, parse_evidence_list
from .nvidia.spdm import parse_report
from .options import VerifyOptions

FORMAT = "veil-composite-evidence"
VERSION = 1
STRUCTURE = "composite evidence"


@dataclass(frozen=True, slots=True)
class CompositeEvidence:
    cpu: Evidence
    additional_evidence: str          # the exact string the CPU report data covers
    hash_alg: str = "sha384"

    def gpus(self) -> tuple[GpuEvidence, ...]:
        return parse_evidence_list(self.additional_evidence)

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "version": VERSION, "hash_alg": self.hash_alg,
            "cpu": {"tee": self.cpu.tee, "evidence": base64.b64encode(self.cpu.report).decode(),
                    "certificates": [base64.b64encode(c).decode() for c in self.cpu.certificates]},
            "additional_evidence": self.additional_evidence}, indent=2)


def gpu_nonce(nonce: str, tee_pubkey: Mapping[str, Any], *, hash_alg: str = "sha384") -> bytes:
    """The 32-byte SPDM nonce every GPU must be asked for."""
    return binding.gpu_nonce(nonce, tee_pubkey, hash_alg=hash_alg)


def cpu_report_data(gpus: tuple[GpuEvidence, ...] | list[GpuEvidence], nonce: str,
                    tee_pubkey: Mapping[str, Any], *, hash_alg: str = "sha384") -> tuple[str, bytes]:
    """(additional evidence string, 64-byte CPU report data) for GPU evidence already collected."""
    additional = evidence_list_json(gpus)
    return additional, binding.report_data(nonce, tee_pubkey, additional_evidence=additional, hash_alg=hash_alg)


def looks_composite(data: bytes) -> bool:
    head = data.lstrip()[:4096]
    return head.startswith(b"{") and FORMAT.encode() in head


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise ParseError(STRUCTURE, field, None, "must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(STRUCTURE, field, None, "is not base64") from None


def parse_composite(data: bytes | str) -> CompositeEvidence:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(STRUCTURE, "JSON", None, f"is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ParseError(STRUCTURE, "format", None, f"is not {FORMAT} version {VERSION}")
    cpu, additional = doc.get("cpu"), doc.get("additional_evidence")
    hash_alg = doc.get("hash_alg", "sha384")
    if not isinstance(cpu, dict) or cpu.get("tee") not in ("tdx", "snp"):
        raise ParseError(STRUCTURE, "cpu.tee", None, "must be 'tdx' or 'snp'")
    if not isinstance(additional, str) or hash_alg not in binding.HASHES:
        raise ParseError(STRUCTURE, "additional_evidence", None,
                         f"must be a JSON string and hash_alg one of {sorted(binding.HASHES)}")
    certs = cpu.get("certificates", [])
    if not isinstance(certs, list):
        raise ParseError(STRUCTURE, "cpu.certificates", None, "must be a list")
    evidence = Evidence(cpu["tee"], _b64(cpu.get("evidence"), "cpu.evidence"),
                        tuple(_b64(c, f"cpu.certificates[{n}]") for n, c in enumerate(certs)))
    return CompositeEvidence(evidence, additional, hash_alg)


def check_gpu_nonces(gpus: tuple[GpuEvidence, ...], expected: bytes) -> list[VerificationError]:
    """Each GPU's SPDM request nonce must be D[0:32]: the GPU answered this session for this key."""
    errors = []
    for index, gpu in enumerate(gpus):
        actual = parse_report(gpu.report).nonce
        if not hmac.compare_digest(actual, expected):
            errors.append(VerificationError("composite.gpu_nonce", f"GPU-{index}: the SPDM nonce is not bound "
                                            "to this nonce and TEE public key", expected=expected.hex(),
                                            actual=actual.hex()))
    return errors


def verify_composite(evidence: CompositeEvidence, opts: VerifyOptions, *, nonce: str,
                     tee_pubkey: Mapping[str, Any]):
    """Verify the CPU evidence, the GPUs and the binding between them; one VerificationResult.

    Steps: (1) CPU evidence (attestation.verify); (2) CPU report data == P over the
    exact additional evidence; (3) every GPU nonce == D[0:32]; (4) GPU evidence
    (attestation.nvidia.verify). Claims are the CPU claims with `gpus` filled.
    """
    from .nvidia.verify import verify_gpus
    from .verify import Failure, VerificationResult, verify

    cpu = verify(evidence.cpu, opts)                                         # (1)
    errors = list(cpu.errors)
    if cpu.claims is not None:                                               # (2)
        try:
            binding.check_report_data(cpu.claims.report_data, nonce, tee_pubkey,
                                      additional_evidence=evidence.additional_evidence,
                                      hash_alg=evidence.hash_alg)
        except VerificationError as exc:
            errors.append(Failure("composite.report_data", "the CPU report data does not bind this nonce, "
                                  "TEE public key and GPU evidence", exc.expected, exc.actual))
    gpus = evidence.gpus()
    expected = gpu_nonce(nonce, tee_pubkey, hash_alg=evidence.hash_alg)
    errors += [Failure(e.check, e.detail, e.expected, e.actual) for e in check_gpu_nonces(gpus, expected)]  # (3)
    gpu_result = verify_gpus(gpus, opts, nonce=expected)                     # (4)
    errors += [Failure(f.code, f.message, f.expected, f.actual) for f in gpu_result.errors
               if f.code != "nvidia.nonce"]                                  # reported as composite.gpu_nonce
    claims = cpu.claims.model_copy(update={"gpus": gpu_result.gpus}) if cpu.claims else None
    return VerificationResult(not errors, "composite", claims, tuple(errors))
