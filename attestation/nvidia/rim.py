"""NVIDIA RIMs: ISO/IEC 19770-2 SWID tags carrying golden GPU measurements (NVIDIA nvtrust local GPU verifier).

A RIM is parsed with a hardened XML parser (no DTD, no entities, no network,
no huge trees; any DOCTYPE is refused before parsing) and used only after its
enveloped XML-DSig verifies:

  (1) the signer chain in KeyInfo ends in a configured NVIDIA RIM root (the
      chain's own root, if present, is never trusted by itself); every
      certificate is valid at opts.at;
  (2) signxml verifies the signature with the chain's leaf (ECDSA-SHA384,
      SHA-384 digests) after we check the canonicalization is C14N 1.1;
  (3) the golden values are read from the element the signature covers
      (signxml's `signed_xml`), never from the unverified document.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from lxml import etree

from ..anchors import Anchor, TrustAnchors
from ..errors import ParseError, VerificationError
from ..x509util import check_validity, verify_issued_by

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
TCG_RIM_NS = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
MAX_RIM_BYTES = 4 * 1024 * 1024
MAX_ALTERNATIVES = 64
MAX_INDEX = 4096
STRUCTURE = "NVIDIA RIM"


@dataclass(frozen=True, slots=True)
class RimMeasurement:
    index: int                       # 0-based; SPDM block index - 1
    active: bool
    alternatives: tuple[bytes, ...]
    size: int
    name: str


@dataclass(frozen=True, slots=True)
class Rim:
    """A parsed RIM (not yet verified unless it came out of `verify_rim`)."""

    version: str                     # Meta@colloquialVersion, as written
    product: str | None
    manufacturer_id: str | None
    tag_id: str | None
    measurements: tuple[RimMeasurement, ...]

    def active(self) -> dict[int, RimMeasurement]:
        return {m.index: m for m in self.measurements if m.active}


@dataclass(frozen=True, slots=True)
class VerifiedRim:
    """Only `verify_rim` makes one: the signature and signer chain verified at `at`."""

    rim_id: str
    rim: Rim
    anchor: Anchor
    chain: tuple[x509.Certificate, ...]     # leaf first, up to (not including) the anchor
    not_before: datetime
    not_after: datetime


def hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           dtd_validation=False, remove_pis=True, collect_ids=False)


def parse_xml(data: bytes) -> etree._Element:
    """The document's root element; DOCTYPE/ENTITY declarations and oversize input are refused."""
    if not isinstance(data, (bytes, bytearray)):
        raise ParseError(STRUCTURE, "document", None, "must be bytes")
    if len(data) > MAX_RIM_BYTES:
        raise ParseError(STRUCTURE, "document", None, f"is larger than {MAX_RIM_BYTES} bytes")
    head = bytes(data).upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise ParseError(STRUCTURE, "document", None, "DTDs and entity declarations are not allowed")
    try:
        root = etree.fromstring(bytes(data), parser=hardened_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ParseError(STRUCTURE, "document", None, f"is not well-formed XML: {exc}") from None
    if root is None or root.getroottree().docinfo.internalDTD is not None:
        raise ParseError(STRUCTURE, "document", None, "DTDs are not allowed")
    return root


def _int(value: str | None, field: str, lo: int, hi: int) -> int:
    if value is None or not value.strip().isdigit():
        raise ParseError(STRUCTURE, field, None, f"{value!r} is not a decimal number")
    number = int(value)
    if not lo <= number <= hi:
        raise ParseError(STRUCTURE, field, None, f"{number} is outside {lo}..{hi}")
    return number


def _bool(value: str | None, field: str) -> bool:
    if value is None or value.strip().lower() not in ("true", "false"):
        raise ParseError(STRUCTURE, field, None, f"{value!r} is not True or False")
    return value.strip().lower() == "true"


def _hash(element: etree._Element, k: int, size: int, field: str) -> bytes:
    value = element.get(f"{{{SHA384_NS}}}Hash{k}")
    if value is None:
        raise ParseError(STRUCTURE, f"{field}.Hash{k}", None, "is missing")
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError:
        raise ParseError(STRUCTURE, f"{field}.Hash{k}", None, "is not hex") from None
    if len(raw) != size:
        raise ParseError(STRUCTURE, f"{field}.Hash{k}", None, f"is {len(raw)} bytes, size says {size}")
    return raw


def _measurement(element: etree._Element, n: int) -> RimMeasurement:
    field = f"Resource[{n}]"
    index = _int(element.get("index"), f"{field}.index", 0, MAX_INDEX)
    alternatives = _int(element.get("alternatives"), f"{field}.alternatives", 1, MAX_ALTERNATIVES)
    size = _int(element.get("size"), f"{field}.size", 1, 1024)
    hashes = tuple(_hash(element, k, size, field) for k in range(alternatives))
    return RimMeasurement(index=index, active=_bool(element.get("active"), f"{field}.active"),
                          alternatives=hashes, size=size, name=element.get("name") or "")


def rim_from_element(root: etree._Element) -> Rim:
    """Read the golden values of a SoftwareIdentity element."""
    if root.tag != f"{{{SWID_NS}}}SoftwareIdentity":
        raise ParseError(STRUCTURE, "SoftwareIdentity", None, f"root element is {root.tag!r}")
    meta = root.find(f"{{{SWID_NS}}}Meta")
    if meta is None or not meta.get("colloquialVersion"):
        raise ParseError(STRUCTURE, "Meta.colloquialVersion", None, "is missing")
    payload = root.find(f"{{{SWID_NS}}}Payload")
    if payload is None:
        raise ParseError(STRUCTURE, "Payload", None, "is missing")
    measurements, seen = [], set()
    for n, element in enumerate(payload.iterfind(f"{{{SWID_NS}}}Resource")):
        m = _measurement(element, n)
        if m.index in seen:
            raise ParseError(STRUCTURE, f"Resource[{n}].index", None, f"index {m.index} appears twice")
        seen.add(m.index)
        measurements.append(m)
    return Rim(version=meta.get("colloquialVersion", ""), product=meta.get("product"),
               manufacturer_id=meta.get(f"{{{TCG_RIM_NS}}}FirmwareManufacturerId"),
               tag_id=root.get("tagId"), measurements=tuple(measurements))


def parse_rim(data: bytes) -> Rim:
    """Parse a RIM without verifying it (for inspection; verifiers use `verify_rim`)."""
    return rim_from_element(parse_xml(data))


def peek_version(data: bytes) -> str:
    return parse_rim(data).version


def signer_certificates(root: etree._Element) -> tuple[x509.Certificate, ...]:
    """The X509Certificate elements of Signature/KeyInfo/X509Data, in document order."""
    certs = []
    for n, element in enumerate(root.iterfind(f"{{{DS_NS}}}Signature/{{{DS_NS}}}KeyInfo/"
                                              f"{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")):
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((element.text or "").split()),
                                                                         validate=True)))
        except (binascii.Error, ValueError, x509.InvalidVersion):
            raise ParseError(STRUCTURE, f"X509Certificate[{n}]", None, "is not a DER certificate") from None
    if not certs:
        raise ParseError(STRUCTURE, "Signature.KeyInfo", None, "carries no signer certificate")
    return tuple(certs)


