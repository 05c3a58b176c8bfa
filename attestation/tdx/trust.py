"""Certificate chains, CRLs and signed collateral for TDX, with caches of the time-independent work.

What is cached (all keyed by exact bytes or by exact certificates, never by time):
parsed PEM chains and PCK chains, parsed CRLs, "this issuer signed that
certificate" links, "this CA signed that CRL", and TCB info / QE identity
documents whose signature verified under a given signing certificate. Every
time-dependent check (validity windows, CRL currency, collateral dates) is made
by the caller on each verification. `clear_caches()` empties everything.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterator, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ..anchors import Anchor, TrustAnchors
from ..claims import AnchorRef
from ..errors import ParseError, VerificationError
from ..x509util import raw_ecdsa_to_der, verify_issued_by
from . import der, pck

T = TypeVar("T")

_LINKS: set[tuple[x509.Certificate, x509.Certificate]] = set()
_CRL_SIGNERS: set[tuple[bytes, x509.Certificate]] = set()
_MAX_LINKS = 4096
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@lru_cache(maxsize=1024)
def pck_chain(pem: bytes) -> pck.PckChain:
    """The quote's PCK chain, parsed once per distinct PEM."""
    return pck.parse_pck_chain(pem)


@lru_cache(maxsize=256)
def cert_chain(pem: bytes, structure: str) -> tuple[x509.Certificate, ...]:
    """A collateral issuer chain (PEM), parsed once per distinct PEM."""
    return pck.load_chain(pem, structure)


@lru_cache(maxsize=256)
def load_crl(der: bytes, structure: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(der)
    except Exception as exc:  # noqa: BLE001 - cryptography raises several types
        raise ParseError(structure, "CRL", None, f"not a DER CRL: {exc}") from None


@lru_cache(maxsize=64)
def anchor_ref(anchor: Anchor) -> AnchorRef:
    return anchor.ref()


@lru_cache(maxsize=512)
def parts(cert: x509.Certificate) -> der.SignedParts:
    """Raw TBS bytes, algorithm and names of a certificate (cached per certificate)."""
    return der.certificate_parts(cert.public_bytes(Encoding.DER))


@contextmanager
def guard(check: str) -> Iterator[None]:
    """Turn errors from lazily parsed certificate or CRL fields into a failure of `check`."""
    try:
        yield
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise VerificationError(check, f"malformed certificate or CRL field ({type(exc).__name__})") from None


def public_key(cert: x509.Certificate, *, check: str) -> object:
    """The certificate's public key; an unusable key is a failure of `check`."""
    try:
        return cert.public_key()
    except Exception:  # noqa: BLE001 - invalid point, unsupported algorithm...
        raise VerificationError(check, f"the public key of '{cert.subject.rfc4514_string()}' "
                                "is not usable") from None


def _ecdsa_sha256_ok(key: object, signature: bytes, data: bytes) -> bool:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, data, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def key_of(cert: x509.Certificate, anchor: Anchor | None, *, check: str) -> object:
    """The public key of `cert`: preloaded when it is exactly the anchor's root or a pinned
    intermediate, else extracted (an unusable key is a failure of `check`)."""
    if anchor is not None:
        key = anchor.key(cert)
        if key is not None:
            return key
    return public_key(cert, check=check)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate, *, check: str,
              anchor: Anchor | None = None) -> None:
    """`issuer` signed `cert` and is named as its issuer; remembered per pair once it succeeded.

    With `anchor`, a `cert` that is exactly one of its pinned intermediates under
    exactly its root is accepted as is (that link was verified when the anchor was
    built); anything else is verified. Intel's chains are ECDSA-with-SHA256 with
    byte-identical names; that is checked on the raw DER. Anything else goes
    through x509util.verify_issued_by.
    """
    if anchor is not None and anchor.pins(cert, issuer):
        return
    key = (cert, issuer)
    if key in _LINKS:
        return
    c, i = parts(cert), parts(issuer)
    if c.issuer == i.subject and c.algorithm == der.ECDSA_WITH_SHA256:
        if not _ecdsa_sha256_ok(key_of(issuer, anchor, check=check), cert.signature, c.tbs):
            with guard(check):
                verify_issued_by(cert, issuer, check=check)  # raises with a precise message
            raise VerificationError(check, "certificate signature does not verify")
    else:
        with guard(check):
            verify_issued_by(cert, issuer, check=check)
    if len(_LINKS) >= _MAX_LINKS:
        _LINKS.clear()
    _LINKS.add(key)


