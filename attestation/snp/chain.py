"""The AMD certificate chain: VCEK ← ASK ← ARK, or VLEK ← ASVK ← ARK, plus the ARK's CRL.

Only the ARK, ASK and ASVK pinned in the configured anchors are trusted
(go-sev-guest `verify.go`); certificates that travel with the evidence are at
most compared with them. Every link is RSASSA-PSS with SHA-384.

Time-independent work is cached: a (certificate, issuer) pair whose signature
verified once is not verified again, and neither is a CRL's signature. Checks
that depend on the verification time (validity windows, CRL currency) and on
the CRL's content run on every call. `clear_caches()` empties the caches.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ..anchors import Anchor, TrustAnchors, common_name
from ..errors import VerificationError
from ..x509util import check_not_revoked, check_validity, verify_issued_by


class _BoundedSet:
    """A thread-safe set of hashable keys that forgets the oldest beyond `limit`."""

    def __init__(self, limit: int = 4096) -> None:
        self._items: OrderedDict[object, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def add(self, key: object) -> None:
        with self._lock:
            self._items[key] = None
            if len(self._items) > self._limit:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_verified_links = _BoundedSet()
_verified_crls = _BoundedSet()


def clear_caches() -> None:
    """Forget every verified certificate link and CRL signature (and memoized names and DER)."""
    _verified_links.clear()
    _verified_crls.clear()
    der.cache_clear()
    cn.cache_clear()
    issuer_common_name.cache_clear()


@functools.lru_cache(maxsize=4096)
def der(cert: x509.Certificate) -> bytes:
    """The certificate's DER (memoized: certificates are immutable and hash by content)."""
    return cert.public_bytes(Encoding.DER)


@functools.lru_cache(maxsize=4096)
def cn(cert: x509.Certificate) -> str:
    """The subject CN (memoized)."""
    return common_name(cert)


@dataclass(frozen=True, slots=True)
class Chain:
    """A verified chain: the anchor it ends in and its three certificates."""

    anchor: Anchor
    ark: x509.Certificate
    ask: x509.Certificate          # ASK (VCEK) or ASVK (VLEK)
    leaf: x509.Certificate         # VCEK or VLEK

    def certificates(self) -> tuple[x509.Certificate, ...]:
        return (self.leaf, self.ask, self.ark)


@functools.lru_cache(maxsize=4096)
def issuer_common_name(cert: x509.Certificate) -> str:
    attrs = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def expected_issuer_cn(product: str, signer: str) -> str:
    """SEV-<Product> signs VCEKs; SEV-VLEK-<Product> signs VLEKs."""
    return f"SEV-VLEK-{product}" if signer == "vlek" else f"SEV-{product}"


def verify_link(cert: x509.Certificate, issuer: x509.Certificate, *, check: str) -> None:
    """`issuer` signed `cert` with RSASSA-PSS/SHA-384 (cached once verified)."""
    key = (der(cert), der(issuer))
    if key in _verified_links:
        return
    try:
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:           # e.g. RSASSA-PSS naming a hash cryptography does not know
        hash_alg = None
    if cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.RSASSA_PSS or not isinstance(hash_alg, hashes.SHA384):
        raise VerificationError(check, f"'{common_name(cert)}' is not signed with RSASSA-PSS/SHA-384",
                                expected="RSASSA-PSS SHA-384",
                                actual=cert.signature_algorithm_oid.dotted_string)
    verify_issued_by(cert, issuer, check=check)
    _verified_links.add(key)


def _chain_to(anchor: Anchor, leaf: x509.Certificate, product: str, signer: str) -> Chain:
    """Verify leaf ← pinned ASK/ASVK ← ARK (self-signed) of one anchor."""
    link_check = f"snp.{signer}_chain"
    ask = next((c for c in anchor.intermediates if cn(c) == expected_issuer_cn(product, signer)), None)
    if ask is None:
        raise VerificationError(link_check, f"anchor {anchor.name} has no pinned "
                                f"{expected_issuer_cn(product, signer)}")
    ark = anchor.certificate
    if cn(ark) != f"ARK-{product}":
        raise VerificationError("snp.ask_chain", f"anchor {anchor.name} is not an ARK for {product}",
                                expected=f"ARK-{product}", actual=cn(ark))
    verify_link(leaf, ask, check=link_check)
    verify_link(ask, ark, check="snp.ask_chain")
    verify_link(ark, ark, check="snp.ark")
    return Chain(anchor=anchor, ark=ark, ask=ask, leaf=leaf)


def build_chain(leaf: x509.Certificate, *, product: str, signer: str,
                anchors: TrustAnchors) -> Chain:
    """Chain the VCEK/VLEK to one of the configured AMD anchors for `product`.

    Raises:
        VerificationError: "snp.anchor" (none configured for the product),
            "snp.vcek_chain"/"snp.vlek_chain" (wrong issuer or bad signature),
            "snp.ask_chain", "snp.ark".
    """
    link_check = f"snp.{signer}_chain"
    want = expected_issuer_cn(product, signer)
    if issuer_common_name(leaf) != want:
        raise VerificationError(link_check, f"the {signer.upper()} is not issued by {want}",
                                expected=want, actual=issuer_common_name(leaf))
    candidates = anchors.amd(product)
    if not candidates:
        raise VerificationError("snp.anchor", f"no trusted AMD root is configured for {product}",
                                expected=f"ARK-{product}", actual="none")
    first_error: VerificationError | None = None
    for anchor in candidates:
        try:
            return _chain_to(anchor, leaf, product, signer)
        except VerificationError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def check_chain_validity(chain: Chain, at: datetime) -> tuple[datetime, datetime]:
    """Every certificate is valid at `at`; returns the intersection of their windows."""
    for cert in chain.certificates():
        check_validity(cert, at, check="snp.cert_expired")
    return (max(c.not_valid_before_utc for c in chain.certificates()),
            min(c.not_valid_after_utc for c in chain.certificates()))


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise VerificationError("snp.crl", f"the AMD CRL is not a DER or PEM CRL ({exc})") from None


def _verify_crl_signature(crl: x509.CertificateRevocationList, data: bytes,
                          ark: x509.Certificate) -> None:
    key = (data, der(ark))
    if key in _verified_crls:
        return
    if crl.issuer != ark.subject:
        raise VerificationError("snp.crl", "the CRL is not issued by the ARK",
                                expected=ark.subject.rfc4514_string(), actual=crl.issuer.rfc4514_string())
    if not crl.is_signature_valid(ark.public_key()):  # type: ignore[arg-type]
        raise VerificationError("snp.crl", "the CRL signature does not verify under the ARK")
    _verified_crls.add(key)


def check_crl(chain: Chain, data: bytes, at: datetime) -> tuple[datetime, datetime | None]:
    """The ARK-signed CRL is current at `at` and lists neither the ASK/ASVK nor the VCEK/VLEK.

    Returns the CRL's (thisUpdate, nextUpdate).
    """
    crl = _load_crl(data)
    _verify_crl_signature(crl, data, chain.ark)
    last, nxt = crl.last_update_utc, crl.next_update_utc
    if at < last or (nxt is not None and at > nxt):
        raise VerificationError("snp.crl_expired", f"the AMD CRL is not current at {at.isoformat()}",
                                expected=f"{last.isoformat()} .. {nxt.isoformat() if nxt else '∞'}",
                                actual=at.isoformat())
    check_not_revoked(crl, chain.ask, check="snp.revoked")
    check_not_revoked(crl, chain.leaf, check="snp.revoked")
    return last, nxt
