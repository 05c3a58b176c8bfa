"""Verify an SNP attestation report against AMD's pinned roots (AMD SEV-SNP Firmware ABI spec 56860; VCEK/VLEK spec 57230).

AMD publishes no TCB-status service like Intel's: a report whose chain,
binding, TCB and signature checks pass is reported `TcbStatus.UP_TO_DATE`,
and release policies judge the TCB numbers themselves (minimum REPORTED_TCB,
firmware version). Debug guests are not rejected here: the claims say
`debug=True` and `attestation.verify` applies `allow_debug`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ..anchors import Anchor
from ..claims import AnchorRef, Claims, CollateralWindow, TcbStatus
from ..collateral import SnpTcbParts
from ..errors import CollateralError, VerificationError
from ..options import VerifyOptions
from ..x509util import load_certificates, raw_ecdsa_to_der
from . import chain as chains
from .abi import Report
from .fields import TcbParts, decode_tcb, product_from_name
from .kds import EndorsementExtensions, load_endorsement, parse_extensions

LEAF_CN = {"vcek": "SEV-VCEK", "vlek": "SEV-VLEK"}


def clear_caches() -> None:
    """Forget cached chain links, CRL signatures, certificate extensions and loaded certificates."""
    chains.clear_caches()
    _extensions.cache_clear()
    _load_blob.cache_clear()
    _anchor_ref.cache_clear()


@functools.lru_cache(maxsize=64)
def _anchor_ref(anchor: Anchor) -> AnchorRef:
    return anchor.ref()


@functools.lru_cache(maxsize=1024)
def _extensions(cert_der: bytes) -> EndorsementExtensions:
    return parse_extensions(x509.load_der_x509_certificate(cert_der))


@functools.lru_cache(maxsize=1024)
def _load_blob(blob: bytes) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(load_certificates(blob))       # names checked there: a malformed one fails here, not mid-chain
    except ValueError:
        return ()          # not a certificate: ignored, like any other unrelated attachment


def verify_report(report: Report, opts: VerifyOptions, *,
                  supplied_certificates: Sequence[bytes] = ()) -> Claims:
    """Verify a parsed report and return its claims.

    Steps (spec §9; marked below):
      1. structure — done by `abi.parse_report` (sizes, version, MBZ, POLICY bit 17, …);
      2. signer kind (VCEK/VLEK; unsigned is rejected) and product (CPUID for v3+,
         the endorsement key's productName for v2);
      3. endorsement key certificate (supplied with the evidence or from opts.collateral),
         chained to the pinned ASK/ASVK and ARK of opts.anchors, RSA-PSS SHA-384, every
         certificate valid at opts.at; CRL of the ARK when opts.check_revocation;
      4. binding: productName consistent, CHIP_ID == hwID (VCEK, unless masked),
         csp_id present and no hwID (VLEK);
      5. the certificate's TCB SPLs equal REPORTED_TCB;
      6. ECDSA P-384/SHA-384 signature over bytes 0x000–0x29F;
      7. claims.

    Raises:
        VerificationError: `check` names the failed step (snp.unsigned, snp.product_mismatch,
            snp.vcek_chain, snp.cert_expired, snp.revoked, snp.tcb_mismatch, …).
        CollateralError: the endorsement key or (with revocation checks) the CRL is missing.
        ParseError: a certificate's AMD extensions are malformed.
    """
    # (2) signer kind and product
    signer = _signer(report)
    supplied = _supplied(supplied_certificates, report)
    # (3) endorsement key certificate, product, chain, validity, revocation
    leaf, product = _endorsement(report, signer, supplied, opts)
    ext = _extensions(chains.der(leaf))
    chain = chains.build_chain(leaf, product=product, signer=signer, anchors=opts.anchors)
    _compare_supplied(chain, supplied, product)
    window = chains.check_chain_validity(chain, opts.at)
    if opts.check_revocation:
        window = _intersect(window, chains.check_crl(chain, opts.collateral.snp_crl(product, signer),
                                                     opts.at))
    # (4) binding of the key to the chip or the cloud provider
    _check_binding(report, ext, product, signer)
    # (5) the key was derived for REPORTED_TCB
    check_tcb(decode_tcb(report.reported_tcb, product), ext)
    # (6) report signature
    verify_report_signature(report, leaf)
    # (7) claims
    return _claims(report, opts, chain, ext, product, window)


# --------------------------------------------------------------------------- (2)

def _signer(report: Report) -> str:
    kind = report.signer_info.signing_key
    if kind == "none":
        raise VerificationError("snp.unsigned", "the report is not signed (SIGNING_KEY 7)",
                                expected="VCEK or VLEK", actual="none")
    return kind


def report_product(report: Report) -> str | None:
    """The product named by CPUID (v3+). Raises snp.product_unknown for an unknown v3+ CPU."""
    if report.version < 3:
        return None
    product = report.product
    if product is None:
        raise VerificationError(
            "snp.product_unknown", "CPUID family/model is not a known SEV-SNP product",
            expected="Milan, Genoa or Turin",
            actual=f"family 0x{report.cpuid_fam_id:02X} model 0x{report.cpuid_mod_id:02X}")
    return product


def _v2_candidates(report: Report) -> tuple[str, ...]:
    """Products to ask collateral for when a v2 report names none (virtee/sev's heuristic)."""
    if any(report.chip_id[:8]) and not any(report.chip_id[8:]):
        return ("Turin",)
    return ("Milan", "Genoa")


# --------------------------------------------------------------------------- (3)

def _supplied(blobs: Sequence[bytes], report: Report) -> tuple[x509.Certificate, ...]:
    certs: list[x509.Certificate] = []
    for blob in (*blobs, *report.certificates.values()):
        certs.extend(_load_blob(bytes(blob)))
    return tuple(certs)


def _endorsement(report: Report, signer: str, supplied: Sequence[x509.Certificate],
                 opts: VerifyOptions) -> tuple[x509.Certificate, str]:
    """The VCEK/VLEK (supplied, else from collateral) and the product it establishes."""
    cpuid_product = report_product(report)
    leaf = next((c for c in supplied if chains.cn(c) == LEAF_CN[signer]), None)
    if leaf is None:
        leaf = _fetch_endorsement(report, signer, cpuid_product, opts)
    if chains.cn(leaf) != LEAF_CN[signer]:
        raise VerificationError(f"snp.{signer}_chain", "the endorsement key certificate has the "
                                "wrong subject", expected=LEAF_CN[signer], actual=chains.cn(leaf))
    name = _extensions(chains.der(leaf)).product_name
    cert_product = product_from_name(name)
    if cert_product is None:
        raise VerificationError("snp.product_unknown", f"unknown productName {name!r}",
                                expected="Milan, Genoa or Turin", actual=name)
    if cpuid_product is not None and cert_product != cpuid_product:
        raise VerificationError("snp.product_mismatch",
                                f"the {signer.upper()} is for {name}, the report's CPUID for "
                                f"{cpuid_product}", expected=cpuid_product, actual=name)
    return leaf, cert_product


def _fetch_endorsement(report: Report, signer: str, product: str | None,
                       opts: VerifyOptions) -> x509.Certificate:
    first_error: CollateralError | None = None
    for candidate in (product,) if product else _v2_candidates(report):
        parts = decode_tcb(report.reported_tcb, candidate)
        tcb = SnpTcbParts(bootloader=parts.bootloader, tee=parts.tee, snp=parts.snp,
                          microcode=parts.microcode, fmc=parts.fmc)
        try:
            blob = opts.collateral.snp_endorsement(candidate, signer, report.chip_id,  # type: ignore[arg-type]
                                                   tcb)
        except CollateralError as exc:
            first_error = first_error or exc
            continue
        return load_endorsement(blob)
    assert first_error is not None
    raise first_error


def _compare_supplied(chain: chains.Chain, supplied: Sequence[x509.Certificate],
                      product: str) -> None:
    """ASK/ASVK/ARK that came with the evidence must be the pinned ones (never trusted)."""
    pinned = {chains.cn(c): c for c in (*chain.anchor.intermediates, chain.ark)}
    for cert in supplied:
        cn = chains.cn(cert)
        if cn in pinned and cn.endswith(product) and chains.der(cert) != chains.der(pinned[cn]):
            raise VerificationError("snp.supplied_chain_mismatch",
                                    f"the {cn} supplied with the evidence is not the pinned one",
                                    expected=chains.der(pinned[cn]).hex()[:32] + "…",
                                    actual=chains.der(cert).hex()[:32] + "…")


def _intersect(window: tuple[datetime, datetime],
               other: tuple[datetime, datetime | None]) -> tuple[datetime, datetime]:
    end = window[1] if other[1] is None else min(window[1], other[1])
    return max(window[0], other[0]), end


# --------------------------------------------------------------------------- (4), (5), (6)

def _check_binding(report: Report, ext: EndorsementExtensions, product: str, signer: str) -> None:
    if signer == "vlek":
        if not ext.csp_id:
            raise VerificationError("snp.vlek_csp_id", "the VLEK has no csp_id extension",
                                    expected="csp_id", actual="absent")
        if ext.hwid is not None:
            raise VerificationError("snp.vlek_hwid", "a VLEK must not carry a hwID",
                                    expected="no hwID", actual=ext.hwid.hex())
        return
    if ext.hwid is None:
        raise VerificationError("snp.chip_id_mismatch", "the VCEK has no hwID extension",
                                expected=report.chip_id.hex(), actual="absent")
    if report.chip_id_masked:
        return
    chip = report.chip_id[:8] if product == "Turin" else report.chip_id
    if ext.hwid != chip:
        raise VerificationError("snp.chip_id_mismatch", "CHIP_ID is not the VCEK's hwID",
                                expected=ext.hwid.hex(), actual=chip.hex())


def _tcb_text(bl: int, tee: int, snp: int, ucode: int, fmc: int | None) -> str:
    text = f"bl {bl}, tee {tee}, snp {snp}, ucode {ucode}"
    return text if fmc is None else f"fmc {fmc}, {text}"


def check_tcb(reported: TcbParts, ext: EndorsementExtensions) -> None:
    """Every TCB SPL in the certificate equals REPORTED_TCB (Turin: fmcSPL too)."""
    cert = (ext.bl_spl, ext.tee_spl, ext.snp_spl, ext.ucode_spl, ext.fmc_spl)
    seen = (reported.bootloader, reported.tee, reported.snp, reported.microcode, reported.fmc)
    same = cert == seen
    if reported.product != "Turin":    # Milan/Genoa: spl4–7 are TCB bytes 2–5
        same = same and all(c is None or c == r for c, r in zip(ext.reserved_spls, reported.reserved))
    if not same:
        raise VerificationError("snp.tcb_mismatch",
                                "the endorsement key was not derived for REPORTED_TCB",
                                expected=_tcb_text(*cert), actual=_tcb_text(*seen))


def verify_report_signature(report: Report, leaf: x509.Certificate) -> None:
    """(6) ECDSA P-384/SHA-384 over bytes 0x000–0x29F; R and S are 72-byte little-endian."""
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise VerificationError("snp.report_signature", "the endorsement key is not ECDSA P-384",
                                expected="ECDSA P-384", actual=type(key).__name__)
    signature = raw_ecdsa_to_der(report.signature_r + report.signature_s, byteorder="little")
    try:
        key.verify(signature, report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise VerificationError("snp.report_signature",
                                f"the report signature does not verify under the "
                                f"{report.signer_info.signing_key.upper()}") from None


# --------------------------------------------------------------------------- (7)

def _warnings(report: Report, opts: VerifyOptions) -> tuple[str, ...]:
    found = []
    if not opts.check_revocation:
        found.append("snp.revocation_not_checked")
    if report.policy.migrate_ma:
        found.append("snp.migrate_ma_allowed")
    if report.vmpl > 0:
        found.append("snp.vmpl_nonzero")
    if report.chip_id_masked:
        found.append("snp.chip_id_masked")
    if report.version < 3:
        found.append("snp.product_from_certificate")
    return tuple(found)


def _claims(report: Report, opts: VerifyOptions, chain: chains.Chain, ext: EndorsementExtensions,
            product: str, window: tuple[datetime, datetime]) -> Claims:
    from .claims import snp_claims
    return Claims(
        tee="snp", anchor=_anchor_ref(chain.anchor), tcb_status=TcbStatus.UP_TO_DATE,
        debug=report.policy.debug, report_data=report.report_data.hex(),
        collateral_window=CollateralWindow(not_before=window[0], not_after=window[1]),
        verified_at=opts.at, warnings=_warnings(report, opts),
        snp=snp_claims(report, product=product, endorsement=chain.leaf, extensions=ext),
    )
