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
        from .tdx import abi as tdx_abi
        from .tdx.verify import verify_quote
        return verify_quote(tdx_abi.parse_quote(evidence.report), opts)
    if evidence.tee == "snp":
        from .snp import abi as snp_abi
        from .snp.verify import verify_report
        return verify_report(snp_abi.parse_report(evidence.report), opts,
                             supplied_certificates=evidence.certificates)
    raise ParseError("evidence", "tee", None, f"unsupported TEE {evidence.tee!r}")


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
