"""SEV-SNP ATTESTATION_REPORT (versions 2–5): bytes in, an immutable Report out. No crypto.

Layout from AMD's SEV-SNP Firmware ABI spec (56860, table "ATTESTATION_REPORT"),
as read by go-sev-guest `abi/abi.go` and virtee/sev `AttestationReport`; see
the AMD SEV-SNP Firmware ABI spec (56860), Table ATTESTATION_REPORT. Integers are little-endian. Every "must be zero"
range is checked, so a report that parses has exactly the documented shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType

from ..binary import Reader
from . import certtable
from .fields import (GuestPolicy, PlatformInfo, SignerInfo, decode_platform_info, decode_policy,
                     decode_signer_info, decode_tcb, product_from_cpuid)

STRUCTURE = "SNP report"
REPORT_SIZE = 0x4A0
SIGNED_END = 0x2A0                 # the signature covers bytes 0x000–0x29F
SUPPORTED_VERSIONS = (2, 3, 4, 5)  # 4 has the v3 layout (virtee/sev)
ECDSA_P384_SHA384 = 1
POLICY_RESERVED_ONE = 1 << 17
POLICY_MBZ_MASK = ~((1 << 26) - 1) & 0xFFFF_FFFF_FFFF_FFFF
SIGNER_INFO_MBZ_MASK = 0xFFFF_FFE0
_EMPTY: Mapping[str, bytes] = MappingProxyType({})

# (offset, size, name) of every field, in order; names the field a short buffer stops in.
LAYOUT = (
    (0x000, 4, "VERSION"), (0x004, 4, "GUEST_SVN"), (0x008, 8, "POLICY"), (0x010, 16, "FAMILY_ID"),
    (0x020, 16, "IMAGE_ID"), (0x030, 4, "VMPL"), (0x034, 4, "SIGNATURE_ALGO"),
    (0x038, 8, "CURRENT_TCB"), (0x040, 8, "PLATFORM_INFO"), (0x048, 4, "SIGNER_INFO"),
    (0x04C, 4, "reserved"), (0x050, 64, "REPORT_DATA"), (0x090, 48, "MEASUREMENT"),
    (0x0C0, 32, "HOST_DATA"), (0x0E0, 48, "ID_KEY_DIGEST"), (0x110, 48, "AUTHOR_KEY_DIGEST"),
    (0x140, 32, "REPORT_ID"), (0x160, 32, "REPORT_ID_MA"), (0x180, 8, "REPORTED_TCB"),
    (0x188, 1, "CPUID_FAM_ID"), (0x189, 1, "CPUID_MOD_ID"), (0x18A, 1, "CPUID_STEP"),
    (0x18B, 21, "reserved"), (0x1A0, 64, "CHIP_ID"), (0x1E0, 8, "COMMITTED_TCB"),
    (0x1E8, 3, "CURRENT_VERSION"), (0x1EB, 1, "reserved"), (0x1EC, 3, "COMMITTED_VERSION"),
    (0x1EF, 1, "reserved"), (0x1F0, 8, "LAUNCH_TCB"), (0x1F8, 8, "LAUNCH_MIT_VECTOR"),
    (0x200, 8, "CURRENT_MIT_VECTOR"), (0x208, 0x98, "reserved"), (0x2A0, 72, "SIGNATURE.R"),
    (0x2E8, 72, "SIGNATURE.S"), (0x330, 0x170, "SIGNATURE reserved"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One parsed report. Byte fields are as stored; TCB fields are raw u64 (decode with `fields`)."""

    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: int
    platform_info: PlatformInfo
    signer_info: SignerInfo
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: int
    cpuid_fam_id: int | None       # v3+
    cpuid_mod_id: int | None
    cpuid_step: int | None
    chip_id: bytes
    committed_tcb: int
    current_version: tuple[int, int, int]     # (major, minor, build)
    committed_version: tuple[int, int, int]
    launch_tcb: int
    launch_mit_vector: int | None  # v5
    current_mit_vector: int | None
    signature_r: bytes             # 72 bytes, little-endian
    signature_s: bytes
    signed_bytes: bytes            # bytes 0x000–0x29F
    raw: bytes                     # the 0x4A0 report bytes
    certificates: Mapping[str, bytes] = field(default_factory=lambda: _EMPTY)  # from an appended certificate table
    trailing: bytes = b""          # bytes after the report that are not a certificate table

    @property
    def product(self) -> str | None:
        """Milan, Genoa or Turin from CPUID (v3+); None for v2 or an unknown CPU."""
        if self.cpuid_fam_id is None or self.cpuid_mod_id is None:
            return None
        return product_from_cpuid(self.cpuid_fam_id, self.cpuid_mod_id)

    @property
    def chip_id_masked(self) -> bool:
        return not any(self.chip_id)


