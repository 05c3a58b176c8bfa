"""`attestation.measure` against values that others published (issue #7).

What is reproduced here, and where each expected value comes from:

1. PE Authenticode: the digest a vendor signed. A signed EFI image carries, in
   its Authenticode signature (SpcIndirectDataContent), the Authenticode digest
   of itself as its signer computed it. Debian signs its kernels, GRUB and
   fwupd; Microsoft signs shim. The images are fetched from the Debian mirror
   (tests/measure/debian.py: `apt-get download`, cached) and need no pinned
   value: whichever version the mirror serves carries its own expected digest.
   The signature is checked first (the messageDigest attribute binds the
   SpcIndirectDataContent and the signer's certificate verifies the signed
   attributes), so the value compared with is one the signer really signed.
   `authenticode_digest(image, "sha256")` hashes the same ranges as the
   SHA-384 digest edk2 extends RTMR[1] with for the kernel.

2. TDVF event logs (tests/measure/vectors/tdvf-event-logs.json, transcribed
   with provenance):
   - intel tdx-tools' published direct-boot CCEL log
     (kenplusplus/tdx-tools@768ad612dab123e6b628da9f8f18b68474c78104,
     doc/measure_log_direct_boot.txt): the EV_EFI_ACTION and EV_SEPARATOR
     events are SHA-384 of their event data, in the order `rtmr1_events` puts
     them, and `replay` over the logged digests gives the RTMR[0] and RTMR[1]
     values the tool printed;
   - edgelesssys/contrast@12b2c09ce1ccaeb0da106861ef3cfdc005ed56e7,
     dev-docs/coco/tdx-measurements.md: a current TD's "Linux initrd" record
     is an EV_EVENT_TAG (tag 0x8F3B22EC) in RTMR[2], the type and description
     `rtmr2_events` reports.

Not reproducible with inputs obtainable here (see docs/measure.md, "Checked
against"): any published MRTD, RTMR[1] or RTMR[2] of a whole launch, and any
published SEV-SNP measurement.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import pefile
import pytest
from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from attestation.measure import authenticode_digest, authenticode_sha384, replay
from attestation.measure.rtmr import rtmr1_events, rtmr2_events
from tests.measure.debian import package_file
from tests.measure.images import pe_image

VECTORS = json.loads((Path(__file__).parent / "vectors" / "tdvf-event-logs.json").read_text())

# ---------------------------------------------------------------------------------------------------------------
# 1. Authenticode digests signed by Debian and Microsoft

OID_SPC_INDIRECT_DATA = "1.3.6.1.4.1.311.2.1.4"
HASHES = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}
WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002

SIGNED_IMAGES = [
    # package, file in the package, metapackage?, who signs it
    ("linux-image-cloud-amd64", "boot/vmlinuz-*", True, "Debian"),
    ("fwupd-amd64-signed", "usr/libexec/fwupd/efi/fwupdx64.efi.signed", False, "Debian"),
    ("grub-efi-amd64-signed", "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", False, "Debian"),
    ("shim-signed", "usr/lib/shim/shimx64.efi.signed", False, "Microsoft"),
]


# Authenticode's own types, which asn1crypto does not define ("Windows Authenticode Portable Executable
# Signature Format"). SpcAttributeTypeAndOptionalValue's value (SpcPeImageData) is not needed here.
class SpcAttributeTypeAndOptionalValue(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("value", core.Any, {"optional": True})]


class DigestInfo(core.Sequence):
    _fields = [("digest_algorithm", algos.DigestAlgorithm), ("digest", core.OctetString)]


class SpcIndirectDataContent(core.Sequence):
    _fields = [("data", SpcAttributeTypeAndOptionalValue), ("message_digest", DigestInfo)]


@dataclass(frozen=True)
class SignedDigest:
    algorithm: str
    digest: bytes
    signer: str


def signed_authenticode_digest(image: bytes) -> SignedDigest:
    """The Authenticode digest inside a signed PE image, after checking that its signer signed it.

    PE/COFF: optional header data directory 4 (IMAGE_DIRECTORY_ENTRY_SECURITY)
    holds the file offset and size of the attribute certificates; the first is
    a WIN_CERTIFICATE (u32 length, u16 revision, u16 type 2 = PKCS#7
    SignedData). Authenticode: the SignedData's content is
    SpcIndirectDataContent, whose second field is a DigestInfo (algorithm,
    digest of the image). The signer's authenticated attributes carry
    messageDigest = hash of SpcIndirectDataContent's contents; the signature is
    over those attributes DER-encoded as a SET.
    """
    pe = pefile.PE(data=image, fast_load=True)
    table = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]]
    assert table.Size, "the image is not signed"
    length, _, kind = struct.unpack_from("<IHH", image, table.VirtualAddress)
    assert kind == WIN_CERT_TYPE_PKCS_SIGNED_DATA and length <= table.Size
    content_info = cms.ContentInfo.load(image[table.VirtualAddress + 8:table.VirtualAddress + length])
    assert content_info["content_type"].native == "signed_data"
    signed_data = content_info["content"]
    encapsulated = signed_data["encap_content_info"]
    assert encapsulated["content_type"].dotted == OID_SPC_INDIRECT_DATA
    spc = encapsulated["content"].parse(SpcIndirectDataContent)
    name = spc["message_digest"]["digest_algorithm"]["algorithm"].native
    digest = spc["message_digest"]["digest"].native

    signer_info = signed_data["signer_infos"][0]
    assert signer_info["sid"].name == "issuer_and_serial_number"
    sid = signer_info["sid"].chosen
    signer = next(x509.load_der_x509_certificate(c.chosen.dump()) for c in signed_data["certificates"]
                  if c.name == "certificate" and c.chosen.serial_number == sid["serial_number"].native
                  and c.chosen.issuer.dump() == sid["issuer"].dump())
    attributes = signer_info["signed_attrs"]
    assert len(attributes), "no authenticated attributes"
    message_digest = next(a["values"][0].native for a in attributes if a["type"].native == "message_digest")
    signer_hash_name = signer_info["digest_algorithm"]["algorithm"].native
    assert message_digest == hashlib.new(signer_hash_name, spc.contents).digest(), "messageDigest does not bind it"
    signed = attributes.untag().dump()                  # [0] IMPLICIT SET OF -> SET OF
    signature = signer_info["signature"].native
    key, signer_hash = signer.public_key(), HASHES[signer_hash_name]
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, signed, padding.PKCS1v15(), signer_hash)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, signed, ec.ECDSA(signer_hash))
    return SignedDigest(name, digest, signer.subject.rfc4514_string())


@pytest.mark.parametrize("package, member, meta, publisher", SIGNED_IMAGES, ids=[row[0] for row in SIGNED_IMAGES])
def test_authenticode_equals_the_digest_its_signer_signed(package, member, meta, publisher):
    image, source = package_file(package, member, depends=meta)
    signed = signed_authenticode_digest(image)
    assert publisher in signed.signer, f"{source} is signed by {signed.signer}"
    assert authenticode_digest(image, signed.algorithm).hex() == signed.digest.hex(), source


def test_kernel_event_is_the_authenticode_sha384_of_the_signed_kernel():
    """RTMR[1]'s first event for Debian's signed cloud kernel: the same hashed ranges, under SHA-384 (and the
    certificate table, which a signer appends after the digest is fixed, stays out of it)."""
    kernel, _ = package_file("linux-image-cloud-amd64", "boot/vmlinuz-*", depends=True)
    assert rtmr1_events(kernel)[0].digest == authenticode_sha384(kernel) == authenticode_digest(kernel, "sha384")
    (pe_at,) = struct.unpack_from("<I", kernel, 0x3C)
    security_entry = pe_at + 24 + 112 + 4 * 8          # PE32+ data directory 4 (Certificate Table)
    cert_at, _ = struct.unpack_from("<II", kernel, security_entry)
    unsigned = bytearray(kernel[:cert_at])
    struct.pack_into("<II", unsigned, security_entry, 0, 0)       # as it was before signing
    assert authenticode_sha384(bytes(unsigned)) == authenticode_sha384(kernel)


# ---------------------------------------------------------------------------------------------------------------
# 2. Published TDVF event logs

def sha384(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


def test_tdx_tools_log_action_and_separator_events_are_ours():
    log = VECTORS["tdx-tools-direct-boot"]
    for event in log["events"]:
        if "event_data" in event:
            assert sha384(event["event_data"].encode("ascii")).hex() == event["digest"], event["index"]
        if "event_data_hex" in event:
            assert sha384(bytes.fromhex(event["event_data_hex"])).hex() == event["digest"], event["index"]
    # The log's RTMR[1] ends with the four events rtmr1_events puts after the kernel, in that order.
    tail = [e["digest"] for e in log["events"] if e["rtmr"] == 1][-4:]
    assert [e.digest.hex() for e in rtmr1_events(pe_image([b"K" * 0x200]))[1:]] == tail


def test_tdx_tools_log_replays_to_the_published_rtmrs():
    log = VECTORS["tdx-tools-direct-boot"]
    for index, expected in log["rtmr"].items():
        digests = [bytes.fromhex(e["digest"]) for e in log["events"] if e["rtmr"] == int(index)]
        assert replay(digests).hex() == expected, f"RTMR[{index}]"


def test_linux_stub_initrd_record_is_an_ev_event_tag_in_rtmr2():
    record = bytes.fromhex(VECTORS["contrast-initrd-tag"]["record_hex"])
    mr_index, event_type, count, algorithm = struct.unpack_from("<IIIH", record, 0)
    digest = record[14:62]
    size, tag, tag_size = struct.unpack_from("<III", record, 62)
    description = record[74:74 + tag_size]
    assert (mr_index, event_type, count, algorithm) == (3, 0x6, 1, 0x000C)      # CC MR 3 = RTMR[2], EV_EVENT_TAG
    assert (size, tag, description) == (len(record) - 66, 0x8F3B22EC, b"Linux initrd\0")
    ours = rtmr2_events("console=hvc0", b"initrd")[-1]
    assert (ours.rtmr, ours.event_type, ours.description) == (2, "EV_EVENT_TAG", "Linux initrd")
    assert len(ours.digest) == len(digest) == 48
