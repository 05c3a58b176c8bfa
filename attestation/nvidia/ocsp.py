"""Revocation of NVIDIA certificates: OCSP responses checked with cryptography's x509.ocsp.

A response is accepted for `cert` only if: its status is SUCCESSFUL; it holds a
single response whose certificate ID (serial, issuer name and key hashes)
matches `cert` and `issuer`; it is signed by the issuer itself, or by a
responder certificate that the issuer signed and that carries the OCSPSigning
extended key usage; `at` lies in thisUpdate .. nextUpdate; and the status is
GOOD. REVOKED (any reason) and UNKNOWN are failures.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import CollateralError, VerificationError
from ..x509util import check_validity, verify_issued_by

CHECK = "nvidia.ocsp"


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _load(der: bytes, cert: x509.Certificate) -> ocsp.OCSPResponse:
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise CollateralError(f"NVIDIA OCSP response for '{_name(cert)}'", "is not a DER OCSP response") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise VerificationError(CHECK, f"OCSP responder answered {response.response_status.name} "
                                f"for '{_name(cert)}'", expected="SUCCESSFUL",
                                actual=response.response_status.name)
    return response


def _matches(single, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if single.serial_number != cert.serial_number:
        return False
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, single.hash_algorithm)
    request = builder.build()
    return (request.issuer_key_hash == single.issuer_key_hash
            and request.issuer_name_hash == single.issuer_name_hash)


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime) -> x509.Certificate:
    """The issuer, or a delegated responder certificate issued by it for OCSP signing."""
    for candidate in (issuer, *response.certificates):
        if not _is_responder(candidate, response):
            continue
        if candidate == issuer:
            return issuer
        verify_issued_by(candidate, issuer, check=CHECK)
        check_validity(candidate, at, check=CHECK)
        _require_ocsp_signing(candidate)
        return candidate
    raise VerificationError(CHECK, f"OCSP response is signed by neither '{_name(issuer)}' nor a "
                            "responder it delegated to")


def _is_responder(cert: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    digest = hashes.Hash(hashes.SHA1())      # ResponderID byKey: SHA-1 of the subjectPublicKey bits
    digest.update(_public_key_bits(cert))
    return digest.finalize() == response.responder_key_hash


def _public_key_bits(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return key.public_bytes(Encoding.DER, PublicFormat.PKCS1)


def _require_ocsp_signing(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = ()
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usage:
        raise VerificationError(CHECK, f"OCSP responder '{_name(cert)}' lacks the OCSPSigning usage")


def _verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    key = signer.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes,
                       ec.ECDSA(response.signature_hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(),
                       response.signature_hash_algorithm)
        else:
            raise VerificationError(CHECK, f"unsupported OCSP signer key {type(key).__name__}")
    except InvalidSignature:
        raise VerificationError(CHECK, "OCSP response signature does not verify") from None


def check_ocsp(der: bytes, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> None:
    """Raise unless `der` is a current, correctly signed GOOD answer about `cert`."""
    response = _load(der, cert)
    single = next((s for s in response.responses if _matches(s, cert, issuer)), None)
    if single is None:
        raise VerificationError(CHECK, f"OCSP response is not about '{_name(cert)}' "
                                f"(serial {cert.serial_number:x})")
    _verify_signature(response, _signer(response, issuer, at))
    next_update = single.next_update_utc
    if at < single.this_update_utc or (next_update is not None and at > next_update):
        raise VerificationError(CHECK, f"OCSP response for '{_name(cert)}' is not current",
                                expected=f"{single.this_update_utc.isoformat()} .. "
                                         f"{next_update.isoformat() if next_update else '∞'}",
                                actual=at.isoformat())
    status = single.certificate_status
    if status == ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason.name if single.revocation_reason else "unspecified"
        raise VerificationError("nvidia.certificate_revoked", f"'{_name(cert)}' is revoked ({reason})",
                                expected="good", actual=f"revoked: {reason}")
    if status != ocsp.OCSPCertStatus.GOOD:
        raise VerificationError(CHECK, f"OCSP status of '{_name(cert)}' is {status.name}",
                                expected="GOOD", actual=status.name)


def check_chain_revocation(chain: tuple[x509.Certificate, ...], top_issuer: x509.Certificate, source,
                           at: datetime, *, start: int = 0) -> None:
    """OCSP for chain[start:], each against its issuer (the last against `top_issuer`)."""
    issuers = (*chain[1:], top_issuer)
    for cert, issuer in list(zip(chain, issuers))[start:]:
        check_ocsp(source.nvidia_ocsp(cert, issuer), cert, issuer, at)
