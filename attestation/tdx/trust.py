"""Certificate chains, CRLs and signed collateral for TDX, with caches of the time-independent work.

What is cached (all keyed by exact bytes or by exact certificates, never by time):
parsed PEM chains and PCK chains, parsed CRLs, "this issuer signed that
certificate" links, "this CA signed that CRL", TCB info / QE identity
documents whose signature verified under a given signing certificate, QE
reports whose signature verified under a given PCK certificate (a platform's
Quoting Enclave signs one report for its attestation key and puts it in every
quote), and attestation keys checked to be points on P-256. Every
time-dependent check (validity windows, CRL currency, collateral dates) is made
by the caller on each verification. `clear_caches()` empties everything.

Apart from those, a few values derived purely from each configured anchor's own
certificates (their DER, raw names, preloaded keys and PEM text) are kept per
Anchor object and survive `clear_caches()`: they are configuration, not results
about evidence or collateral. A chain certificate whose PEM text is exactly that
of an anchor certificate is represented by the anchor's own certificate object.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ..anchors import Anchor, TrustAnchors
from ..claims import AnchorRef
from ..errors import ParseError, VerificationError
from ..x509util import load_crl as read_crl
from ..x509util import raw_ecdsa_to_der, verify_issued_by
from . import der, pck

T = TypeVar("T")

_MAX_LINKS = 4096
_MAX_ENTRIES = 1024
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_BEGIN, _END = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"


class _CertInfo:
    """A certificate with its exact DER and raw parts (kept with the object it describes)."""

    __slots__ = ("cert", "der", "parts")

    def __init__(self, cert: x509.Certificate, raw: bytes, parts: der.SignedParts) -> None:
        self.cert, self.der, self.parts = cert, raw, parts


class _AnchorData:
    """Values derived purely from one anchor's certificates (root and pinned intermediates)."""

    __slots__ = ("anchor", "root", "pinned", "keys", "bodies", "chains")

    def __init__(self, anchor: Anchor) -> None:
        self.anchor = anchor
        infos = []
        for cert in (anchor.certificate, *anchor.intermediates):
            raw = cert.public_bytes(Encoding.DER)
            try:
                parts = der.certificate_parts.__wrapped__(raw)
            except ParseError:
                continue
            infos.append(_CertInfo(cert, raw, parts))
        self.root = anchor.certificate.public_bytes(Encoding.DER)
        self.pinned = frozenset(cert.public_bytes(Encoding.DER) for cert in anchor.intermediates)
        # id(cert) -> (cert, key): preloaded keys of exactly these objects
        self.keys = {id(info.cert): (info.cert, anchor.key(info.cert)) for info in infos
                     if anchor.key(info.cert) is not None}
        # PEM body (between the BEGIN/END lines, as standard 64-column PEM) -> info
        self.bodies = {}
        for info in infos:
            pem = info.cert.public_bytes(Encoding.PEM)
            body = pem[pem.index(_BEGIN) + len(_BEGIN):pem.index(_END)]
            self.bodies[body] = info
            self.bodies[body.replace(b"\n", b"\r\n")] = info
        # whole PEM chains "pinned intermediate, root" (and the root alone), as standard PEM
        root_info = next((i for i in infos if i.cert is anchor.certificate), None)
        self.chains: dict[bytes, tuple[_CertInfo, ...]] = {}
        if root_info is not None:
            root_pem = anchor.certificate.public_bytes(Encoding.PEM)
            self.chains[root_pem] = (root_info,)
            for info in infos:
                if info is not root_info:
                    self.chains[info.cert.public_bytes(Encoding.PEM) + root_pem] = (info, root_info)
        for info in infos:
            _ANCHOR_CERTS[id(info.cert)] = info


