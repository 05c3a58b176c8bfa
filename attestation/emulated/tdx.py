"""Byte-exact Intel TDX DCAP quotes (v4, v5) signed by the emulated vendor.

Layout per the Intel TDX DCAP Quoting Library API, Appendix 4/5: 48-byte header, TD report body
(v4: 584 bytes; v5: body type ‖ size ‖ 584- or 648-byte body), then the
ECDSA-256 signature data: attestation-key signature over header‖body, the
attestation key, and certification data type 6 holding the QE report (signed by
the PCK key, REPORTDATA binding the attestation key), QE auth data and the PCK
chain (type 5, PEM).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .pki import new_ec_key

QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
TEE_TYPE_TDX = 0x81
ATT_KEY_TYPE_ECDSA_P256 = 2
CERT_DATA_QE_REPORT = 6
CERT_DATA_PCK_CHAIN = 5
BODY_SIZES = {2: 584, 3: 648}

SEPT_VE_DISABLE = 1 << 28
TD_DEBUG = 1 << 0
DEFAULT_XFAM = 0x00000000000602E7
DEFAULT_TEE_TCB_SVN = bytes([5, 1, 2]) + bytes(13)
DEFAULT_MRSEAM = hashlib.sha384(b"veil emulated TDX module").digest()
DEFAULT_MRTD = hashlib.sha384(b"veil emulated TDVF").digest()

# The emulated TD quoting enclave (its identity is what the QE identity collateral states).
QE_MRSIGNER = hashlib.sha256(b"veil emulated TD quoting enclave signer").digest()
QE_MRENCLAVE = hashlib.sha256(b"veil emulated TD quoting enclave").digest()
QE_ISVPRODID = 2
QE_ISVSVN = 4
QE_MISCSELECT = 0
QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")
QE_AUTH_DATA = bytes(range(32))


@dataclass(frozen=True, slots=True, kw_only=True)
class TdBody:
    """The TD report body fields; defaults describe a healthy, non-debug TD."""

    report_data: bytes
    tee_tcb_svn: bytes = DEFAULT_TEE_TCB_SVN
    mrseam: bytes = DEFAULT_MRSEAM
    mrsignerseam: bytes = bytes(48)
    seam_attributes: bytes = bytes(8)
    td_attributes: int = SEPT_VE_DISABLE
    xfam: int = DEFAULT_XFAM
    mrtd: bytes = DEFAULT_MRTD
    mrconfigid: bytes = bytes(48)
    mrowner: bytes = bytes(48)
    mrownerconfig: bytes = bytes(48)
    rtmr0: bytes = bytes(48)
    rtmr1: bytes = bytes(48)
    rtmr2: bytes = bytes(48)
    rtmr3: bytes = bytes(48)
    tee_tcb_svn2: bytes | None = None      # TD 1.5 only; defaults to tee_tcb_svn
    mrservicetd: bytes = bytes(48)         # TD 1.5 only

    def __post_init__(self) -> None:
        sizes = {"report_data": 64, "tee_tcb_svn": 16, "mrseam": 48, "mrsignerseam": 48,
                 "seam_attributes": 8, "mrtd": 48, "mrconfigid": 48, "mrowner": 48,
                 "mrownerconfig": 48, "rtmr0": 48, "rtmr1": 48, "rtmr2": 48, "rtmr3": 48,
                 "mrservicetd": 48}
        for name, size in sizes.items():
            value = getattr(self, name)
            if not isinstance(value, (bytes, bytearray)) or len(value) != size:
                raise ValueError(f"{name} must be exactly {size} bytes")
        if self.tee_tcb_svn2 is not None and len(self.tee_tcb_svn2) != 16:
            raise ValueError("tee_tcb_svn2 must be exactly 16 bytes")

    def pack(self, body_type: int = 2) -> bytes:
        """The 584-byte TD 1.0 body (type 2) or the 648-byte TD 1.5 body (type 3)."""
        body = (self.tee_tcb_svn + self.mrseam + self.mrsignerseam + self.seam_attributes
                + struct.pack("<QQ", self.td_attributes, self.xfam) + self.mrtd
                + self.mrconfigid + self.mrowner + self.mrownerconfig
                + self.rtmr0 + self.rtmr1 + self.rtmr2 + self.rtmr3 + self.report_data)
        if body_type == 3:
            body += (self.tee_tcb_svn2 or self.tee_tcb_svn) + self.mrservicetd
        return body


def raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes, size: int = 32) -> bytes:
    """ECDSA-SHA256 signature as raw big-endian r‖s."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def header(version: int) -> bytes:
    return (struct.pack("<HHIHH", version, ATT_KEY_TYPE_ECDSA_P256, TEE_TYPE_TDX, 0, 0)
            + QE_VENDOR_ID + bytes(20))


