"""TDX DCAP quote wire format (v4 and v5): bytes in, an immutable Quote out.

No cryptography happens here. Every read goes through `Reader`, so a short or
inconsistent buffer raises ParseError naming the structure, the field and the
offset. Bytes after the declared signature data (zero padding from configfs or
cloud buffers, junk appended by test suites) are kept in `Quote.extra_bytes`
and are not an error.

Layouts: Intel TDX DCAP Quoting Library API, Appendix 4/5 (header, TD report bodies,
signature data and QE report certification data).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..binary import Reader
from ..errors import ParseError

INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
TEE_TYPE_TDX = 0x81
ATT_KEY_ECDSA_P256 = 2
CERT_DATA_PCK_CHAIN = 5
CERT_DATA_QE_REPORT = 6

HEADER_SIZE = 0x30
TD10_BODY_SIZE = 0x248          # 584
TD15_BODY_SIZE = 0x288          # 648
BODY_TYPE_TD10 = 2
BODY_TYPE_TD15 = 3
QE_REPORT_SIZE = 0x180          # 384
_BODY_SIZES = {BODY_TYPE_TD10: TD10_BODY_SIZE, BODY_TYPE_TD15: TD15_BODY_SIZE}
_SIG_FIXED = 0x86               # signature, attestation key, cert type, cert size

S_HEADER = "TDX quote header"
S_BODY = "TDX TD report body"
S_QUOTE = "TDX quote"
S_SIG = "TDX quote signature data"
S_QE_CERT = "TDX QE report certification data"
S_QE_REPORT = "TDX QE report"


@dataclass(frozen=True, slots=True)
class QuoteHeader:
    version: int
    att_key_type: int
    tee_type: int
    reserved: bytes           # bytes 8-11: QE_SVN/PCE_SVN in some sources (spec §9); not for policy
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True, slots=True)
class TdReportBody:
    """TD report body: TD 1.0 fields, plus TEE_TCB_SVN2 and MRSERVICETD for TD 1.5."""

    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmr0: bytes
    rtmr1: bytes
    rtmr2: bytes
    rtmr3: bytes
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    mrservicetd: bytes | None = None

    @property
    def td_attributes_value(self) -> int:
        return int.from_bytes(self.td_attributes, "little")


# TD_ATTRIBUTES (8 bytes, little-endian): the bits the TDX module ABI defines; every other bit is reserved.
TD_ATTRIBUTE_BITS = {0: "DEBUG", 28: "SEPT_VE_DISABLE", 30: "PKS", 31: "KL", 63: "PERFMON"}


def decode_td_attributes(raw: bytes) -> dict[str, object]:
    """TD_ATTRIBUTES as named bits: each defined bit on or off, the names of those set, the reserved bits set."""
    value = int.from_bytes(raw, "little")
    named = {name: bool(value >> bit & 1) for bit, name in TD_ATTRIBUTE_BITS.items()}
    reserved = value & ~sum(1 << bit for bit in TD_ATTRIBUTE_BITS) & (2 ** 64 - 1)
    return {"raw": raw.hex(), "set": ", ".join(name for name, on in named.items() if on) or "none", **named,
            "reserved_bits_set": f"0x{reserved:016x}" if reserved else "none"}


@dataclass(frozen=True, slots=True)
class EnclaveReport:
    """SGX report body of the Quoting Enclave (384 bytes)."""

    cpu_svn: bytes
    misc_select: int
    isv_ext_prod_id: bytes
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    config_id: bytes
    isv_prod_id: int
    isv_svn: int
    config_svn: int
    isv_family_id: bytes
    report_data: bytes


@dataclass(frozen=True, slots=True)
class QeReportCertificationData:
    qe_report: EnclaveReport
    qe_report_bytes: bytes    # the 384 raw bytes the PCK key signs
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_cert_data_type: int
    pck_chain_pem: bytes      # leaf ‖ intermediate ‖ root, PEM, as carried (NUL included)


@dataclass(frozen=True, slots=True)
class SignatureData:
    quote_signature: bytes    # raw r‖s, big-endian
    attestation_key: bytes    # raw x‖y, big-endian
    cert_data_type: int
    qe_cert: QeReportCertificationData


@dataclass(frozen=True, slots=True)
class Quote:
    header: QuoteHeader
    body_type: int            # 2 = TD 1.0, 3 = TD 1.5 (v4 is always 2)
    body: TdReportBody
    signature_data_len: int
    signature: SignatureData
    signed_bytes: bytes       # what the attestation key signs
    extra_bytes: bytes = b""  # after the declared signature data; kept, never verified

    @property
    def version(self) -> int:
        return self.header.version


def parse_quote(data: bytes) -> Quote:
    """Parse a TDX quote v4 or v5 by its declared lengths (spec §2-4)."""
    data = bytes(data)
    header = _parse_header(Reader(data, structure=S_HEADER))
    r = Reader(data, structure=S_QUOTE)
    if header.version == 4:
        body_type, body_off, body_size = BODY_TYPE_TD10, HEADER_SIZE, TD10_BODY_SIZE
    else:
        body_type, body_size = _v5_body_type(r)
        body_off = HEADER_SIZE + 6
    body = _parse_body(Reader(r.bytes("TD report body", body_off, body_size), structure=S_BODY),
                       body_type)
    signed_end = body_off + body_size
    sig_len = r.u32("SIGNATURE_DATA_LEN", signed_end)
    sig_off = signed_end + 4
    # Parse what is there first, so that a short buffer is reported at the inner field it cuts.
    signature = _parse_signature_data(data[sig_off:sig_off + sig_len], sig_len)
    r.bytes("signature data", sig_off, sig_len)
    return Quote(header=header, body_type=body_type, body=body, signature_data_len=sig_len,
                 signature=signature, signed_bytes=data[:signed_end],
                 extra_bytes=data[sig_off + sig_len:])


def _parse_header(r: Reader) -> QuoteHeader:
    version = r.u16("VERSION", 0x00)
    if version not in (4, 5):
        raise r.fail("VERSION", 0x00, f"unsupported version {version}; expected 4 or 5")
    key_type = r.u16("ATT_KEY_TYPE", 0x02)
    if key_type != ATT_KEY_ECDSA_P256:
        raise r.fail("ATT_KEY_TYPE", 0x02,
                     f"unsupported attestation key type {key_type}; expected 2 (ECDSA P-256)")
    tee_type = r.u32("TEE_TYPE", 0x04)
    if tee_type != TEE_TYPE_TDX:
        raise r.fail("TEE_TYPE", 0x04, f"TEE type 0x{tee_type:X} is not TDX (0x81)")
    vendor = r.bytes("QE_VENDOR_ID", 0x0C, 16)
    if vendor != INTEL_QE_VENDOR_ID:
        raise r.fail("QE_VENDOR_ID", 0x0C, f"{vendor.hex()} is not Intel's QE vendor ID")
    return QuoteHeader(version=version, att_key_type=key_type, tee_type=tee_type,
                       reserved=r.bytes("reserved", 0x08, 4), qe_vendor_id=vendor,
                       user_data=r.bytes("USER_DATA", 0x1C, 20))


def _v5_body_type(r: Reader) -> tuple[int, int]:
    body_type = r.u16("BODY_TYPE", 0x30)
    if body_type not in _BODY_SIZES:
        raise r.fail("BODY_TYPE", 0x30,
                     f"body type {body_type} is not a TD report (2 = TD 1.0, 3 = TD 1.5)")
    size = r.u32("BODY_SIZE", 0x32)
    if size != _BODY_SIZES[body_type]:
        raise r.fail("BODY_SIZE", 0x32,
                     f"{size} does not match body type {body_type} ({_BODY_SIZES[body_type]})")
    return body_type, size


def _parse_body(r: Reader, body_type: int) -> TdReportBody:
    """The body; `r` holds exactly its declared size, so every field is inside it."""
    d = r.data
    if len(d) != _BODY_SIZES[body_type]:   # pragma: no cover - the caller read exactly that size
        raise r.fail("TD report body", 0, f"{len(d)} bytes; expected {_BODY_SIZES[body_type]}")
    extra = {}
    if body_type == BODY_TYPE_TD15:
        extra = {"tee_tcb_svn2": d[0x248:0x258], "mrservicetd": d[0x258:0x288]}
    return TdReportBody(
        tee_tcb_svn=d[0x000:0x010], mrseam=d[0x010:0x040], mrsignerseam=d[0x040:0x070],
        seam_attributes=d[0x070:0x078], td_attributes=d[0x078:0x080], xfam=d[0x080:0x088],
        mrtd=d[0x088:0x0B8], mrconfigid=d[0x0B8:0x0E8], mrowner=d[0x0E8:0x118],
        mrownerconfig=d[0x118:0x148], rtmr0=d[0x148:0x178], rtmr1=d[0x178:0x1A8],
        rtmr2=d[0x1A8:0x1D8], rtmr3=d[0x1D8:0x208], report_data=d[0x208:0x248], **extra)


def _parse_signature_data(data: bytes, declared: int) -> SignatureData:
    """Signature data of `declared` bytes, of which `data` is what the buffer holds."""
    r = Reader(data, structure=S_SIG)
    quote_signature = r.bytes("QUOTE_SIGNATURE", 0x00, 64)
    attestation_key = r.bytes("ATTESTATION_PUBLIC_KEY", 0x40, 64)
    cert_type = r.u16("CERT_DATA_TYPE", 0x80)
    if cert_type != CERT_DATA_QE_REPORT:
        raise r.fail("CERT_DATA_TYPE", 0x80,
                     f"certification data type {cert_type}; expected 6 (QE report certification data)")
    cert_size = r.u32("CERT_DATA_SIZE", 0x82)
    if cert_size != declared - _SIG_FIXED:
        raise r.fail("CERT_DATA_SIZE", 0x82, f"{cert_size} disagrees with SIGNATURE_DATA_LEN "
                     f"({declared} leaves {max(0, declared - _SIG_FIXED)})")
    return SignatureData(quote_signature=quote_signature, attestation_key=attestation_key,
                         cert_data_type=cert_type,
                         qe_cert=_parse_qe_cert_data(data[_SIG_FIXED:], cert_size))


def _parse_qe_cert_data(data: bytes, declared: int) -> QeReportCertificationData:
    """QE report certification data of `declared` bytes, of which `data` is present."""
    r = Reader(data, structure=S_QE_CERT)
    report_bytes = r.bytes("QE_REPORT", 0x000, QE_REPORT_SIZE)
    signature = r.bytes("QE_REPORT_SIGNATURE", 0x180, 64)
    auth_size = r.u16("QE_AUTH_DATA_SIZE", 0x1C0)
    auth = r.bytes("QE_AUTH_DATA", 0x1C2, auth_size)
    off = 0x1C2 + auth_size
    inner_type = r.u16("PCK_CERT_DATA_TYPE", off)
    if inner_type != CERT_DATA_PCK_CHAIN:
        raise r.fail("PCK_CERT_DATA_TYPE", off,
                     f"certification data type {inner_type}; expected 5 (PCK certificate chain)")
    inner_size = r.u32("PCK_CERT_DATA_SIZE", off + 2)
    if off + 6 + inner_size != declared:
        raise r.fail("PCK_CERT_DATA_SIZE", off + 2,
                     f"{inner_size} disagrees with CERT_DATA_SIZE ({declared} leaves "
                     f"{max(0, declared - off - 6)})")
    pem = r.bytes("PCK_CERT_CHAIN", off + 6, inner_size)
    return QeReportCertificationData(
        qe_report=parse_enclave_report(report_bytes), qe_report_bytes=report_bytes,
        qe_report_signature=signature, qe_auth_data=auth, pck_cert_data_type=inner_type,
        pck_chain_pem=pem)


def parse_enclave_report(data: bytes) -> EnclaveReport:
    """Parse a 384-byte SGX report body (here: the Quoting Enclave's)."""
    r = Reader(data, structure=S_QE_REPORT)
    if len(data) != QE_REPORT_SIZE:
        raise ParseError(S_QE_REPORT, "size", 0, f"{len(data)} bytes; expected {QE_REPORT_SIZE}")
    d = r.data   # exactly QE_REPORT_SIZE bytes: every field is inside
    return EnclaveReport(
        cpu_svn=d[0x00:0x10], misc_select=int.from_bytes(d[0x10:0x14], "little"),
        isv_ext_prod_id=d[0x20:0x30], attributes=d[0x30:0x40],
        mr_enclave=d[0x40:0x60], mr_signer=d[0x80:0xA0],
        config_id=d[0xC0:0x100], isv_prod_id=int.from_bytes(d[0x100:0x102], "little"),
        isv_svn=int.from_bytes(d[0x102:0x104], "little"), config_svn=int.from_bytes(d[0x104:0x106], "little"),
        isv_family_id=d[0x130:0x140], report_data=d[0x140:0x180])