_ANCHOR_DATA: dict[int, _AnchorData] = {}        # id(anchor) -> data (anchor-derived, kept)
_ANCHOR_CERTS: dict[int, _CertInfo] = {}         # id(anchor certificate) -> info (anchor-derived, kept)
_KNOWN: dict[int, tuple[TrustAnchors, dict[bytes, _CertInfo]]] = {}   # id(anchors) -> PEM bodies
_KNOWN_CHAINS: dict[int, tuple[TrustAnchors, dict[bytes, tuple[_CertInfo, ...]]]] = {}  # -> whole PEMs

_CERTS: dict[int, _CertInfo] = {}                # id(cert) -> info, for certificates parsed here
_PCK_CHAINS: dict[bytes, pck.PckChain] = {}
_CHAINS: dict[tuple[bytes, str], tuple[x509.Certificate, ...]] = {}
_LINKS: dict[tuple[int, int], tuple[x509.Certificate, x509.Certificate]] = {}
_CRL_SIGNERS: dict[tuple[bytes, int], x509.Certificate] = {}
_DOCS: dict[tuple, tuple[x509.Certificate, object]] = {}
_REPORTS: dict[tuple[bytes, bytes, int], x509.Certificate] = {}


def anchor_data(anchor: Anchor) -> _AnchorData:
    data = _ANCHOR_DATA.get(id(anchor))
    if data is None or data.anchor is not anchor:
        if len(_ANCHOR_DATA) >= 256:
            _ANCHOR_DATA.clear()
            _ANCHOR_CERTS.clear()
            _KNOWN.clear()
            _KNOWN_CHAINS.clear()
        data = _ANCHOR_DATA[id(anchor)] = _AnchorData(anchor)
    return data


def _known(anchors: TrustAnchors | None) -> dict[bytes, _CertInfo]:
    """PEM bodies of the configured Intel anchors' certificates (anchor-derived)."""
    if anchors is None:
        return {}
    entry = _KNOWN.get(id(anchors))
    if entry is not None and entry[0] is anchors:
        return entry[1]
    bodies: dict[bytes, _CertInfo] = {}
    for anchor in anchors.anchors:
        if anchor.vendor == "intel":
            bodies.update(anchor_data(anchor).bodies)
    if len(_KNOWN) >= 256:
        _KNOWN.clear()
    _KNOWN[id(anchors)] = (anchors, bodies)
    return bodies


def _known_chains(anchors: TrustAnchors | None) -> dict[bytes, tuple[_CertInfo, ...]]:
    """Whole standard-PEM chains of the configured Intel anchors' certificates (anchor-derived)."""
    if anchors is None:
        return {}
    entry = _KNOWN_CHAINS.get(id(anchors))
    if entry is not None and entry[0] is anchors:
        return entry[1]
    chains: dict[bytes, tuple[_CertInfo, ...]] = {}
    for anchor in anchors.anchors:
        if anchor.vendor == "intel":
            chains.update(anchor_data(anchor).chains)
    if len(_KNOWN_CHAINS) >= 256:
        _KNOWN_CHAINS.clear()
    _KNOWN_CHAINS[id(anchors)] = (anchors, chains)
    return chains


def _info(cert: x509.Certificate) -> _CertInfo:
    info = _CERTS.get(id(cert)) or _ANCHOR_CERTS.get(id(cert))
    if info is not None and info.cert is cert:
        return info
    raw = cert.public_bytes(Encoding.DER)
    info = _CertInfo(cert, raw, der.certificate_parts(raw))
    _remember(info)
    return info


def _remember(info: _CertInfo) -> None:
    if len(_CERTS) >= _MAX_LINKS:
        _CERTS.clear()
        _LINKS.clear()
    _CERTS[id(info.cert)] = info