def qe_report(cpusvn: bytes, report_data: bytes) -> bytes:
    """The 384-byte SGX report body of the emulated quoting enclave."""
    report = bytearray(384)
    report[0x00:0x10] = cpusvn
    report[0x10:0x14] = struct.pack("<I", QE_MISCSELECT)
    report[0x30:0x40] = QE_ATTRIBUTES
    report[0x40:0x60] = QE_MRENCLAVE
    report[0x80:0xA0] = QE_MRSIGNER
    report[0x100:0x104] = struct.pack("<HH", QE_ISVPRODID, QE_ISVSVN)
    report[0x140:0x180] = report_data
    return bytes(report)


def qe_certification_data(att_public: bytes, cpusvn: bytes, pck_key: ec.EllipticCurvePrivateKey,
                          pck_chain_pem: bytes) -> bytes:
    """Certification data type 6: QE report ‖ its PCK signature ‖ auth data ‖ PCK chain (type 5)."""
    binding = hashlib.sha256(att_public + QE_AUTH_DATA).digest() + bytes(32)
    report = qe_report(cpusvn, binding)
    return (report + raw_signature(pck_key, report)
            + struct.pack("<H", len(QE_AUTH_DATA)) + QE_AUTH_DATA
            + struct.pack("<HI", CERT_DATA_PCK_CHAIN, len(pck_chain_pem)) + pck_chain_pem)


@dataclass(frozen=True, slots=True)
class QuotingKey:
    """The emulated quoting enclave's attestation key and its certification data (the QE report binding it,
    signed by the PCK key, and the PCK chain): made once per platform, as a real QE keeps its key."""

    key: ec.EllipticCurvePrivateKey
    public: bytes
    cert_data: bytes


def quoting_key(cpusvn: bytes, pck_key: ec.EllipticCurvePrivateKey, pck_chain_pem: bytes) -> QuotingKey:
    key = new_ec_key()
    public = raw_public_key(key)
    return QuotingKey(key, public, qe_certification_data(public, cpusvn, pck_key, pck_chain_pem))


def build_quote(body: TdBody, *, version: int, body_type: int | None, qe: QuotingKey) -> bytes:
    """Assemble and sign a quote. v4 carries a type-2 body; v5 a type-2 or type-3 body."""
    if version == 4:
        if body_type not in (None, 2):
            raise ValueError("a v4 quote carries a TD 1.0 body (type 2)")
        signed = header(4) + body.pack(2)
    elif version == 5:
        body_type = 3 if body_type is None else body_type
        if body_type not in BODY_SIZES:
            raise ValueError("v5 body type must be 2 (TD 1.0) or 3 (TD 1.5)")
        signed = header(5) + struct.pack("<HI", body_type, BODY_SIZES[body_type]) + body.pack(body_type)
    else:
        raise ValueError("quote version must be 4 or 5")
    signature_data = (raw_signature(qe.key, signed) + qe.public
                      + struct.pack("<HI", CERT_DATA_QE_REPORT, len(qe.cert_data)) + qe.cert_data)
    return signed + struct.pack("<I", len(signature_data)) + signature_data
