"""How AMD SEV-SNP collateral is addressed: KDS paths and bundle keys.

The KDS (`https://kdsintf.amd.com`) serves, per product (Milan, Genoa, Turin):
`/vcek/v1/{product}/{hwid}?{tcb}` (VCEK, DER), `/{vcek|vlek}/v1/{product}/cert_chain`
(ASK/ASVK then ARK, PEM) and `/{vcek|vlek}/v1/{product}/crl` (DER, signed by
the ARK). Milan and Genoa address a VCEK by the 64-byte CHIP_ID and
`blSPL&teeSPL&snpSPL&ucodeSPL`; Turin by the first 8 bytes and `fmcSPL` first.
SPLs are plain decimal (go-sev-guest `%d`). The same strings key the items of
an offline bundle, so a bundle answers exactly what the KDS would.
"""

from __future__ import annotations

import re

from ..errors import CollateralError
from . import SnpSigner, SnpTcbParts, snp_hint

_PRODUCT = re.compile(r"^([A-Za-z]+)(?:-[A-Za-z0-9]+)?$")     # "Milan", "Milan-B0", "genoa"
SHORT_CHIP_ID_PRODUCTS = frozenset({"Turin"})


def kds_product(product: str) -> str:
    """KDS spelling of a product name: "milan", "Milan-B0" → "Milan"."""
    match = _PRODUCT.match(product.strip())
    if not match:
        raise CollateralError(f"AMD product {product!r}", "is not a product name such as Milan, Genoa "
                              "or Turin")
    return match.group(1).capitalize()


def kds_signer(signer: str) -> SnpSigner:
    if signer not in ("vcek", "vlek"):
        raise CollateralError(f"AMD signer {signer!r}", "must be 'vcek' or 'vlek'")
    return signer  # type: ignore[return-value]


def kds_chip_id(product: str, chip_id: bytes) -> str:
    """The hwID path segment: 64 bytes of CHIP_ID in hex, or the first 8 for Turin."""
    product = kds_product(product)
    size = 8 if product in SHORT_CHIP_ID_PRODUCTS else 64
    if len(chip_id) < size or (size == 64 and len(chip_id) != 64):
        raise CollateralError(f"VCEK for {product}", f"CHIP_ID is {len(chip_id)} bytes; expected {size}")
    if not any(chip_id[:size]):
        raise CollateralError(f"VCEK for {product}", "CHIP_ID is masked (all zero), so the KDS cannot "
                              "be asked for this chip's VCEK", hint=snp_hint(product, "vcek"))
    return chip_id[:size].hex()


def kds_tcb_query(product: str, tcb: SnpTcbParts) -> str:
    """The VCEK query string, e.g. "blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"."""
    parts = [("blSPL", tcb.bootloader), ("teeSPL", tcb.tee), ("snpSPL", tcb.snp),
             ("ucodeSPL", tcb.microcode)]
    if kds_product(product) in SHORT_CHIP_ID_PRODUCTS:
        if tcb.fmc is None:
            raise CollateralError(f"VCEK for {kds_product(product)}", "the TCB has no FMC SPL, which "
                                  "Turin VCEKs are addressed by")
        parts.insert(0, ("fmcSPL", tcb.fmc))
    return "&".join(f"{name}={int(value)}" for name, value in parts)


def vcek_path(product: str, chip_id: bytes, tcb: SnpTcbParts) -> str:
    product = kds_product(product)
    return f"/vcek/v1/{product}/{kds_chip_id(product, chip_id)}?{kds_tcb_query(product, tcb)}"


def cert_chain_path(product: str, signer: str) -> str:
    return f"/{kds_signer(signer)}/v1/{kds_product(product)}/cert_chain"


def crl_path(product: str, signer: str) -> str:
    return f"/{kds_signer(signer)}/v1/{kds_product(product)}/crl"


def endorsement_item(product: str, signer: str, chip_id: bytes | None, tcb: SnpTcbParts) -> str:
    """Human name of a VCEK/VLEK for error messages."""
    chip = f" chip {chip_id[:8].hex()}…" if chip_id else ""
    try:
        at = kds_tcb_query(product, tcb)
    except CollateralError:
        at = f"bl={tcb.bootloader} tee={tcb.tee} snp={tcb.snp} ucode={tcb.microcode} fmc={tcb.fmc}"
    return f"{signer.upper()} for {product}{chip} at TCB {at}"
