"""Certificate helpers shared by the TEE verifiers: signatures, validity, raw ECDSA.

Chain *policy* (which CNs, which anchor, which CRL) belongs to each TEE's
verify module; this module only answers "did this issuer sign that", "is this
valid at t", and converts signature encodings.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .errors import VerificationError


def raw_ecdsa_to_der(signature: bytes, *, byteorder: str = "big") -> bytes:
    """Convert r‖s (each half of the buffer) to DER; `byteorder` of each integer."""
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], byteorder)  # type: ignore[arg-type]
    s = int.from_bytes(signature[half:], byteorder)  # type: ignore[arg-type]
    return encode_dss_signature(r, s)


def verify_ecdsa(public_key: ec.EllipticCurvePublicKey, der_signature: bytes, data: bytes,
                 hash_alg: hashes.HashAlgorithm, *, check: str, what: str) -> None:
    try:
        public_key.verify(der_signature, data, ec.ECDSA(hash_alg))
    except InvalidSignature:
        raise VerificationError(check, f"{what} does not verify") from None


def verify_issued_by(cert: x509.Certificate, issuer: x509.Certificate, *, check: str) -> None:
    """Check that `issuer` signed `cert` (ECDSA, RSA PKCS#1 v1.5 or RSA-PSS) and names match."""
    if cert.issuer != issuer.subject:
        raise VerificationError(check, f"issuer of '{cert.subject.rfc4514_string()}' is "
                                f"'{cert.issuer.rfc4514_string()}', not '{issuer.subject.rfc4514_string()}'")
    key = issuer.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            pad = params if isinstance(params, (padding.PSS, padding.PKCS1v15)) else padding.PKCS1v15()
            key.verify(cert.signature, cert.tbs_certificate_bytes, pad, cert.signature_hash_algorithm)
        else:
            raise VerificationError(check, f"unsupported issuer key type {type(key).__name__}")
    except InvalidSignature:
        raise VerificationError(check, f"signature of '{cert.subject.rfc4514_string()}' does not "
                                f"verify under '{issuer.subject.rfc4514_string()}'") from None
    except (UnsupportedAlgorithm, ValueError) as exc:   # RSASSA-PSS parameters naming an unknown hash or MGF
        raise VerificationError(check, f"signature algorithm of '{cert.subject.rfc4514_string()}' is not "
                                f"supported ({exc})") from None


def check_validity(cert: x509.Certificate, at: datetime, *, check: str) -> None:
    if not (cert.not_valid_before_utc <= at <= cert.not_valid_after_utc):
        raise VerificationError(
            check, f"'{cert.subject.rfc4514_string()}' is not valid at {at.isoformat()}",
            expected=f"{cert.not_valid_before_utc.isoformat()} .. {cert.not_valid_after_utc.isoformat()}",
            actual=at.isoformat())


def verify_crl(crl: x509.CertificateRevocationList, issuer: x509.Certificate, at: datetime, *,
               check: str, what: str) -> None:
    """CRL signed by `issuer`, issued by it by name, and current at `at`."""
    if crl.issuer != issuer.subject:
        raise VerificationError(check, f"{what} is issued by '{crl.issuer.rfc4514_string()}', "
                                f"expected '{issuer.subject.rfc4514_string()}'")
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise VerificationError(check, f"{what} signature does not verify")
    next_update = crl.next_update_utc
    if at < crl.last_update_utc or (next_update is not None and at > next_update):
        raise VerificationError(
            check, f"{what} is not current at {at.isoformat()}",
            expected=f"{crl.last_update_utc.isoformat()} .. {next_update.isoformat() if next_update else '∞'}",
            actual=at.isoformat())


def check_not_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate, *,
                      check: str) -> None:
    if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        raise VerificationError(check, f"'{cert.subject.rfc4514_string()}' (serial "
                                f"{cert.serial_number:x}) is revoked")


def load_certificates(blob: bytes) -> list[x509.Certificate]:
    """Load PEM (one or many; trailing NULs tolerated) or a single DER certificate. ValueError if it is not."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in blob:
            certs = x509.load_pem_x509_certificates(blob.rstrip(b"\x00"))
        else:   # DER is taken as is: its last byte (a signature byte) may well be zero.
            certs = [x509.load_der_x509_certificate(blob)]
        for cert in certs:   # names are parsed lazily: a malformed one must fail here, not in the middle of a chain
            cert.subject, cert.issuer  # noqa: B018
        return certs
    except x509.InvalidVersion as exc:     # not a ValueError in cryptography
        raise ValueError(f"not a certificate: {exc}") from None
    except TypeError as exc:               # e.g. a BIT STRING attribute under another OID than uniqueIdentifier
        raise ValueError(f"malformed certificate name: {exc}") from None


def load_crl(blob: bytes) -> x509.CertificateRevocationList:
    """Load a PEM or DER CRL, its issuer name parsed; ValueError for anything else (cryptography also raises
    InvalidVersion and, for a malformed name, TypeError)."""
    try:
        crl = (x509.load_pem_x509_crl(blob) if blob.lstrip().startswith(b"-----BEGIN")
               else x509.load_der_x509_crl(blob))
        crl.issuer  # noqa: B018 - parsed lazily: a malformed one must fail here
        return crl
    except x509.InvalidVersion as exc:
        raise ValueError(f"not a CRL: {exc}") from None
    except TypeError as exc:
        raise ValueError(f"malformed CRL issuer name: {exc}") from None