def signer_window(data: bytes) -> tuple[datetime, datetime] | None:
    """The signer chain's common validity window (for bundle manifests); None if unreadable."""
    try:
        certs = signer_certificates(parse_xml(data))
    except ParseError:
        return None
    return (max(c.not_valid_before_utc for c in certs), min(c.not_valid_after_utc for c in certs))


def verify_signer_chain(certs: tuple[x509.Certificate, ...], anchors: TrustAnchors, at: datetime
                        ) -> tuple[Anchor, tuple[x509.Certificate, ...]]:
    """(1) leaf → … → a configured NVIDIA RIM root; each link signed and valid at `at`."""
    roots = anchors.nvidia("rim")
    if not roots:
        raise VerificationError("nvidia.rim_chain", "no NVIDIA RIM root is configured")
    chain = [c for c in certs if not any(c == a.certificate for a in roots)]
    chain = [c for c in chain if c.issuer != c.subject]        # a self-signed root never counts
    if not chain:
        raise VerificationError("nvidia.rim_chain", "the RIM carries no signer certificate below a root")
    for cert, issuer in zip(chain, chain[1:]):
        verify_issued_by(cert, issuer, check="nvidia.rim_chain")
    anchor = _anchor_for(chain[-1], roots)
    for cert in (*chain, anchor.certificate):
        check_validity(cert, at, check="nvidia.rim_chain_validity")
    return anchor, tuple(chain)