def _load(pem: bytes, structure: str, anchors: TrustAnchors | None,
          count: Callable[[int], None] | None = None) -> list[_CertInfo]:
    """Each certificate of a strictly read PEM chain (anchor certificates by their own object)."""
    blocks = pck.split_pem_chain_known(pem, structure, _known(anchors))
    if count is not None:
        count(len(blocks))
    infos: list[_CertInfo] = []
    for i, (raw, known) in enumerate(blocks):
        if known is not None:
            infos.append(known)
            continue
        try:
            cert = x509.load_der_x509_certificate(raw)
        except Exception as exc:  # noqa: BLE001 - cryptography raises several types (InvalidVersion...)
            raise ParseError(structure, f"certificate[{i}]", None,
                             f"not a valid X.509 certificate: {exc}") from None
        try:
            parts = der.certificate_parts(raw)
        except ParseError:   # reported where the parts are needed
            infos.append(_CertInfo(cert, raw, None))  # type: ignore[arg-type]
            continue
        info = _CertInfo(cert, raw, parts)
        _remember(info)
        infos.append(info)
    return infos


def pck_chain(pem: bytes, anchors: TrustAnchors | None = None) -> pck.PckChain:
    """The quote's PCK chain, parsed once per distinct PEM."""
    chain = _PCK_CHAINS.get(pem)
    if chain is None:
        infos = _load(pem, pck.S_CHAIN, anchors, pck.check_pck_chain_length)
        chain = pck.pck_chain_of([i.cert for i in infos], [i.der for i in infos],
                                 [i.parts for i in infos[:2]])
        if len(_PCK_CHAINS) >= _MAX_ENTRIES:
            _PCK_CHAINS.clear()
        _PCK_CHAINS[pem] = chain
    return chain


def cert_chain(pem: bytes, structure: str, anchors: TrustAnchors | None = None) -> tuple[x509.Certificate, ...]:
    """A collateral issuer chain (PEM), parsed once per distinct PEM."""
    key = (pem, structure)
    certs = _CHAINS.get(key)
    if certs is None:
        known = _known_chains(anchors).get(pem)   # exactly the anchor's own PEM text: no decoding
        certs = tuple(i.cert for i in (known or _load(pem, structure, anchors)))
        if len(_CHAINS) >= _MAX_ENTRIES:
            _CHAINS.clear()
        _CHAINS[key] = certs
    return certs


@lru_cache(maxsize=256)
def load_crl(der: bytes, structure: str) -> x509.CertificateRevocationList:
    try:
        return read_crl(der)
    except ValueError as exc:
        raise ParseError(structure, "CRL", None, f"not a DER CRL: {exc}") from None


def anchor_ref(anchor: Anchor) -> AnchorRef:
    return anchor.ref()


def parts(cert: x509.Certificate) -> der.SignedParts:
    """Raw TBS bytes, algorithm and names of a certificate (cached per certificate)."""
    return _info(cert).parts


def _der(cert: x509.Certificate) -> bytes:
    """The certificate's DER (remembered for certificates loaded here and anchor certificates)."""
    info = _CERTS.get(id(cert)) or _ANCHOR_CERTS.get(id(cert))
    if info is not None and info.cert is cert:
        return info.der
    return cert.public_bytes(Encoding.DER)


def same(a: x509.Certificate, b: x509.Certificate) -> bool:
    """Whether two certificates are the same DER (`a == b`, by identity first)."""
    return a is b or _der(a) == _der(b)


class guard:  # noqa: N801 - used as `with guard(check):`, like a function
    """Turn errors from lazily parsed certificate or CRL fields into a failure of `check`."""

    __slots__ = ("check",)

    def __init__(self, check: str) -> None:
        self.check = check

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if kind is not None and issubclass(kind, (ValueError, TypeError, UnsupportedAlgorithm)):
            raise VerificationError(self.check, f"malformed certificate or CRL field ({kind.__name__})") from None
        return False


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
        entry = anchor_data(anchor).keys.get(id(cert))
        if entry is not None and entry[0] is cert:
            return entry[1]
        key = anchor.key(cert)
        if key is not None:
            return key
    return public_key(cert, check=check)


