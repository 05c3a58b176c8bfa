"""One platform alternative applied to claims: TEE, anchor, TCB status, advisories, debug, then the rest."""

from __future__ import annotations

from attestation.claims import Claims

from ..cel import CelProgram
from ..decision import AlternativeResult, CheckResult
from ..schema import Platform
from .common import Context
from .gpu import gpu_checks
from .snp import snp_checks
from .tdx import tdx_checks


def check_platform(index: int, rule: Platform, claims: Claims, ctx: Context, program: CelProgram | None,
                   claims_json) -> AlternativeResult:
    """All checks of one alternative. `claims_json` is a callable giving the claims as JSON (for CEL)."""
    tee = CheckResult("policy.tee", claims.tee == rule.tee, rule.tee, claims.tee,
                      "ok" if claims.tee == rule.tee else "evidence is from another TEE")
    if not tee.passed:
        return AlternativeResult(index, rule.name, rule.tee, (tee,))
    checks = [tee, _anchor(rule, claims), _tcb_status(rule, claims), _advisories(rule, claims), _debug(rule, claims)]
    checks += _tee_checks(rule, claims, ctx)
    checks += gpu_checks(rule.gpus, claims.gpus, rule.anchor, ctx)
    if program is not None:
        outcome = program.evaluate(claims_json(), resource=ctx.resource, at=ctx.at)
        checks.append(CheckResult("policy.cel", outcome.passed, "true", outcome.actual, outcome.message))
    return AlternativeResult(index, rule.name, rule.tee, tuple(checks))


def _tee_checks(rule: Platform, claims: Claims, ctx: Context) -> list[CheckResult]:
    section = claims.tdx if rule.tee == "tdx" else claims.snp
    if section is None:
        return [CheckResult(f"policy.{rule.tee}.claims", False, f"{rule.tee} claims", "absent",
                            f"claims say tee={claims.tee} but carry no {rule.tee} section")]
    if rule.tee == "tdx":
        return tdx_checks(rule.tdx, section, ctx)
    return snp_checks(rule.snp, section, ctx)


def _anchor(rule: Platform, claims: Claims) -> CheckResult:
    actual = f"{claims.anchor.kind} ({claims.anchor.name})"
    ok = claims.anchor.kind == rule.anchor
    origin = "" if "anchor" in rule.model_fields_set else " (default)"
    return CheckResult("policy.anchor", ok, rule.anchor + origin, actual,
                       "ok" if ok else f"evidence chains to a {claims.anchor.kind} anchor")


def _tcb_status(rule: Platform, claims: Claims) -> CheckResult:
    ok = claims.tcb_status in rule.tcb_status
    origin = "" if "tcb_status" in rule.model_fields_set else " (default)"
    return CheckResult("policy.tcb_status", ok, "one of " + ", ".join(s.value for s in rule.tcb_status) + origin,
                       claims.tcb_status.value, "ok" if ok else "TCB status not accepted")


def _advisories(rule: Platform, claims: Claims) -> CheckResult:
    actual = ", ".join(claims.advisory_ids) or "none"
    if rule.advisory_ids == "any":
        return CheckResult("policy.advisories", True, "any", actual, "waived: the policy says `any`", waived=True)
    extra = [a for a in claims.advisory_ids if a not in rule.advisory_ids]
    expected = ("only " + ", ".join(rule.advisory_ids)) if rule.advisory_ids else "none (default)"
    return CheckResult("policy.advisories", not extra, expected, actual,
                       "ok" if not extra else "advisories not allowed: " + ", ".join(extra))


def _debug(rule: Platform, claims: Claims) -> CheckResult:
    debug = claims.debug or bool(claims.tdx and claims.tdx.td_attributes.debug) \
        or bool(claims.snp and claims.snp.policy.debug)
    shown = "on" if debug else "off"
    if rule.insecure_allow_debug:
        return CheckResult("policy.debug", True, "any (INSECURE: insecure_allow_debug is true)", shown,
                           "debug allowed by policy: the host can read this workload's memory", waived=True)
    return CheckResult("policy.debug", not debug, "off", shown,
                       "ok" if not debug else "debug is on: the host can read this workload's memory")