def crl_signed_by(crl_der: bytes, crl: x509.CertificateRevocationList, issuer: x509.Certificate,
                  *, check: str, what: str, anchor: Anchor | None = None) -> None:
    """The CRL names `issuer` and carries its valid signature (time is checked by the caller)."""
    key = (crl_der, issuer)
    if key in _CRL_SIGNERS:
        return
    raw = der.crl_parts(crl_der)
    if raw.issuer != parts(issuer).subject:
        raise VerificationError(check, f"{what} is issued by '{crl.issuer.rfc4514_string()}'",
                                expected=issuer.subject.rfc4514_string(),
                                actual=crl.issuer.rfc4514_string())
    if raw.algorithm != der.ECDSA_WITH_SHA256 or not _ecdsa_sha256_ok(
            key_of(issuer, anchor, check=check), crl.signature, raw.tbs):
        raise VerificationError(check, f"{what} signature does not verify")
    if len(_CRL_SIGNERS) >= _MAX_LINKS:
        _CRL_SIGNERS.clear()
    _CRL_SIGNERS.add(key)


@lru_cache(maxsize=1024)
def is_revoked(crl_der: bytes, structure: str, serial: int) -> bool:
    """Whether `serial` is listed in the CRL (a fact about the bytes, cached)."""
    return load_crl(crl_der, structure).get_revoked_certificate_by_serial_number(serial) is not None


def root_anchor(certs: tuple[x509.Certificate, ...], anchors: TrustAnchors, *,
                check: str, what: str, exact: bool = False) -> tuple[Anchor, tuple[x509.Certificate, ...]]:
    """The configured Intel anchor a chain ends in, and the chain's certificates below it.

    A chain that carries its own root must carry exactly a configured anchor; a
    chain without one is matched by issuer name to a configured anchor, unless
    `exact` demands that the last certificate be an anchor.
    """
    last = certs[-1]
    for anchor in anchors.anchors:
        if anchor.vendor == "intel" and anchor.certificate == last:   # same DER
            return anchor, certs[:-1]
    if exact:
        raise VerificationError(check, f"the root of the {what} is not a configured Intel anchor",
                                expected=", ".join(a.name for a in anchors.intel()) or "none",
                                actual="a different certificate")
    with guard(check):
        return _anchor_by_name(last, certs, anchors, check, what)


def _anchor_by_name(last: x509.Certificate, certs: tuple[x509.Certificate, ...], anchors: TrustAnchors,
                    check: str, what: str) -> tuple[Anchor, tuple[x509.Certificate, ...]]:
    if last.subject == last.issuer:
        raise VerificationError(check, f"the root of the {what} is not a configured Intel anchor",
                                expected=", ".join(a.name for a in anchors.intel()) or "none",
                                actual=last.subject.rfc4514_string())
    for anchor in anchors.intel():
        if anchor.certificate.subject == last.issuer:
            return anchor, certs
    raise VerificationError(check, f"the {what} does not end in a configured Intel anchor",
                            actual=last.issuer.rfc4514_string())


def _verify_raw(key: object, signature: bytes, data: bytes) -> bool:
    if len(signature) != 64:
        return False
    return _ecdsa_sha256_ok(key, raw_ecdsa_to_der(signature), data)


def signed_document(data: bytes, signature: bytes, signer: x509.Certificate,
                    parse: Callable[[bytes], T], check: str, what: str, anchor: Anchor | None = None) -> T:
    """Verify `signature` (raw r‖s) over the exact bytes, then parse them; cached on success."""
    return _signed_document(data, signature, signer, parse, check, what, anchor)


@lru_cache(maxsize=256)
def _signed_document(data: bytes, signature: bytes, signer: x509.Certificate,
                     parse: Callable[[bytes], T], check: str, what: str, anchor: Anchor | None) -> T:
    if not _verify_raw(key_of(signer, anchor, check=check), signature, data):
        raise VerificationError(check, f"{what} signature does not verify under "
                                f"'{signer.subject.rfc4514_string()}'")
    return parse(data)


def clear_caches() -> None:
    """Forget every cached parse and verification result (for cold benchmarks and tests)."""
    for cached in (pck_chain, cert_chain, load_crl, anchor_ref, _signed_document, is_revoked, parts,
                   der.certificate_parts, der.crl_parts):
        cached.cache_clear()
    _LINKS.clear()
    _CRL_SIGNERS.clear()
