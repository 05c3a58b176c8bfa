"""The expected SEV-SNP launch measurement of a guest, computed with `sev-snp-measure`.

The measurement (MEASUREMENT in the attestation report) is the launch digest
the AMD secure processor accumulates over SNP_LAUNCH_UPDATE: the OVMF image,
the pages OVMF's SEV metadata names (zero, secrets, CPUID, and the kernel
hashes table when the guest boots a kernel directly), and one VMSA page per
vCPU. virtee's `sev-snp-measure` computes it; this module checks the
parameters, names bad input precisely, and records what went in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sevsnpmeasure import guest, vcpu_types
from sevsnpmeasure.sev_mode import SevMode
from sevsnpmeasure.vmm_types import VMMType

from ..errors import ParseError
from .errors import MeasureError
from .ovmf import footer_table

VCPU_TYPES: tuple[str, ...] = tuple(vcpu_types.CPU_SIGS)
Vmm = Literal["QEMU", "ec2", "gce"]
MAX_VCPUS = 1024
GUEST_FEATURES_DEFAULT = 0x1        # SNPActive; Linux ≥ 6.6 guests under QEMU commonly use 0x21 (+ DebugSwap)


@dataclass(frozen=True, slots=True, kw_only=True)
class SnpLaunch:
    """How an SNP guest is launched: firmware, optional direct-boot kernel, vCPUs and VMM."""

    ovmf: Path
    vcpus: int
    vcpu_type: str | None = None        # a QEMU CPU model, e.g. "EPYC-Milan"
    vcpu_sig: int | None = None         # or the CPUID signature itself
    vmm: Vmm = "QEMU"
    kernel: Path | None = None
    initrd: Path | None = None
    append: str | None = None
    guest_features: int = GUEST_FEATURES_DEFAULT
    ovmf_hash: bytes | None = None      # precomputed `snp:ovmf-hash` of the firmware, replacing its pages

    def signature(self) -> int:
        """The vCPU signature QEMU puts in each VMSA's RDX (ec2 and gce fix their own)."""
        if self.vmm != "QEMU":
            if self.vcpu_type is not None or self.vcpu_sig is not None:
                raise MeasureError("vcpu_type", f"{self.vmm} fixes the vCPU signature; leave it out")
            return 0
        if (self.vcpu_type is None) == (self.vcpu_sig is None):
            raise MeasureError("vcpu_type", "QEMU needs exactly one of a vCPU type and a vCPU signature")
        if self.vcpu_type is not None:
            if self.vcpu_type not in vcpu_types.CPU_SIGS:
                raise MeasureError("vcpu_type", f"unknown vCPU type {self.vcpu_type!r}; one of {', '.join(VCPU_TYPES)}")
            return vcpu_types.CPU_SIGS[self.vcpu_type]
        if not 0 < self.vcpu_sig < 1 << 32:
            raise MeasureError("vcpu_sig", f"0x{self.vcpu_sig:x} is not a 32-bit CPUID signature")
        return self.vcpu_sig

    def check(self) -> None:
        """MeasureError for parameters that describe no launch."""
        if self.vmm not in ("QEMU", "ec2", "gce"):
            raise MeasureError("vmm", f"unknown VMM {self.vmm!r}; one of QEMU, ec2, gce")
        if not 1 <= self.vcpus <= MAX_VCPUS:
            raise MeasureError("vcpus", f"{self.vcpus} is outside 1..{MAX_VCPUS}")
        if not 0 <= self.guest_features < 1 << 64:
            raise MeasureError("guest_features", "must be a 64-bit value")
        if self.kernel is None and (self.initrd is not None or self.append is not None):
            raise MeasureError("kernel", "an initrd or a command line is measured only with a kernel (direct boot)")
        if self.ovmf_hash is not None and len(self.ovmf_hash) != 48:
            raise MeasureError("ovmf_hash", f"expected 48 bytes (SHA-384), got {len(self.ovmf_hash)}")
        if self.append is not None and "\0" in self.append:
            raise MeasureError("append", "the command line cannot contain a NUL character")
        self.signature()


def snp_measurement(launch: SnpLaunch) -> bytes:
    """The 48-byte expected MEASUREMENT. MeasureError for bad parameters, ParseError for an unusable OVMF."""
    launch.check()
    _check_image(launch.ovmf)
    try:
        digest = guest.calc_launch_digest(
            SevMode.SEV_SNP, launch.vcpus, launch.signature(), str(launch.ovmf),
            str(launch.kernel) if launch.kernel else None, str(launch.initrd) if launch.initrd else None,
            launch.append, launch.guest_features, launch.ovmf_hash.hex() if launch.ovmf_hash else "",
            VMMType[launch.vmm])
    except (RuntimeError, KeyError) as exc:
        raise ParseError("OVMF", "SEV metadata", None, f"cannot be measured for SEV-SNP: {exc}") from None
    except (ValueError, AssertionError) as exc:     # truncated structures, unknown section types, bad sizes
        raise ParseError("OVMF", "SEV metadata", None, f"malformed: {exc or type(exc).__name__}") from None
    return bytes(digest)


def _check_image(ovmf: Path) -> None:
    """Clear errors before the library's own: a GUIDed table, whole pages."""
    image = ovmf.read_bytes()
    footer_table(image, structure="OVMF")
    if len(image) % 0x1000:
        raise ParseError("OVMF", "image size", None, f"{len(image)} bytes is not a whole number of 4 KiB pages")


def snp_ovmf_hash(ovmf: Path) -> bytes:
    """The `snp:ovmf-hash` of a firmware image: the launch digest after its own pages only."""
    _check_image(ovmf)
    try:
        return bytes(guest.calc_snp_ovmf_hash(str(ovmf)))
    except (RuntimeError, ValueError, KeyError, AssertionError) as exc:
        raise ParseError("OVMF", "SEV metadata", None, f"malformed: {exc}") from None
