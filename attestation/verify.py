"""Verify evidence of any supported TEE: one entry point, one result shape.

Per-TEE verifiers (attestation.tdx.verify, attestation.snp.verify) raise on the
first failed step. This module turns that into a VerificationResult that lists
the failure with its check code, and applies the one rule common to all TEEs:
a debug guest is not verified unless the caller explicitly allows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .claims import Claims
from .errors import AttestationError, CollateralError, ParseError, VerificationError
from .evidence import Evidence
from .options import VerifyOptions
from .snp import abi as snp_abi
from .snp.verify import verify_report
from .tdx import abi as tdx_abi
from .tdx.verify import verify_quote


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str
    expected: str | None = None
    actual: str | None = None


@dataclass(frozen=True, slots=True)
class VerificationResult:
    verified: bool
    tee: str
    claims: Claims | None
    errors: tuple[Failure, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.claims.warnings if self.claims else ()


def verify_claims(evidence: Evidence, opts: VerifyOptions) -> Claims:
    """Verify and return claims, raising AttestationError on any failure (debug excluded)."""
    if evidence.tee == "tdx":
        return verify_quote(tdx_abi.parse_quote(evidence.report), opts)
    if evidence.tee == "snp":
        return verify_report(snp_abi.parse_report(evidence.report), opts,
                             supplied_certificates=evidence.certificates)
    if evidence.tee in ("nvidia", "composite"):
        raise ParseError("evidence", "tee", None, f"{evidence.tee} evidence needs an expected nonce: use "
                         "verify_gpu_evidence or verify_composite_evidence")
    raise ParseError("evidence", "tee", None, f"unsupported TEE {evidence.tee!r}")


def verify_gpu_evidence(gpus, opts: VerifyOptions, *, nonce: bytes):
    """Standalone NVIDIA GPU evidence (a GpuEvidence list) → GpuVerificationResult.

    `nonce` is the 32-byte SPDM nonce the verifier asked for. ParseError propagates.
    """
    from .nvidia.verify import verify_gpus
    return verify_gpus(list(gpus), opts, nonce=nonce)


def verify_composite_evidence(data: bytes | str, opts: VerifyOptions, *, nonce: str,
                              tee_pubkey: dict) -> VerificationResult:
    """CPU + GPU composite evidence (attestation.composite) → VerificationResult with claims.gpus."""
    from .composite import parse_composite, verify_composite
    return verify_composite(parse_composite(data), opts, nonce=nonce, tee_pubkey=tee_pubkey)


def verify(evidence: Evidence, opts: VerifyOptions) -> VerificationResult:
    """Verify evidence; never raises for bad evidence except ParseError (unreadable input)."""
    try:
        claims = verify_claims(evidence, opts)
    except ParseError:
        raise
    except VerificationError as exc:
        failure = Failure(exc.check, exc.detail, exc.expected, exc.actual)
        return VerificationResult(False, evidence.tee, None, (failure,))
    except CollateralError as exc:
        return VerificationResult(False, evidence.tee, None, (Failure(exc.code, exc.message),))
    except AttestationError as exc:  # pragma: no cover - every subclass is handled above
        return VerificationResult(False, evidence.tee, None, (Failure(exc.code, exc.message),))
    if claims.debug and not opts.allow_debug:
        failure = Failure(f"{claims.tee}.debug",
                          "debug guest: its memory is readable by the host (pass --allow-debug to accept)",
                          expected="debug off", actual="debug on")
        return VerificationResult(False, evidence.tee, claims, (failure,))
    return VerificationResult(True, evidence.tee, claims)