def _check_length(r: Reader) -> None:
    """A short buffer fails on the first field it cuts, named."""
    size = len(r.data)
    for offset, length, name in LAYOUT:
        if offset + length > size:
            r.bytes(name, offset, length)      # raises ParseError naming the field


def _version(r: Reader) -> int:
    version = r.u32("VERSION", 0x000)
    if version not in SUPPORTED_VERSIONS:
        raise r.fail("VERSION", 0x000, f"unsupported version {version}; expected 2, 3, 4 or 5")
    return version


def _policy(r: Reader) -> GuestPolicy:
    raw = r.u64("POLICY", 0x008)
    if not raw & POLICY_RESERVED_ONE:
        raise r.fail("POLICY", 0x008, f"reserved bit 17 must be 1 (POLICY 0x{raw:X})")
    if raw & POLICY_MBZ_MASK:
        raise r.fail("POLICY", 0x008, f"reserved bits 63:26 must be zero (POLICY 0x{raw:X})")
    return decode_policy(raw)


def _signer_info(r: Reader) -> SignerInfo:
    raw = r.u32("SIGNER_INFO", 0x048)
    if raw & SIGNER_INFO_MBZ_MASK:
        raise r.fail("SIGNER_INFO", 0x048, f"reserved bits 31:5 must be zero (0x{raw:X})")
    key = (raw >> 2) & 0x7
    if key not in (0, 1, 7):
        raise r.fail("SIGNER_INFO", 0x048, f"SIGNING_KEY {key} is reserved; expected 0 (VCEK), "
                     "1 (VLEK) or 7 (none)")
    return decode_signer_info(raw)


def _signature_algo(r: Reader) -> int:
    algo = r.u32("SIGNATURE_ALGO", 0x034)
    if algo != ECDSA_P384_SHA384:
        raise r.fail("SIGNATURE_ALGO", 0x034, f"is {algo}; only 1 (ECDSA P-384 with SHA-384) is defined")
    return algo


def _check_reserved(r: Reader, version: int) -> None:
    r.reserved_zero(0x04C, 0x050)
    r.reserved_zero(0x188 if version == 2 else 0x18B, 0x1A0)
    r.reserved_zero(0x1EB, 0x1EC)
    r.reserved_zero(0x1EF, 0x1F0)
    if version < 5:
        r.reserved_zero(0x1F8, 0x208, "reserved (mitigation vectors, v5 only)")
    r.reserved_zero(0x208, 0x2A0)
    r.reserved_zero(0x330, REPORT_SIZE, "SIGNATURE reserved")


def _firmware_version(r: Reader, name: str, offset: int) -> tuple[int, int, int]:
    build, minor, major = r.bytes(name, offset, 3)
    return (major, minor, build)


def _tail(data: bytes) -> tuple[Mapping[str, bytes], bytes]:
    """Bytes after the report: a certificate table (parsed strictly) or kept as they are."""
    extra = data[REPORT_SIZE:]
    if extra and certtable.looks_like_cert_table(extra):
        return MappingProxyType(certtable.parse_cert_table(extra)), b""
    return _EMPTY, extra


