"""Byte-exact AMD SEV-SNP attestation reports and VCEK/VLEK certificates (emulated).

Layout per the AMD SEV-SNP Firmware ABI spec (56860), Table ATTESTATION_REPORT (1184 bytes), TCB_VERSION encoding
(Milan/Genoa vs Turin), signature §2 (ECDSA P-384/SHA-384 over 0x000-0x29F,
R and S little-endian in 72-byte fields) and VCEK/VLEK extensions §6.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..collateral import SnpTcbParts
from . import der

REPORT_SIZE = 0x4A0
SIGNED_END = 0x2A0
AMD_OID = "1.3.6.1.4.1.3704.1"
DEFAULT_POLICY = 0x30000                  # SMT allowed + reserved bit 17
DEFAULT_PLATFORM_INFO = 0x25              # SMT, ECC, alias check complete
DEFAULT_MEASUREMENT = hashlib.sha384(b"veil emulated SNP guest").digest()
SIGNING_KEY_BITS = {"vcek": 0, "vlek": 1}

# (CPUID family, model, stepping) per product, and the VCEK productName.
CPUID = {"Milan": (0x19, 0x01, 0x01), "Genoa": (0x19, 0x11, 0x01), "Turin": (0x1A, 0x02, 0x01)}
VCEK_PRODUCT_NAME = {"Milan": "Milan-B0", "Genoa": "Genoa", "Turin": "Turin"}
DEFAULT_TCB = {
    "Milan": SnpTcbParts(bootloader=3, tee=0, snp=8, microcode=115),
    "Genoa": SnpTcbParts(bootloader=10, tee=0, snp=23, microcode=84),
    "Turin": SnpTcbParts(bootloader=1, tee=1, snp=2, microcode=9, fmc=1),
}
FIRMWARE = {"Milan": (1, 55, 21), "Genoa": (1, 55, 40), "Turin": (1, 58, 5)}   # major, minor, build


def encode_tcb(product: str, tcb: SnpTcbParts) -> bytes:
    """TCB_VERSION bytes: Milan/Genoa [bl, tee, 0, 0, 0, 0, snp, ucode]; Turin [fmc, bl, tee, snp, 0, 0, 0, ucode]."""
    if product == "Turin":
        if tcb.fmc is None:
            raise ValueError("a Turin TCB needs an FMC SPL")
        return bytes([tcb.fmc, tcb.bootloader, tcb.tee, tcb.snp, 0, 0, 0, tcb.microcode])
    if tcb.fmc is not None:
        raise ValueError(f"{product} TCB has no FMC SPL")
    return bytes([tcb.bootloader, tcb.tee, 0, 0, 0, 0, tcb.snp, tcb.microcode])


def hw_id(product: str, chip_id: bytes) -> bytes:
    """The VCEK hwID extension: the 64-byte CHIP_ID, or its first 8 bytes on Turin."""
    return chip_id[:8] if product == "Turin" else chip_id


@dataclass(frozen=True, slots=True, kw_only=True)
class SnpFields:
    """Every field of a report the emulator writes; defaults describe a healthy guest."""

    report_data: bytes
    product: str = "Milan"
    version: int = 3
    guest_svn: int = 0
    policy: int = DEFAULT_POLICY
    family_id: bytes = bytes(16)
    image_id: bytes = bytes(16)
    vmpl: int = 0
    current_tcb: bytes = bytes(8)
    platform_info: int = DEFAULT_PLATFORM_INFO
    signer: str = "vcek"
    author_key_en: bool = False
    mask_chip_key: bool = False
    measurement: bytes = DEFAULT_MEASUREMENT
    host_data: bytes = bytes(32)
    id_key_digest: bytes = bytes(48)
    author_key_digest: bytes = bytes(48)
    report_id: bytes = bytes(32)
    report_id_ma: bytes = b"\xff" * 32
    reported_tcb: bytes = bytes(8)
    chip_id: bytes = bytes(64)
    committed_tcb: bytes = bytes(8)
    launch_tcb: bytes = bytes(8)
    launch_mit_vector: int = 0
    current_mit_vector: int = 0

    def __post_init__(self) -> None:
        sizes = {"report_data": 64, "family_id": 16, "image_id": 16, "measurement": 48,
                 "host_data": 32, "id_key_digest": 48, "author_key_digest": 48,
                 "report_id": 32, "report_id_ma": 32, "chip_id": 64, "current_tcb": 8,
                 "reported_tcb": 8, "committed_tcb": 8, "launch_tcb": 8}
        for name, size in sizes.items():
            if len(getattr(self, name)) != size:
                raise ValueError(f"{name} must be exactly {size} bytes")
        if self.version not in (2, 3, 5):
            raise ValueError("SNP report version must be 2, 3 or 5")
        if self.product not in CPUID:
            raise ValueError(f"unknown product {self.product!r}; expected Milan, Genoa or Turin")

    def signer_info(self) -> int:
        return (int(self.author_key_en) | int(self.mask_chip_key) << 1
                | SIGNING_KEY_BITS[self.signer] << 2)


def pack_body(f: SnpFields) -> bytes:
    """Bytes 0x000-0x29F (the signed part)."""
    out = bytearray(SIGNED_END)
    out[0x000:0x030] = struct.pack("<IIQ", f.version, f.guest_svn, f.policy) + f.family_id + f.image_id
    out[0x030:0x04C] = struct.pack("<II", f.vmpl, 1) + f.current_tcb + struct.pack(
        "<QI", f.platform_info, f.signer_info())
    out[0x050:0x090] = f.report_data
    out[0x090:0x140] = f.measurement + f.host_data + f.id_key_digest + f.author_key_digest
    out[0x140:0x188] = f.report_id + f.report_id_ma + f.reported_tcb
    if f.version >= 3:
        out[0x188:0x18B] = bytes(CPUID[f.product])
    major, minor, build = FIRMWARE[f.product]
    out[0x1A0:0x1E8] = f.chip_id + f.committed_tcb
    out[0x1E8:0x1EC] = bytes([build, minor, major, 0])
    out[0x1EC:0x1F0] = bytes([build, minor, major, 0])
    out[0x1F0:0x1F8] = f.launch_tcb
    if f.version >= 5:
        out[0x1F8:0x208] = struct.pack("<QQ", f.launch_mit_vector, f.current_mit_vector)
    return bytes(out)


def sign_report(body: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """Append the signature: R and S little-endian in 72-byte fields, rest of 0x2A0-0x49F zero."""
    r, s = decode_dss_signature(key.sign(body, ec.ECDSA(hashes.SHA384())))
    signature = r.to_bytes(72, "little") + s.to_bytes(72, "little")
    return body + signature + bytes(REPORT_SIZE - SIGNED_END - len(signature))


def _ext(suffix: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{AMD_OID}.{suffix}"), value)


def endorsement_extensions(product: str, tcb: SnpTcbParts, *, signer: str,
                           chip_id: bytes | None = None, csp_id: str | None = None
                           ) -> list[x509.UnrecognizedExtension]:
    """AMD VCEK/VLEK extensions: structVersion, productName, SPLs, hwID (VCEK) or csp_id (VLEK)."""
    name = VCEK_PRODUCT_NAME[product] if signer == "vcek" else product
    exts = [_ext("1", der.integer(1)), _ext("2", der.ia5_string(name))]
    if product == "Turin":
        exts.append(_ext("3.9", der.integer(tcb.fmc or 0)))
    exts += [_ext("3.1", der.integer(tcb.bootloader)), _ext("3.2", der.integer(tcb.tee))]
    reserved = (5, 6, 7) if product == "Turin" else (4, 5, 6, 7)
    exts += [_ext(f"3.{n}", der.integer(0)) for n in reserved]
    exts += [_ext("3.3", der.integer(tcb.snp)), _ext("3.8", der.integer(tcb.microcode))]
    if signer == "vcek":
        exts.append(_ext("4", hw_id(product, chip_id or bytes(64))))
    else:
        exts.append(_ext("5", der.ia5_string(csp_id or "CN=veil-emulated-csp")))
    return exts
