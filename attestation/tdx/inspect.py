"""A readable dump of a parsed TDX quote, for `veil attest inspect` (not a verification)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..errors import ParseError
from .abi import Quote, decode_td_attributes
from .pck import parse_pck_chain, split_pem_chain


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def describe(quote: Quote) -> dict[str, Any]:
    """Every field of the quote, bytes as lower-case hex, TD_ATTRIBUTES as named bits, and the PCK chain as
    certificate facts (subject, issuer, validity, fingerprint), never as PEM."""
    qe_cert = quote.signature.qe_cert
    body = _plain(quote.body) | {"td_attributes": decode_td_attributes(quote.body.td_attributes)}
    out: dict[str, Any] = {
        "header": _plain(quote.header),
        "body_type": quote.body_type,
        "body": body,
        "signature_data_len": quote.signature_data_len,
        "signature": {
            "quote_signature": quote.signature.quote_signature.hex(),
            "attestation_key": quote.signature.attestation_key.hex(),
            "cert_data_type": quote.signature.cert_data_type,
            "qe_report": _plain(qe_cert.qe_report),
            "qe_report_signature": qe_cert.qe_report_signature.hex(),
            "qe_auth_data": qe_cert.qe_auth_data.hex(),
            "pck_cert_data_type": qe_cert.pck_cert_data_type,
            "pck_chain": _certificates(qe_cert.pck_chain_pem),
        },
        "extra_bytes": len(quote.extra_bytes),
    }
    try:
        chain = parse_pck_chain(qe_cert.pck_chain_pem)
    except ParseError as exc:
        out["pck"] = {"error": str(exc)}
    else:
        out["pck"] = {"ca": chain.ca, "leaf_subject": chain.leaf.subject.rfc4514_string(),
                      "leaf_serial": f"{chain.leaf.serial_number:x}",
                      "not_before": chain.leaf.not_valid_before_utc.isoformat(),
                      "not_after": chain.leaf.not_valid_after_utc.isoformat(),
                      **_plain(chain.extension)}
    return out


def certificate_facts(cert: x509.Certificate) -> dict[str, str]:
    """What identifies a certificate to a reader: subject, issuer, serial, validity, SHA-256 fingerprint."""
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": f"{cert.serial_number:x}", "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "sha256_fingerprint": cert.fingerprint(hashes.SHA256()).hex(":")}


def _certificates(pem: bytes) -> list[dict[str, str]] | dict[str, str]:
    try:
        return [certificate_facts(x509.load_der_x509_certificate(der)) for der in split_pem_chain(pem)]
    except (ParseError, ValueError) as exc:
        return {"error": f"the PCK chain ({len(pem)} bytes) does not decode: {exc}"}
