"""The evaluator: claims in, a decision with one result per check out. Pure and deterministic."""

from __future__ import annotations

from datetime import datetime

from attestation.claims import Claims

from .checks.common import Context
from .checks.platform import check_platform
from .compile import CompiledPolicy
from .decision import AlternativeResult, CheckResult, Decision
from .resources import check_resource, matches


def evaluate(policy: CompiledPolicy, claims: Claims, *, at: datetime, resource: str | None = None) -> Decision:
    """Decide whether `claims` satisfy `policy` at time `at` for `resource`.

    Deny by default: allowed only when the resource check passes and some
    platform alternative passes every one of its checks. Never raises for
    any claims; a malformed `resource` is a failed check.
    """
    spec = policy.document.spec
    ctx = Context(at=at, references=dict(policy.references), resource=resource)
    top = [_resource_check(spec.resources, resource)]
    json_cache: list[dict] = []

    def claims_json() -> dict:
        if not json_cache:
            json_cache.append(claims.model_dump(mode="json"))
        return json_cache[0]

    alternatives = tuple(check_platform(i, rule, claims, ctx, policy.programs[i], claims_json)
                         for i, rule in enumerate(spec.platforms))
    if not alternatives:
        top.append(CheckResult("policy.platforms", False, "at least one platform alternative", "none",
                               "the policy lists no platforms: everything is denied"))
        return Decision(False, tuple(top), policy.name, policy.digest, None, None, ())
    chosen = next((a for a in alternatives if a.passed), None)
    shown = chosen or _closest(alternatives)
    checks = tuple(top) + shown.checks
    allowed = chosen is not None and all(c.passed for c in checks)
    return Decision(allowed, checks, policy.name, policy.digest,
                    chosen.index if chosen is not None else None, shown.index, alternatives)


def _closest(alternatives: tuple[AlternativeResult, ...]) -> AlternativeResult:
    """The alternative for the evidence's TEE with the fewest failed checks (first on a tie)."""
    return min(alternatives, key=lambda a: (a.checks[0].code == "policy.tee" and not a.checks[0].passed,
                                            len(a.failures), a.index))


def _resource_check(patterns: tuple[str, ...], resource: str | None) -> CheckResult:
    expected = "one of " + ", ".join(patterns) if len(patterns) > 1 else patterns[0]
    if resource is None:
        return CheckResult("policy.resource", True, expected, "(none asked)",
                           "no resource given: the patterns were not applied", waived=True)
    try:
        check_resource(resource)
    except ValueError as exc:
        return CheckResult("policy.resource", False, expected, resource, str(exc))
    ok = any(matches(p, resource) for p in patterns)
    return CheckResult("policy.resource", ok, expected, resource,
                       "governed by this policy" if ok else "this policy does not govern the resource")