def _anchor_for(top: x509.Certificate, roots: tuple[Anchor, ...]) -> Anchor:
    failure: VerificationError | None = None
    for anchor in roots:
        try:
            verify_issued_by(top, anchor.certificate, check="nvidia.rim_chain")
            return anchor
        except VerificationError as exc:
            failure = exc
    raise VerificationError("nvidia.rim_chain", "the RIM signer chain does not end in a configured NVIDIA "
                            f"RIM root ({failure.detail if failure else 'no root'})",
                            expected=", ".join(a.name for a in roots), actual=top.issuer.rfc4514_string())


def _check_algorithms(root: etree._Element) -> None:
    c14n = root.find(f"{{{DS_NS}}}Signature/{{{DS_NS}}}SignedInfo/{{{DS_NS}}}CanonicalizationMethod")
    algorithm = c14n.get("Algorithm") if c14n is not None else None
    if algorithm != C14N_11:
        raise VerificationError("nvidia.rim_signature", "SignedInfo is not canonicalized with C14N 1.1",
                                expected=C14N_11, actual=str(algorithm))


def verify_xml_signature(data: bytes, leaf: x509.Certificate, at: datetime) -> etree._Element:
    """(2)+(3) The signed SoftwareIdentity element, after signxml verified it with `leaf`."""
    from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier
    from signxml.exceptions import SignXMLException

    config = SignatureConfiguration(signature_methods=frozenset({SignatureMethod.ECDSA_SHA384}),
                                    digest_algorithms=frozenset({DigestAlgorithm.SHA384}),
                                    expect_references=1, verification_time=at, location="./")
    try:
        result = XMLVerifier().verify(data, x509_cert=leaf, parser=hardened_parser(), expect_config=config)
    except (SignXMLException, ValueError, etree.LxmlError) as exc:
        raise VerificationError("nvidia.rim_signature", f"XML signature does not verify: {exc}") from None
    signed = result.signed_xml
    if signed is None or signed.tag != f"{{{SWID_NS}}}SoftwareIdentity":
        raise VerificationError("nvidia.rim_signature", "the signature does not cover the SoftwareIdentity")
    return signed


def verify_rim(rim_id: str, data: bytes, anchors: TrustAnchors, at: datetime) -> VerifiedRim:
    """Verify a RIM's signer chain and XML signature at `at`; return its golden values."""
    root = parse_xml(data)
    rim_from_element(root)                       # structure errors first, as ParseError
    _check_algorithms(root)
    certs = signer_certificates(root)
    try:
        anchor, chain = verify_signer_chain(certs, anchors, at)
    except ValueError as exc:                    # a certificate whose key or extension does not decode
        raise VerificationError("nvidia.rim_chain", f"malformed signer certificate: {exc}") from None
    signed = verify_xml_signature(bytes(data), chain[0], at)
    rim = rim_from_element(signed)
    window = (max(c.not_valid_before_utc for c in (*chain, anchor.certificate)),
              min(c.not_valid_after_utc for c in (*chain, anchor.certificate)))
    return VerifiedRim(rim_id=rim_id, rim=rim, anchor=anchor, chain=chain,
                       not_before=window[0], not_after=window[1])