def parse_report(data: bytes) -> Report:
    """Parse an ATTESTATION_REPORT, optionally followed by a GHCB certificate table.

    Raises:
        ParseError: naming the field and offset of the first structural problem.
    """
    data = bytes(data)
    r = Reader(data, structure=STRUCTURE)
    _check_length(r)
    version = _version(r)
    v3 = version >= 3
    v5 = version >= 5
    policy, signer_info, algo = _policy(r), _signer_info(r), _signature_algo(r)
    _check_reserved(r, version)
    certificates, trailing = _tail(data)
    return Report(
        version=version, guest_svn=r.u32("GUEST_SVN", 0x004), policy=policy,
        family_id=r.bytes("FAMILY_ID", 0x010, 16), image_id=r.bytes("IMAGE_ID", 0x020, 16),
        vmpl=r.u32("VMPL", 0x030), signature_algo=algo, current_tcb=r.u64("CURRENT_TCB", 0x038),
        platform_info=decode_platform_info(r.u64("PLATFORM_INFO", 0x040)), signer_info=signer_info,
        report_data=r.bytes("REPORT_DATA", 0x050, 64), measurement=r.bytes("MEASUREMENT", 0x090, 48),
        host_data=r.bytes("HOST_DATA", 0x0C0, 32), id_key_digest=r.bytes("ID_KEY_DIGEST", 0x0E0, 48),
        author_key_digest=r.bytes("AUTHOR_KEY_DIGEST", 0x110, 48),
        report_id=r.bytes("REPORT_ID", 0x140, 32), report_id_ma=r.bytes("REPORT_ID_MA", 0x160, 32),
        reported_tcb=r.u64("REPORTED_TCB", 0x180),
        cpuid_fam_id=r.u8("CPUID_FAM_ID", 0x188) if v3 else None,
        cpuid_mod_id=r.u8("CPUID_MOD_ID", 0x189) if v3 else None,
        cpuid_step=r.u8("CPUID_STEP", 0x18A) if v3 else None,
        chip_id=r.bytes("CHIP_ID", 0x1A0, 64), committed_tcb=r.u64("COMMITTED_TCB", 0x1E0),
        current_version=_firmware_version(r, "CURRENT_VERSION", 0x1E8),
        committed_version=_firmware_version(r, "COMMITTED_VERSION", 0x1EC),
        launch_tcb=r.u64("LAUNCH_TCB", 0x1F0),
        launch_mit_vector=r.u64("LAUNCH_MIT_VECTOR", 0x1F8) if v5 else None,
        current_mit_vector=r.u64("CURRENT_MIT_VECTOR", 0x200) if v5 else None,
        signature_r=r.bytes("SIGNATURE.R", 0x2A0, 72), signature_s=r.bytes("SIGNATURE.S", 0x2E8, 72),
        signed_bytes=data[:SIGNED_END], raw=data[:REPORT_SIZE],
        certificates=certificates, trailing=trailing,
    )


# --------------------------------------------------------------------------- inspection

def _tcb_dict(raw: int, product: str | None) -> dict[str, object]:
    parts = decode_tcb(raw, product)
    out: dict[str, object] = {"raw": parts.hex}
    if parts.fmc is not None:
        out["fmc"] = parts.fmc
    out.update(bootloader=parts.bootloader, tee=parts.tee, snp=parts.snp, microcode=parts.microcode)
    return out


def describe(report: Report) -> dict[str, object]:
    """Every field, decoded for people (`veil attest inspect`). Unverified: nothing here is trusted.

    TCB values of a v2 report are decoded with the Milan/Genoa layout (v2 names no product).
    """
    product = report.product
    return {
        "version": report.version,
        "product": product or "unknown (v2 reports name no product; see the VCEK productName)",
        "cpuid": None if report.cpuid_fam_id is None else {
            "family": f"0x{report.cpuid_fam_id:02x}", "model": f"0x{report.cpuid_mod_id:02x}",
            "stepping": report.cpuid_step},
        "guest_svn": report.guest_svn,
        "policy": {**asdict(report.policy), "raw": f"0x{report.policy.raw:x}"},
        "family_id": report.family_id.hex(), "image_id": report.image_id.hex(),
        "vmpl": report.vmpl,
        "signature_algo": "ECDSA P-384 with SHA-384" if report.signature_algo == 1 else report.signature_algo,
        "platform_info": {**asdict(report.platform_info), "raw": f"0x{report.platform_info.raw:x}"},
        "signer_info": {**asdict(report.signer_info), "raw": f"0x{report.signer_info.raw:x}"},
        "report_data": report.report_data.hex(), "measurement": report.measurement.hex(),
        "host_data": report.host_data.hex(), "id_key_digest": report.id_key_digest.hex(),
        "author_key_digest": report.author_key_digest.hex(), "report_id": report.report_id.hex(),
        "report_id_ma": report.report_id_ma.hex(),
        "chip_id": report.chip_id.hex() + (" (masked)" if report.chip_id_masked else ""),
        "current_tcb": _tcb_dict(report.current_tcb, product),
        "reported_tcb": _tcb_dict(report.reported_tcb, product),
        "committed_tcb": _tcb_dict(report.committed_tcb, product),
        "launch_tcb": _tcb_dict(report.launch_tcb, product),
        "current_version": "{}.{}.{}".format(*report.current_version),
        "committed_version": "{}.{}.{}".format(*report.committed_version),
        "launch_mit_vector": report.launch_mit_vector, "current_mit_vector": report.current_mit_vector,
        "signature": {"r": report.signature_r[::-1].hex().lstrip("0") or "0",
                      "s": report.signature_s[::-1].hex().lstrip("0") or "0"},
        "certificates": {kind: f"{len(blob)} bytes" for kind, blob in report.certificates.items()},
        "trailing_bytes": len(report.trailing),
    }
