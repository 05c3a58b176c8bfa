"""Verify a TDX quote against Intel's roots and PCS collateral, producing Claims.

The procedure is Intel's Quote Verification Library's (its step numbers are
given in brackets), in an order that checks the PCK chain before its FMSPC is
used to look collateral up. Every failure raises VerificationError with a
stable check code; malformed bytes raise ParseError; missing collateral raises
CollateralError from the source. A debug TD is *not* an error here: its claims
say `debug=True` and attestation.verify applies the allow-debug rule.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ..anchors import Anchor
from ..claims import Claims
from ..collateral import TdxCollateral
from ..errors import VerificationError
from ..options import VerifyOptions
from ..x509util import check_validity, raw_ecdsa_to_der
from . import tcb as tcbmod
from . import trust
from .abi import Quote
from .pck import PckChain
from .pcs import QeIdentity, TcbInfo, parse_qe_identity, parse_tcb_info

__all__ = ["verify_quote", "clear_caches"]

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_ROOT_CRL = "Intel root CA CRL"
_PCK_CRL = "Intel PCK CRL"
# Reserved TD_ATTRIBUTES bits: 1-27, 29, 32-62 (bits 0 DEBUG, 28 SEPT_VE_DISABLE, 30 PKS,
# 31 KL and 63 PERFMON are defined).
_TD_ATTR_RESERVED = 0x7FFFFFFF00000000 | 0x0FFFFFFE | (1 << 29)

clear_caches = trust.clear_caches


def verify_quote(quote: Quote, opts: VerifyOptions) -> Claims:
    """Verify a parsed TDX quote; return its claims.

    Steps:
      (1) [§7.1]  the quote is parsed; read the PCK chain and its SGX extension.
      (2) [§7.4]  PCK leaf ← PCK CA ← root, root a configured Intel anchor, all valid at `at`.
      (3) [§7.2]  collateral for (FMSPC, CA); TCB info: signing chain, signature, dates.
      (4) [§7.3]  QE identity: signing chain, signature, dates.
      (5) [§7.5]  CRLs (unless opts.check_revocation is False): root CA CRL and PCK CRL
                  signed by their CAs and current; PCK CA, TCB signer and PCK leaf not revoked.
      (6) [§7.6]  QE report signature by the PCK leaf key.
      (7) [§7.7]  QE REPORTDATA binds the attestation key and QE auth data.
      (8) [§7.8]  QE identity policy (MRSIGNER, ISVPRODID, MISCSELECT, ATTRIBUTES, not debug).
      (9) [§7.9]  quote signature by the attestation key over header ‖ body.
      (10) [§7.10] PCK FMSPC and PCE-ID equal the TCB info's.
      (11) [§7.11] TDX module identity: MRSIGNERSEAM and SEAM_ATTRIBUTES.
      (12) [§7.12, §8] TCB level, module and QE status, convergence (revoked / unknown raise).
      (13) [§7.13] TD attributes: DEBUG is reported, unusual settings become warnings.
      (14) [§7.14] claims.

    Raises:
        VerificationError: `check` names the failed step, e.g. "tdx.quote_signature".
        ParseError: the PCK chain or a collateral document is malformed.
        CollateralError: the source has no collateral for this platform.
    """
    at = _aware(opts.at)
    qe_cert = quote.signature.qe_cert
    # (1) PCK chain and SGX extension (cached per PEM)
    chain = trust.pck_chain(qe_cert.pck_chain_pem, opts.anchors)
    # (2) PCK chain to a configured anchor, valid now
    anchor = _verify_pck_chain(chain, opts, at)
    # (3) TCB info
    collateral = opts.collateral.tdx(chain.extension.fmspc.hex(), chain.ca)
    info, info_signer = _signed(collateral.tcb_info, collateral.tcb_info_signature,
                                collateral.tcb_info_issuer_chain, opts, at, parse_tcb_info,
                                "tcb_info", "TCB info")
    # (4) QE identity
    qe_id, qe_signer = _signed(collateral.qe_identity, collateral.qe_identity_signature,
                               collateral.qe_identity_issuer_chain, opts, at, parse_qe_identity,
                               "qe_identity", "QE identity")
    windows = [(info.issue_date, info.next_update), (qe_id.issue_date, qe_id.next_update)]
    # (5) revocation
    if opts.check_revocation:
        with trust.guard("tdx.crl"):
            windows += _check_crls(collateral, chain, anchor, (info_signer, qe_signer), opts, at)
    # (6) QE report signature
    trust.report_signed(qe_cert.qe_report_bytes, qe_cert.qe_report_signature, chain.leaf,
                        check="tdx.qe_report_signature", what="QE report signature (PCK key)")
    # (7) attestation key binding
    _check_binding(quote)
    # (8) QE identity policy
    _check_qe_identity(quote, qe_id)
    # (9) quote signature
    _verify_quote_signature(quote)
    # (10) platform match
    _check_platform(chain, info)
    # (11) TDX module identity
    _check_module_identity(quote, info)
    # (12) TCB status
    result = tcbmod.evaluate(info, qe_id, tcbmod.PlatformTcb(
        sgx_components=chain.extension.tcb_components, pce_svn=chain.extension.pce_svn,
        tee_tcb_svn=quote.body.tee_tcb_svn, tee_tcb_svn2=quote.body.tee_tcb_svn2,
        qe_isvsvn=qe_cert.qe_report.isv_svn))
    # (13) TD attributes, (14) claims
    return _claims(quote, chain, info, anchor, result, windows, at)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise VerificationError("tdx.clock", "VerifyOptions.at must be a timezone-aware time")
    return at


def _verify_pck_chain(chain: PckChain, opts: VerifyOptions, at: datetime) -> Anchor:
    anchor, _ = trust.root_anchor((chain.leaf, chain.intermediate, chain.root), opts.anchors,
                                  check="tdx.pck_chain", what="PCK certificate chain", exact=True)
    trust.issued_by(chain.intermediate, anchor.certificate, check="tdx.pck_chain", anchor=anchor)
    trust.issued_by(chain.leaf, chain.intermediate, check="tdx.pck_chain", anchor=anchor)
    with trust.guard("tdx.pck_chain"):
        for cert in (anchor.certificate, chain.intermediate, chain.leaf):
            check_validity(cert, at, check="tdx.pck_chain")
    return anchor


def _signed(data: bytes, signature: bytes, issuer_chain: bytes, opts: VerifyOptions, at: datetime,
            parse, item: str, what: str):
    """Steps (3)/(4): a signed collateral document whose signer chains to an anchor."""
    certs = trust.cert_chain(issuer_chain, f"{what} issuer chain", opts.anchors)
    anchor, below = trust.root_anchor(certs, opts.anchors, check=f"tdx.{item}_chain",
                                      what=f"{what} issuer chain")
    signer = _pick_signer(below, anchor, at, f"tdx.{item}_chain")
    doc = trust.signed_document(data, signature, signer, parse, f"tdx.{item}_signature", what, anchor)
    if not (doc.issue_date <= at <= doc.next_update):
        raise VerificationError(f"tdx.{item}_expired", f"{what} is not current at {at.isoformat()}",
                                expected=f"{doc.issue_date.isoformat()} .. {doc.next_update.isoformat()}",
                                actual=at.isoformat())
    return doc, signer


def _pick_signer(candidates: tuple[x509.Certificate, ...], anchor: Anchor, at: datetime,
                 check: str) -> x509.Certificate:
    """The TCB Signing certificate valid at `at` (it was re-issued with the same key and serial)."""
    first_error: VerificationError | None = None
    for cert in candidates:
        if trust.same(cert, anchor.certificate):
            continue
        try:
            trust.issued_by(cert, anchor.certificate, check=check, anchor=anchor)
            with trust.guard(check):
                check_validity(cert, at, check=check)
                check_validity(anchor.certificate, at, check=check)
            return cert
        except VerificationError as exc:
            first_error = first_error or exc
    raise first_error or VerificationError(check, "the issuer chain has no signing certificate")


def _crl_current(crl: x509.CertificateRevocationList, at: datetime, check: str, what: str):
    start, end = crl.last_update_utc, crl.next_update_utc
    if end is None or not (start <= at <= end):
        raise VerificationError(check, f"{what} is not current at {at.isoformat()}",
                                expected=f"{start.isoformat()} .. {end.isoformat() if end else '?'}",
                                actual=at.isoformat())
    return start, end


def _check_crls(col: TdxCollateral, chain: PckChain, anchor: Anchor,
                signers: tuple[x509.Certificate, ...], opts: VerifyOptions, at: datetime):
    """Step (5): both CRLs verified and current; intermediates and PCK leaf not revoked."""
    root_crl = trust.load_crl(col.root_ca_crl, _ROOT_CRL)
    trust.crl_signed_by(col.root_ca_crl, root_crl, anchor.certificate, check="tdx.root_ca_crl",
                        what="root CA CRL", anchor=anchor)
    root_window = _crl_current(root_crl, at, "tdx.root_ca_crl", "root CA CRL")
    crl_ca, crl_anchor = _pck_crl_issuer(col, chain, opts, at)
    for cert, code in ((chain.intermediate, "tdx.pck_revoked"), (crl_ca, "tdx.pck_revoked"),
                       *((s, "tdx.tcb_signing_revoked") for s in signers)):
        _not_revoked(col.root_ca_crl, _ROOT_CRL, cert, code)
    pck_crl = trust.load_crl(col.pck_crl, _PCK_CRL)
    trust.crl_signed_by(col.pck_crl, pck_crl, crl_ca, check="tdx.pck_crl", what="PCK CRL",
                        anchor=crl_anchor)
    pck_window = _crl_current(pck_crl, at, "tdx.pck_crl", "PCK CRL")
    _not_revoked(col.pck_crl, _PCK_CRL, chain.leaf, "tdx.pck_revoked")
    return [root_window, pck_window]


def _pck_crl_issuer(col: TdxCollateral, chain: PckChain, opts: VerifyOptions,
                    at: datetime) -> tuple[x509.Certificate, Anchor]:
    certs = trust.cert_chain(col.pck_crl_issuer_chain, "PCK CRL issuer chain", opts.anchors)
    anchor, below = trust.root_anchor(certs, opts.anchors, check="tdx.pck_crl",
                                      what="PCK CRL issuer chain")
    if not below or (not trust.same(below[0], chain.intermediate)
                      and below[0].subject != chain.leaf.issuer):
        raise VerificationError("tdx.pck_crl", "the PCK CRL issuer is not the PCK leaf's issuer",
                                expected=chain.leaf.issuer.rfc4514_string(),
                                actual=below[0].subject.rfc4514_string() if below else "no CA")
    trust.issued_by(below[0], anchor.certificate, check="tdx.pck_crl", anchor=anchor)
    with trust.guard("tdx.pck_crl"):
        check_validity(below[0], at, check="tdx.pck_crl")
    return below[0], anchor


def _not_revoked(crl_der: bytes, structure: str, cert: x509.Certificate, check: str) -> None:
    if trust.is_revoked(crl_der, structure, cert.serial_number):
        raise VerificationError(check, f"'{cert.subject.rfc4514_string()}' is revoked",
                                expected="not listed in the CRL", actual=f"serial {cert.serial_number:x}")


def _verify_raw(key, signature: bytes, data: bytes, *, check: str, what: str) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationError(check, f"{what}: the signing key is not an EC key")
    try:
        key.verify(raw_ecdsa_to_der(signature), data, _ECDSA_SHA256)
    except InvalidSignature:
        raise VerificationError(check, f"{what} does not verify") from None


def _check_binding(quote: Quote) -> None:
    qe_cert = quote.signature.qe_cert
    digest = hashlib.sha256(quote.signature.attestation_key + qe_cert.qe_auth_data).digest()
    report_data = qe_cert.qe_report.report_data
    if report_data[:32] != digest or any(report_data[32:]):
        raise VerificationError(
            "tdx.qe_report_binding",
            "QE REPORTDATA is not SHA-256(attestation key ‖ QE auth data) followed by zeros",
            expected=digest.hex() + "00" * 32, actual=report_data.hex())


def _masked_equal(value: bytes, mask: bytes, expected: bytes) -> bool:
    return bytes(v & m for v, m in zip(value, mask)) == expected


def _check_qe_identity(quote: Quote, ident: QeIdentity) -> None:
    report = quote.signature.qe_cert.qe_report
    code = "tdx.qe_identity_mismatch"
    if report.mr_signer != ident.mrsigner:
        raise VerificationError(code, "QE MRSIGNER differs from the QE identity",
                                expected=ident.mrsigner.hex(), actual=report.mr_signer.hex())
    if report.isv_prod_id != ident.isvprodid:
        raise VerificationError(code, "QE ISVPRODID differs from the QE identity",
                                expected=str(ident.isvprodid), actual=str(report.isv_prod_id))
    if report.misc_select & ident.miscselect_mask != ident.miscselect:
        raise VerificationError(code, "QE MISCSELECT (masked) differs from the QE identity",
                                expected=f"{ident.miscselect:08x}", actual=f"{report.misc_select:08x}")
    if not _masked_equal(report.attributes, ident.attributes_mask, ident.attributes):
        raise VerificationError(code, "QE ATTRIBUTES (masked) differ from the QE identity",
                                expected=ident.attributes.hex(), actual=report.attributes.hex())
    if report.attributes[0] & 0x02:
        raise VerificationError(code, "the Quoting Enclave is a debug enclave",
                                expected="QE debug off", actual="QE debug on")


def _verify_quote_signature(quote: Quote) -> None:
    sig = quote.signature
    key = trust.p256_point(sig.attestation_key)
    if key is None:
        raise VerificationError("tdx.quote_signature", "the attestation key is not a point on P-256")
    _verify_raw(key, sig.quote_signature, quote.signed_bytes, check="tdx.quote_signature",
                what="quote signature (attestation key)")


def _check_platform(chain: PckChain, info: TcbInfo) -> None:
    ext = chain.extension
    if ext.fmspc != info.fmspc:
        raise VerificationError("tdx.fmspc_mismatch", "the TCB info is for another platform",
                                expected=ext.fmspc.hex(), actual=info.fmspc.hex())
    if ext.pce_id != info.pce_id:
        raise VerificationError("tdx.pce_id_mismatch", "the TCB info is for another PCE",
                                expected=ext.pce_id.hex(), actual=info.pce_id.hex())


def _check_module_identity(quote: Quote, info: TcbInfo) -> None:
    body = quote.body
    expected = info.tdx_module
    if body.tee_tcb_svn[1] > 0:
        found = info.module_identity(body.tee_tcb_svn[1])
        if found is None:
            raise VerificationError(
                "tdx.module_identity", f"the TCB info has no module identity TDX_{body.tee_tcb_svn[1]:02X}",
                expected=", ".join(m.id for m in info.module_identities) or "none",
                actual=f"TDX_{body.tee_tcb_svn[1]:02X}")
        expected = found
    if body.mrsignerseam != expected.mrsigner:
        raise VerificationError("tdx.module_mrsigner", "MRSIGNERSEAM is not the expected TDX module signer",
                                expected=expected.mrsigner.hex(), actual=body.mrsignerseam.hex())
    mask = expected.attributes_mask
    if not _masked_equal(body.seam_attributes, mask, bytes(a & m for a, m in zip(expected.attributes, mask))):
        raise VerificationError("tdx.module_attributes", "SEAM_ATTRIBUTES (masked) differ from the TCB info",
                                expected=expected.attributes.hex(), actual=body.seam_attributes.hex())


def _td_attributes(raw: bytes) -> tuple[dict, list[str]]:
    """The TdAttributes fields, and the warnings they call for."""
    value = int.from_bytes(raw, "little")
    attrs = {"raw": raw.hex(), "value": value, "debug": bool(value & 1),
             "sept_ve_disable": bool(value >> 28 & 1), "pks": bool(value >> 30 & 1),
             "kl": bool(value >> 31 & 1), "perfmon": bool(value >> 63 & 1)}
    warnings = []
    if not attrs["sept_ve_disable"]:
        warnings.append("tdx.sept_ve_disable_off: SEPT_VE_DISABLE is off (as on Azure TDs); left to policy")
    if value & _TD_ATTR_RESERVED:
        warnings.append(f"tdx.td_attributes_reserved: reserved TD_ATTRIBUTES bits set "
                        f"(0x{value & _TD_ATTR_RESERVED:016x})")
    return attrs, warnings


def _claims(quote: Quote, chain: PckChain, info: TcbInfo, anchor: Anchor,
            result: tcbmod.TcbResult, windows: list, at: datetime) -> Claims:
    """The claims, validated in one pass (nested dicts: one call into pydantic-core)."""
    body, ext = quote.body, chain.extension
    attrs, warnings = _td_attributes(body.td_attributes)
    report_data = body.report_data.hex()
    tdx = {
        "quote_version": quote.version, "body_type": quote.body_type,
        "qe_vendor_id": quote.header.qe_vendor_id.hex(), "tee_tcb_svn": body.tee_tcb_svn.hex(),
        "tee_tcb_svn2": body.tee_tcb_svn2.hex() if body.tee_tcb_svn2 is not None else None,
        "mrseam": body.mrseam.hex(), "mrsignerseam": body.mrsignerseam.hex(),
        "seam_attributes": body.seam_attributes.hex(), "td_attributes": attrs, "xfam": body.xfam.hex(),
        "mrtd": body.mrtd.hex(), "mrconfigid": body.mrconfigid.hex(), "mrowner": body.mrowner.hex(),
        "mrownerconfig": body.mrownerconfig.hex(), "rtmr0": body.rtmr0.hex(), "rtmr1": body.rtmr1.hex(),
        "rtmr2": body.rtmr2.hex(), "rtmr3": body.rtmr3.hex(), "report_data": report_data,
        "mrservicetd": body.mrservicetd.hex() if body.mrservicetd is not None else None,
        "fmspc": ext.fmspc.hex(), "pce_id": ext.pce_id.hex(), "pce_svn": ext.pce_svn,
        "cpu_svn": ext.cpu_svn.hex(), "sgx_tcb_components": ext.tcb_components, "sgx_type": ext.sgx_type,
        "ppid": ext.ppid.hex(), "qe_isvsvn": quote.signature.qe_cert.qe_report.isv_svn,
        "qe_tcb_status": result.qe_status, "platform_tcb_status": result.platform_status,
        "platform_tcb_date": result.tcb_date, "module_tcb_status": result.module_status,
        "tcb_evaluation_data_number": info.tcb_evaluation_data_number}
    window = {"not_before": max(w[0] for w in windows), "not_after": min(w[1] for w in windows)}
    return Claims.model_validate({
        "tee": "tdx", "anchor": trust.anchor_ref(anchor), "tcb_status": result.status,
        "advisory_ids": result.advisory_ids, "debug": attrs["debug"], "report_data": report_data,
        "collateral_window": window, "verified_at": at, "warnings": tuple(warnings), "tdx": tdx})
