"""Collateral: what a verifier needs besides the evidence and the anchors.

Intel TDX: the nine items of Intel's quote-verification collateral (TCB info,
QE identity, their signatures and issuer chains, PCK CRL and root CA CRL).
AMD SEV-SNP: the VCEK/VLEK for a chip and TCB, and the ARK-signed CRL.

A CollateralSource hands out raw, still-unverified bytes; verifiers check every
signature and validity window themselves. Sources: `StaticCollateral` (items
given directly, e.g. a dcap-qvl style JSON file), the offline bundle
(`collateral.bundle`) and the online vendor services with a cache
(`collateral.online`). Errors are CollateralError naming the exact item and how
to obtain it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from ..errors import AttestationError, CollateralError
from .chain import first_answer

PckCa = Literal["platform", "processor"]
SnpSigner = Literal["vcek", "vlek"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TdxCollateral:
    """Intel quote-verification collateral, as raw bytes exactly as Intel serves them.

    `tcb_info` and `qe_identity` are the exact bytes of the inner JSON objects
    that the signatures cover; signatures are raw r‖s (64 bytes); CRLs are DER;
    issuer chains are PEM.
    """

    pck_crl_issuer_chain: bytes
    root_ca_crl: bytes
    pck_crl: bytes
    tcb_info_issuer_chain: bytes
    tcb_info: bytes
    tcb_info_signature: bytes
    qe_identity_issuer_chain: bytes
    qe_identity: bytes
    qe_identity_signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SnpTcbParts:
    """TCB components used to address a VCEK at AMD's KDS."""

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None = None


@runtime_checkable
class CollateralSource(Protocol):
    """Where verifiers get collateral. Implementations may fetch, cache or read a bundle."""

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        """TDX collateral for a platform (FMSPC, lower-case hex) and PCK CA kind."""
        ...

    def snp_endorsement(self, product: str, signer: SnpSigner, chip_id: bytes,
                        tcb: SnpTcbParts) -> bytes:
        """DER VCEK (or VLEK) for this chip and reported TCB."""
        ...

    def snp_crl(self, product: str, signer: SnpSigner) -> bytes:
        """DER CRL signed by the product's ARK (VCEK or VLEK hierarchy)."""
        ...


def snp_hint(product: str, signer: str) -> str:
    return (f"run `veil attest collateral fetch --snp-product {product}` on a connected machine "
            f"and pass the bundle with --collateral, or supply the {signer.upper()} with --certs")


@dataclass(frozen=True, slots=True)
class StaticCollateral:
    """Collateral given directly: one TDX set and/or SNP certificates and CRLs.

    Used for dcap-qvl style JSON files and loose collateral files, for
    certificates passed on the command line, and by tests. Items that are
    absent raise CollateralError. Of several TDX sets, the first for the
    platform's FMSPC (and PCK CA, where both exist) is handed out.
    """

    tdx_sets: tuple[TdxCollateral, ...] = ()
    snp_endorsements: tuple[bytes, ...] = ()
    snp_crls: dict[tuple[str, str], bytes] = field(default_factory=dict)
    only_matching: bool = False     # True: no set for the FMSPC is "not provided", so a chain asks on

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        if not self.tdx_sets:
            raise CollateralError(
                f"TDX collateral for FMSPC {fmspc}", "not provided",
                hint="pass --collateral with an offline bundle or an Intel collateral JSON file, "
                     "or run `veil attest collateral fetch --fmspc " + fmspc + "` on a connected machine")
        matching = [s for s in self.tdx_sets if _is_for(s, fmspc)]
        if not matching and not self.only_matching:
            return self.tdx_sets[0]     # the verifier reports the FMSPC mismatch
        if not matching:
            raise CollateralError(f"TDX collateral for FMSPC {fmspc}", "not provided",
                                  hint="the collateral given is for FMSPC "
                                       + ", ".join(_fmspc_in(s) for s in self.tdx_sets))
        return next((s for s in matching if _pck_ca_is(s, ca)), matching[0])

    def snp_endorsement(self, product: str, signer: SnpSigner, chip_id: bytes,
                        tcb: SnpTcbParts) -> bytes:
        if not self.snp_endorsements:
            raise CollateralError(f"{signer.upper()} for {product} chip {chip_id[:8].hex()}…",
                                  "not provided", hint=snp_hint(product, signer))
        return self.snp_endorsements[0]

    def snp_crl(self, product: str, signer: SnpSigner) -> bytes:
        try:
            return self.snp_crls[(product, signer)]
        except KeyError:
            raise CollateralError(
                f"CRL for the AMD {product} {signer.upper()} hierarchy", "not provided",
                hint=f"run `veil attest collateral fetch --snp-product {product}` on a connected machine "
                     "and pass the bundle with --collateral, or drop --offline to fetch it from AMD KDS; "
                     "--no-revocation skips the check (not recommended)") from None


def _fmspc_in(c: TdxCollateral) -> str:
    try:
        value = json.loads(c.tcb_info).get("fmspc")
    except (ValueError, AttributeError):
        return "?"
    return value.lower() if isinstance(value, str) else "?"


def _is_for(c: TdxCollateral, fmspc: str) -> bool:
    """Whether a set is for this platform; one whose TCB info cannot be read is left to the verifier."""
    given = _fmspc_in(c)
    return given == "?" or given == fmspc.lower()


def _pck_ca_is(c: TdxCollateral, ca: PckCa) -> bool:
    from .intel import pck_crl_ca
    try:
        return pck_crl_ca(c.pck_crl) == ca
    except AttestationError:
        return False


@dataclass(frozen=True, slots=True)
class ChainedCollateral:
    """Ask each source in turn; the first that has the item wins."""

    sources: tuple[CollateralSource, ...]

    def _first(self, call):
        return first_answer(self.sources, call, "collateral")

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        return self._first(lambda s: s.tdx(fmspc, ca))

    def snp_endorsement(self, product, signer, chip_id, tcb) -> bytes:
        return self._first(lambda s: s.snp_endorsement(product, signer, chip_id, tcb))

    def snp_crl(self, product, signer) -> bytes:
        return self._first(lambda s: s.snp_crl(product, signer))
