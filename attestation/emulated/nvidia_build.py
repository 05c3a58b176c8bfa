"""Byte-level builders for emulated NVIDIA evidence: SPDM reports and signed RIM swidtags.

The report has the real layout (SPDM 1.1 MEASUREMENTS, as nvtrust parses it) and the RIMs the real SWID
shape and enveloped XML-DSig (C14N 1.1, ECDSA-SHA384, SHA-384 digests, signer
chain in KeyInfo), so they go through the production verifier unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from ..nvidia import rim as rimfmt
from ..nvidia import spdm

SHA384_OID_DER = bytes.fromhex("0609608648016503040202")


@dataclass(frozen=True, slots=True)
class GpuReportSpec:
    """What an emulated GPU reports; defaults look like an H100 PCIe in CC mode."""

    nonce: bytes
    measurements: Mapping[int, bytes]              # SPDM index (1-based) → 48-byte value
    driver_version: str = "550.90.07"
    vbios_version: str = "96.00.9f.00.01"
    project: str = "1010"
    project_sku: str = "0200"
    chip_sku: str = "882"
    fwid: bytes | None = None
    feature_flag: int | None = None
    responder_nonce: bytes = bytes(32)
    extra_opaque: Mapping[int, bytes] = field(default_factory=dict)


def vbios_bytes(version: str) -> bytes:
    """Inverse of spdm.format_vbios_version: "96.00.9f.00.01" → 8 bytes LE."""
    digits = version.replace(".", "").lower()
    if len(digits) != 10:
        raise ValueError(f"VBIOS version {version!r} must have five two-digit parts")
    return int("000000" + digits[8:10] + digits[0:8], 16).to_bytes(8, "little")


def _tlv(kind: int, value: bytes) -> bytes:
    return kind.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value


def opaque_data(spec: GpuReportSpec) -> bytes:
    fields = {spdm.VBIOS_VERSION: vbios_bytes(spec.vbios_version),
              spdm.CHIP_SKU: spec.chip_sku.encode().ljust(9, b"\0"),
              spdm.PROJECT: spec.project.encode().ljust(5, b"\0"),
              spdm.PROJECT_SKU: spec.project_sku.encode().ljust(5, b"\0"),
              spdm.DRIVER_VERSION: spec.driver_version.encode() + b"\0",
              spdm.NVDEC0_STATUS: bytes([spdm.NVDEC0_DISABLED])}
    if spec.fwid is not None:
        fields[spdm.FWID] = spec.fwid
    if spec.feature_flag is not None:
        fields[spdm.OPAQUE_DATA_VERSION] = (1).to_bytes(4, "little")
        fields[spdm.FEATURE_FLAG] = spec.feature_flag.to_bytes(4, "little")
    fields.update(spec.extra_opaque)
    return b"".join(_tlv(kind, value) for kind, value in fields.items())


def _block(index: int, value: bytes) -> bytes:
    return (bytes([index, spdm.DMTF_SPEC]) + (len(value) + 3).to_bytes(2, "little")
            + bytes([0x01]) + len(value).to_bytes(2, "little") + value)


def build_report(spec: GpuReportSpec, leaf_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Request ‖ response, signed with `leaf_key` (raw r‖s, big-endian halves)."""
    request = bytes([spdm.SPDM_VERSION, spdm.GET_MEASUREMENTS, 0x01, 0xFF]) + spec.nonce + b"\0"
    record = b"".join(_block(i, v) for i, v in sorted(spec.measurements.items()))
    opaque = opaque_data(spec)
    response = (bytes([spdm.SPDM_VERSION, spdm.MEASUREMENTS, 0, 0, len(spec.measurements)])
                + len(record).to_bytes(3, "little") + record + spec.responder_nonce
                + len(opaque).to_bytes(2, "little") + opaque)
    der = leaf_key.sign(request + response, ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    return request + response + r.to_bytes(48, "big") + s.to_bytes(48, "big")


def dice_tcb_info(fwid: bytes) -> x509.UnrecognizedExtension:
    """A minimal TCG DICE TcbInfo (2.23.133.5.4.1) whose fwids[0] is SHA-384 `fwid`."""
    digest = b"\x04" + bytes([len(fwid)]) + fwid
    one = b"\x30" + bytes([len(SHA384_OID_DER) + len(digest)]) + SHA384_OID_DER + digest
    fwids = b"\xa6" + bytes([len(one)]) + one
    value = b"\x30" + bytes([len(fwids)]) + fwids
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("2.23.133.5.4.1"), value)


def build_rim(*, version: str, product: str, golden: Mapping[int, tuple[bytes, ...]], total: int,
              key: ec.EllipticCurvePrivateKey, chain: tuple[x509.Certificate, ...]) -> bytes:
    """A SWID tag with `total` Resource entries (those in `golden` active), signed enveloped."""
    from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner, methods

    ns, hash_ns = rimfmt.SWID_NS, rimfmt.SHA384_NS
    root = etree.Element(f"{{{ns}}}SoftwareIdentity", nsmap={None: ns, "ns2": hash_ns},
                         name=product, tagId=f"emulated-{product}-{version}", version="1.0")
    etree.SubElement(root, f"{{{ns}}}Entity", name="Veil Emulated Vendor", role="softwareCreator tagCreator")
    etree.SubElement(root, f"{{{ns}}}Meta", {f"{{{rimfmt.TCG_RIM_NS}}}FirmwareManufacturerId": "5703"},
                     colloquialVersion=version, product=product, edition="GPU")
    payload = etree.SubElement(root, f"{{{ns}}}Payload")
    for index in range(total):
        values = golden.get(index, (bytes(48),))
        attrs = {f"{{{hash_ns}}}Hash{k}": v.hex() for k, v in enumerate(values)}
        etree.SubElement(payload, f"{{{ns}}}Resource", attrs, type="Measurement", index=str(index),
                         active=str(index in golden), alternatives=str(len(values)),
                         name=f"Measurement_{index}", size="48")
    signer = XMLSigner(method=methods.enveloped, signature_algorithm=SignatureMethod.ECDSA_SHA384,
                       digest_algorithm=DigestAlgorithm.SHA384,
                       c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1)
    signed = signer.sign(root, key=key, cert=list(chain))
    return etree.tostring(signed, xml_declaration=False, encoding="utf-8")
