"""TDX rules (Intel TDX DCAP quote fields): measurements, TD attributes, XFAM, TCB floors."""

from __future__ import annotations

from attestation.claims import TdxClaims

from ..decision import CheckResult
from ..schema import TdxRule
from .common import Context, allowed, flag, floor

MEASUREMENTS = ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrseam", "mrsignerseam",
                "mrconfigid", "mrowner", "mrownerconfig", "mrservicetd")
_DEFAULTS = {"rtmr3": "all zero", "mrsignerseam": "all zero (Intel)", "mrconfigid": "all zero",
             "mrowner": "all zero", "mrownerconfig": "all zero", "mrservicetd": "all zero"}

# TD_ATTRIBUTES reserved bits 1-27, 29, 32-62 must be zero (bit 0 DEBUG is the debug check).
RESERVED_TD_ATTRIBUTES = ((1 << 28) - 2) | (1 << 29) | (((1 << 63) - 1) ^ ((1 << 32) - 1))
XFAM_REQUIRED, XFAM_ALLOWED = 0x3, 0x0006DBE7


def tdx_checks(rule: TdxRule, tdx: TdxClaims, ctx: Context) -> list[CheckResult]:
    explicit = rule.model_fields_set
    out = [_measurement(name, rule, tdx, ctx, name in explicit) for name in MEASUREMENTS]
    out += _attributes(rule, tdx)
    out.append(_xfam(rule, tdx, ctx))
    out.append(allowed("policy.tdx.fmspc", rule.fmspc, tdx.fmspc, ctx, explicit="fmspc" in explicit,
                       default="hardware identity is vouched for by the PCK chain"))
    svn = None if rule.min_tee_tcb_svn is None else bytes.fromhex(rule.min_tee_tcb_svn)
    out.append(floor("policy.tdx.tee_tcb_svn", svn, bytes.fromhex(tdx.tee_tcb_svn)))
    out.append(floor("policy.tdx.qe_isvsvn", None if rule.min_qe_isvsvn is None else (rule.min_qe_isvsvn,),
                     (tdx.qe_isvsvn,)))
    return out


def _measurement(name: str, rule: TdxRule, tdx: TdxClaims, ctx: Context, explicit: bool) -> CheckResult:
    actual = getattr(tdx, name)
    if actual is None:                 # MRSERVICETD exists only in TD 1.5 bodies: absent reads as zero
        actual = "00" * 48
    return allowed(f"policy.tdx.{name}", getattr(rule, name), actual, ctx, explicit=explicit,
                   default=_DEFAULTS.get(name, ""))


def _attributes(rule: TdxRule, tdx: TdxClaims) -> list[CheckResult]:
    attrs, want = tdx.td_attributes, rule.td_attributes
    value = attrs.value
    reserved = value & RESERVED_TD_ATTRIBUTES
    return [
        flag("policy.tdx.td_attributes.sept_ve_disable", want.sept_ve_disable, bool(value >> 28 & 1)),
        flag("policy.tdx.td_attributes.pks", want.pks, bool(value >> 30 & 1)),
        flag("policy.tdx.td_attributes.kl", want.kl, bool(value >> 31 & 1)),
        flag("policy.tdx.td_attributes.perfmon", want.perfmon, bool(value >> 63 & 1)),
        CheckResult("policy.tdx.td_attributes.reserved", reserved == 0, "reserved bits clear",
                    f"{value:#018x}", "ok" if reserved == 0 else f"reserved bits set: {reserved:#x}"),
    ]


def _xfam(rule: TdxRule, tdx: TdxClaims, ctx: Context) -> CheckResult:
    if rule.xfam is not None:
        return allowed("policy.tdx.xfam", rule.xfam, tdx.xfam, ctx, explicit=True)
    value = int.from_bytes(bytes.fromhex(tdx.xfam), "little")
    ok = value & XFAM_REQUIRED == XFAM_REQUIRED and value & ~XFAM_ALLOWED == 0
    return CheckResult("policy.tdx.xfam", ok, f"(default) bits {XFAM_REQUIRED:#x} set, none outside {XFAM_ALLOWED:#x}",
                       tdx.xfam, f"value {value:#x}" + ("" if ok else ": outside the default rule"))
