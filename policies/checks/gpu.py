"""GPU rules: how many GPUs, and for each its architecture, CC mode, RIM match, driver and anchor."""

from __future__ import annotations

from attestation.claims import GpuClaims

from ..decision import CheckResult
from ..schema import GpuRule
from .common import Context, describe, version_tuple


def gpu_checks(rule: GpuRule | None, gpus: tuple[GpuClaims, ...], anchor_kind: str, ctx: Context) -> list[CheckResult]:
    if rule is None:
        return [CheckResult("policy.gpu.count", not gpus, "0 (the platform has no gpus section)", str(len(gpus)),
                            "no GPUs" if not gpus else "evidence carries GPUs this platform does not describe")]
    out = [_count(rule, gpus)]
    out.append(_each("policy.gpu.architecture", gpus, describe(rule.architectures),
                     lambda g: g.architecture in rule.architectures.values, lambda g: g.architecture))
    out.append(_each("policy.gpu.cc_mode", gpus, describe(rule.cc_mode),
                     lambda g: g.cc_mode in rule.cc_mode.values, lambda g: g.cc_mode))
    out.append(_each("policy.gpu.anchor", gpus, anchor_kind,
                     lambda g: g.anchor.kind == anchor_kind, lambda g: g.anchor.kind))
    out.append(_rim(rule, gpus))
    out.append(_driver(rule, gpus))
    return out


def _count(rule: GpuRule, gpus: tuple[GpuClaims, ...]) -> CheckResult:
    n = len(gpus)
    if rule.count is not None:
        return CheckResult("policy.gpu.count", n == rule.count, str(rule.count), str(n),
                           "ok" if n == rule.count else "wrong number of GPUs")
    return CheckResult("policy.gpu.count", n >= rule.min_count, f">= {rule.min_count}", str(n),
                       "ok" if n >= rule.min_count else "too few GPUs")


def _each(code: str, gpus: tuple[GpuClaims, ...], expected: str, ok, show) -> CheckResult:
    """A per-GPU rule: passes when every GPU passes; `actual` lists each GPU's value."""
    actual = ", ".join(f"GPU-{g.index}: {show(g)}" for g in gpus) or "no GPUs"
    bad = [f"GPU-{g.index}" for g in gpus if not ok(g)]
    message = "no GPUs (the count check governs)" if not gpus else "failing: " + ", ".join(bad) if bad else "every GPU ok"
    return CheckResult(code, not bad, expected, actual, message)


def _rim(rule: GpuRule, gpus: tuple[GpuClaims, ...]) -> CheckResult:
    if not rule.require_rim_match:
        return CheckResult("policy.gpu.rim", True, "any (INSECURE: policy does not require RIM match)",
                           ", ".join(g.measurement_result for g in gpus), "waived by policy", waived=True)
    return _each("policy.gpu.rim", gpus, "success (golden measurements match the RIMs)",
                 lambda g: g.measurement_result == "success", lambda g: g.measurement_result)


def _driver(rule: GpuRule, gpus: tuple[GpuClaims, ...]) -> CheckResult:
    if rule.min_driver_version is None:
        shown = ", ".join(f"GPU-{g.index}: {g.driver_version}" for g in gpus)
        return CheckResult("policy.gpu.driver_version", True, "any (no minimum in policy)", shown,
                           "no minimum", waived=True)
    floor = version_tuple(rule.min_driver_version)
    return _each("policy.gpu.driver_version", gpus, f">= {rule.min_driver_version}",
                 lambda g: version_tuple(g.driver_version) >= floor, lambda g: g.driver_version)