def _pins(anchor: Anchor, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """anchor.pins(cert, issuer), decided on exact DER with the anchor-derived values."""
    data = anchor_data(anchor)
    if not (issuer is anchor.certificate or _der(issuer) == data.root):
        return False
    return _der(cert) in data.pinned


def issued_by(cert: x509.Certificate, issuer: x509.Certificate, *, check: str,
              anchor: Anchor | None = None) -> None:
    """`issuer` signed `cert` and is named as its issuer; remembered per pair once it succeeded.

    With `anchor`, a `cert` that is exactly one of its pinned intermediates under
    exactly its root is accepted as is (that link was verified when the anchor was
    built); anything else is verified. Intel's chains are ECDSA-with-SHA256 with
    byte-identical names; that is checked on the raw DER. Anything else goes
    through x509util.verify_issued_by.
    """
    if anchor is not None and _pins(anchor, cert, issuer):
        return
    key = (id(cert), id(issuer))
    hit = _LINKS.get(key)
    if hit is not None and hit[0] is cert and hit[1] is issuer:
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
    _LINKS[key] = (cert, issuer)


def crl_signed_by(crl_der: bytes, crl: x509.CertificateRevocationList, issuer: x509.Certificate,
                  *, check: str, what: str, anchor: Anchor | None = None) -> None:
    """The CRL names `issuer` and carries its valid signature (time is checked by the caller)."""
    key = (crl_der, id(issuer))
    if _CRL_SIGNERS.get(key) is issuer:
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
    _CRL_SIGNERS[key] = issuer


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
    for anchor in anchors.anchors:   # the anchor's own object, when the chain's PEM is its PEM
        if anchor.certificate is last and anchor.vendor == "intel":
            return anchor, certs[:-1]
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
    """Verify `signature` (raw r‖s) over the exact bytes, then parse them; cached on success.

    The result does not depend on `anchor` (it only supplies the signer's preloaded key).
    """
    key = (data, signature, id(signer), parse, check, what)
    hit = _DOCS.get(key)
    if hit is not None and hit[0] is signer:
        return hit[1]  # type: ignore[return-value]
    if not _verify_raw(key_of(signer, anchor, check=check), signature, data):
        raise VerificationError(check, f"{what} signature does not verify under "
                                f"'{signer.subject.rfc4514_string()}'")
    doc = parse(data)
    if len(_DOCS) >= 256:
        _DOCS.clear()
    _DOCS[key] = (signer, doc)
    return doc


def report_signed(report: bytes, signature: bytes, signer: x509.Certificate, *, check: str, what: str) -> None:
    """Verify `signature` (raw r‖s, ECDSA P-256 / SHA-256) over the exact report bytes under `signer`'s key;
    remembered on success, keyed by the bytes and the signer object (a PCK leaf from the cached chain)."""
    key = (report, signature, id(signer))
    if _REPORTS.get(key) is signer:
        return
    if not _verify_raw(public_key(signer, check=check), signature, report):
        raise VerificationError(check, f"{what} does not verify")
    if len(_REPORTS) >= _MAX_ENTRIES:
        _REPORTS.clear()
    _REPORTS[key] = signer


@lru_cache(maxsize=_MAX_ENTRIES)
def p256_point(raw: bytes) -> ec.EllipticCurvePublicKey | None:
    """The P-256 public key whose uncompressed point is `raw` (x ‖ y), or None if it is not on the curve."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)
    except ValueError:
        return None


def clear_caches() -> None:
    """Forget every cached parse and verification result (for cold benchmarks and tests).

    Only the anchor-derived values (see the module docstring) are kept.
    """
    for cached in (load_crl, is_revoked, p256_point, der.certificate_parts, der.crl_parts):
        cached.cache_clear()
    for table in (_CERTS, _PCK_CHAINS, _CHAINS, _LINKS, _CRL_SIGNERS, _DOCS, _REPORTS):
        table.clear()
