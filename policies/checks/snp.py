"""SEV-SNP rules (AMD SEV-SNP Firmware ABI spec 56860 fields): measurements, guest policy, TCB and firmware floors."""

from __future__ import annotations

from attestation.claims import SnpClaims, SnpTcb

from ..decision import CheckResult
from ..schema import SnpRule, SnpTcbFloor
from .common import Context, allowed, flag, floor, version_floor

VALUES = ("measurement", "host_data", "id_key_digest", "author_key_digest", "family_id", "image_id",
          "chip_id", "vmpl")
_DEFAULTS = {"host_data": "all zero", "id_key_digest": "all zero (no ID block)",
             "author_key_digest": "all zero (no author key)", "family_id": "all zero", "image_id": "all zero",
             "chip_id": "the VCEK chain already binds the chip", "vmpl": "0"}
POLICY_FLAGS = ("smt", "migrate_ma", "single_socket", "cxl_allow", "mem_aes_256_xts", "rapl_dis",
                "ciphertext_hiding", "page_swap_disable")
TCB_PARTS = ("bootloader", "tee", "snp", "microcode")


def snp_checks(rule: SnpRule, snp: SnpClaims, ctx: Context) -> list[CheckResult]:
    explicit = rule.model_fields_set
    out = [allowed(f"policy.snp.{name}", getattr(rule, name), getattr(snp, name), ctx,
                   explicit=name in explicit, default=_DEFAULTS.get(name, "")) for name in VALUES]
    gp = rule.guest_policy
    out += [flag(f"policy.snp.policy.{name}", getattr(gp, name), getattr(snp.policy, name)) for name in POLICY_FLAGS]
    out.append(version_floor("policy.snp.policy.abi", gp.abi_minimum,
                             f"{snp.policy.abi_major}.{snp.policy.abi_minor}"))
    out.append(_tcb_floor("policy.snp.reported_tcb", rule.min_reported_tcb, snp.reported_tcb))
    out.append(_tcb_floor("policy.snp.launch_tcb", rule.min_launch_tcb, snp.launch_tcb))
    out.append(floor("policy.snp.guest_svn", None if rule.min_guest_svn is None else (rule.min_guest_svn,),
                     (snp.guest_svn,)))
    out.append(version_floor("policy.snp.firmware_version", rule.min_firmware_version, snp.current_version))
    out.append(_committed(rule, snp))
    return out


def _tcb_floor(code: str, minimum: SnpTcbFloor | None, tcb: SnpTcb) -> CheckResult:
    labels = TCB_PARTS + (("fmc",) if minimum is not None and minimum.fmc is not None else ())
    actual = tuple(getattr(tcb, p) if getattr(tcb, p) is not None else -1 for p in labels)
    want = None if minimum is None else tuple(getattr(minimum, p) for p in labels)
    return floor(code, want, actual, labels)


def _committed(rule: SnpRule, snp: SnpClaims) -> CheckResult:
    code = "policy.snp.committed_tcb"
    shown = f"committed {snp.committed_tcb.raw} / {snp.committed_version}, current {snp.current_tcb.raw} / " \
            f"{snp.current_version}"
    if not rule.allow_provisional_firmware:
        ok = snp.committed_tcb.raw == snp.current_tcb.raw and snp.committed_version == snp.current_version
        return CheckResult(code, ok, "committed == current (no provisional firmware)", shown,
                           "ok" if ok else "provisional firmware is running")
    ok = all(getattr(snp.committed_tcb, p) <= getattr(snp.current_tcb, p) for p in TCB_PARTS)
    return CheckResult(code, ok, "committed <= current (provisional firmware allowed)", shown,
                       "ok" if ok else "committed TCB is above the current one")
