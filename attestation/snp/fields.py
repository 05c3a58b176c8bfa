"""Decoders for the bit fields of an SNP report: POLICY, PLATFORM_INFO, SIGNER_INFO, TCB_VERSION.

Pure functions of integers; the byte layout lives in `abi`. TCB_VERSION is
product-specific (SEV-SNP ABI spec; virtee/sev `TcbVersion`): Milan and Genoa
put the boot loader SPL in byte 0, Turin puts the FMC SPL there and shifts the
others up by one.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCTS = ("Milan", "Genoa", "Turin")

SIGNING_KEYS = {0: "vcek", 1: "vlek", 7: "none"}


@dataclass(frozen=True, slots=True)
class GuestPolicy:
    """POLICY (u64): what the guest owner allowed at launch."""

    raw: int
    abi_minor: int
    abi_major: int
    smt: bool
    migrate_ma: bool
    debug: bool
    single_socket: bool
    cxl_allow: bool
    mem_aes_256_xts: bool
    rapl_dis: bool
    ciphertext_hiding: bool
    page_swap_disable: bool


def _bit(value: int, n: int) -> bool:
    return bool((value >> n) & 1)


def decode_policy(raw: int) -> GuestPolicy:
    return GuestPolicy(
        raw=raw, abi_minor=raw & 0xFF, abi_major=(raw >> 8) & 0xFF,
        smt=_bit(raw, 16), migrate_ma=_bit(raw, 18), debug=_bit(raw, 19),
        single_socket=_bit(raw, 20), cxl_allow=_bit(raw, 21), mem_aes_256_xts=_bit(raw, 22),
        rapl_dis=_bit(raw, 23), ciphertext_hiding=_bit(raw, 24), page_swap_disable=_bit(raw, 25),
    )


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """PLATFORM_INFO (u64): platform state when the report was produced."""

    raw: int
    smt_enabled: bool
    tsme_enabled: bool
    ecc_enabled: bool
    rapl_disabled: bool
    ciphertext_hiding_enabled: bool
    alias_check_complete: bool
    tio_enabled: bool


def decode_platform_info(raw: int) -> PlatformInfo:
    return PlatformInfo(
        raw=raw, smt_enabled=_bit(raw, 0), tsme_enabled=_bit(raw, 1), ecc_enabled=_bit(raw, 2),
        rapl_disabled=_bit(raw, 3), ciphertext_hiding_enabled=_bit(raw, 4),
        alias_check_complete=_bit(raw, 5), tio_enabled=_bit(raw, 7),
    )


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """SIGNER_INFO (u32): which key signed the report and whether CHIP_ID is masked."""

    raw: int
    author_key_en: bool
    mask_chip_key: bool
    signing_key: str        # "vcek", "vlek" or "none" (unsigned)


def decode_signer_info(raw: int) -> SignerInfo:
    """Decode SIGNER_INFO; the caller has checked that SIGNING_KEY is 0, 1 or 7."""
    return SignerInfo(raw=raw, author_key_en=_bit(raw, 0), mask_chip_key=_bit(raw, 1),
                      signing_key=SIGNING_KEYS[(raw >> 2) & 0x7])


@dataclass(frozen=True, slots=True)
class TcbParts:
    """A decoded TCB_VERSION. `fmc` is None before Turin; `reserved` holds the unnamed SPL bytes."""

    raw: int
    product: str | None
    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None
    reserved: tuple[int, ...]

    @property
    def hex(self) -> str:
        return self.raw.to_bytes(8, "little").hex()


def decode_tcb(raw: int, product: str | None) -> TcbParts:
    """Decode TCB_VERSION with the product's layout (Milan/Genoa layout when unknown)."""
    b = raw.to_bytes(8, "little")
    if product == "Turin":
        return TcbParts(raw=raw, product=product, fmc=b[0], bootloader=b[1], tee=b[2], snp=b[3],
                        microcode=b[7], reserved=(b[4], b[5], b[6]))
    return TcbParts(raw=raw, product=product, fmc=None, bootloader=b[0], tee=b[1], snp=b[6],
                    microcode=b[7], reserved=(b[2], b[3], b[4], b[5]))


def product_from_cpuid(family: int, model: int) -> str | None:
    """The product of a v3+ report's combined CPUID family/model (virtee/sev `identify_cpu`)."""
    if family == 0x19:
        if model <= 0x0F:
            return "Milan"
        if 0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF:
            return "Genoa"
    if family == 0x1A and model <= 0x11:
        return "Turin"
    return None


def product_from_name(product_name: str) -> str | None:
    """The product of a VCEK/VLEK productName ("Milan-B0" → "Milan"); None if unknown."""
    base = product_name.split("-", 1)[0]
    return base if base in PRODUCTS else None
