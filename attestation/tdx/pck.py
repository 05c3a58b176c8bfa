"""The PCK certificate chain carried in a TDX quote, and the PCK's SGX extension.

The chain is PEM text (leaf ‖ PCK Platform/Processor CA ‖ Intel SGX Root CA,
often with a trailing NUL). It is read strictly: only certificate blocks,
newlines between them and trailing NULs are accepted, and the base64 must be
canonical, so that no byte of the chain can change without the change being
noticed. The SGX extension (OID 1.2.840.113741.1.13.1, spec §6) is DER that
`cryptography` hands over as opaque bytes; a small bounds-checked TLV walker
reads it.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from ..anchors import common_name
from ..errors import ParseError

SGX_EXTENSION_OID = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
_SGX = "1.2.840.113741.1.13.1"
_SGX_RAW = bytes.fromhex("2a864886f84d010d01")   # DER content of the OID above
LEAF_CN = "Intel SGX PCK Certificate"
CA_CNS = {"Intel SGX PCK Platform CA": "platform", "Intel SGX PCK Processor CA": "processor"}
SGX_TYPES = {0: "Standard", 1: "Scalable", 2: "ScalableWithIntegrity"}

S_CHAIN = "TDX PCK certificate chain"
S_EXT = "PCK SGX extension"

_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"


@dataclass(frozen=True, slots=True)
class PckExtension:
    """Platform facts Intel wrote into the PCK certificate."""

    ppid: bytes
    tcb_components: tuple[int, ...]   # CPUSVN components 1-16
    pce_svn: int
    cpu_svn: bytes
    pce_id: bytes
    fmspc: bytes
    sgx_type: str | None


@dataclass(frozen=True, slots=True)
class PckChain:
    leaf: x509.Certificate
    intermediate: x509.Certificate
    root: x509.Certificate
    extension: PckExtension
    ca: Literal["platform", "processor"]


def split_pem_chain(pem: bytes, structure: str = S_CHAIN) -> list[bytes]:
    """DER of each certificate in a PEM chain, read strictly (see module docstring)."""
    text = pem.rstrip(b"\x00")
    ders: list[bytes] = []
    pos = 0
    while pos < len(text):
        field = f"certificate[{len(ders)}]"
        if not text.startswith(_BEGIN, pos):
            raise ParseError(structure, field, pos, "expected a '-----BEGIN CERTIFICATE-----' line")
        end = text.find(_END, pos)
        if end < 0:
            raise ParseError(structure, field, pos, "no '-----END CERTIFICATE-----' line")
        ders.append(_decode_b64(text[pos + len(_BEGIN):end], structure, field, pos))
        pos = end + len(_END)
        while text.startswith(b"\n", pos) or text.startswith(b"\r\n", pos):
            pos += 1 if text[pos] == 0x0A else 2
    if not ders:
        raise ParseError(structure, "certificate[0]", 0, "no certificate in the chain")
    return ders


def _decode_b64(body: bytes, structure: str, field: str, pos: int) -> bytes:
    if not (body.startswith((b"\n", b"\r\n")) and body.endswith(b"\n")):
        raise ParseError(structure, field, pos, "the base64 text must be on lines of its own")
    compact = body.replace(b"\r\n", b"").replace(b"\n", b"")
    try:
        der = binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ParseError(structure, field, pos, "invalid base64") from None
    if binascii.b2a_base64(der, newline=False) != compact:
        raise ParseError(structure, field, pos, "non-canonical base64")
    return der


def load_chain(pem: bytes, structure: str = S_CHAIN) -> tuple[x509.Certificate, ...]:
    """Load every certificate of a strictly read PEM chain."""
    certs = []
    for i, der in enumerate(split_pem_chain(pem, structure)):
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise ParseError(structure, f"certificate[{i}]", None, f"not a valid X.509 certificate: {exc}") from None
    return tuple(certs)


def parse_pck_chain(pem: bytes) -> PckChain:
    """The quote's PCK chain: leaf, PCK CA, root, with the leaf's SGX extension decoded."""
    certs = load_chain(pem)
    if len(certs) != 3:
        raise ParseError(S_CHAIN, "certificates", None,
                         f"{len(certs)} certificates; expected PCK leaf, PCK CA and root")
    leaf, inter, root = certs
    if common_name(leaf) != LEAF_CN:
        raise ParseError(S_CHAIN, "certificate[0].subject.CN", None,
                         f"{common_name(leaf)!r}; expected {LEAF_CN!r}")
    ca = CA_CNS.get(common_name(inter))
    if ca is None:
        raise ParseError(S_CHAIN, "certificate[1].subject.CN", None,
                         f"{common_name(inter)!r} is not a PCK Platform or Processor CA")
    try:
        ext = leaf.extensions.get_extension_for_oid(SGX_EXTENSION_OID).value
    except x509.ExtensionNotFound:
        raise ParseError(S_CHAIN, "certificate[0].extensions", None,
                         "the PCK certificate has no SGX extension") from None
    except ValueError as exc:
        raise ParseError(S_CHAIN, "certificate[0].extensions", None, str(exc)) from None
    return PckChain(leaf=leaf, intermediate=inter, root=root, ca=ca,  # type: ignore[arg-type]
                    extension=parse_sgx_extension(ext.value))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- DER walker

def _tlv(data: bytes, pos: int, field: str, limit: int | None = None) -> tuple[int, int, int]:
    """(tag, value start, value end) of the TLV at `pos`, within data[:limit]; bounds-checked."""
    limit = len(data) if limit is None else limit
    if pos + 2 > limit:
        raise ParseError(S_EXT, field, pos, "truncated DER header")
    tag, first = data[pos], data[pos + 1]
    start = pos + 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > limit:
            raise ParseError(S_EXT, field, pos, "bad DER length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    else:
        length = first
    if start + length > limit:
        raise ParseError(S_EXT, field, pos, f"DER value of {length} bytes overruns its container")
    return tag, start, start + length


def _children(data: bytes, start: int, end: int, field: str) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, vstart, vend = _tlv(data, pos, field, end)
        out.append((tag, vstart, vend))
        pos = vend
    return out


def _entries(data: bytes, start: int, end: int, field: str) -> dict[bytes, tuple[int, bytes]]:
    """Decode SEQUENCE OF SEQUENCE { OID, value } into {raw OID: (value tag, value bytes)}."""
    out: dict[bytes, tuple[int, bytes]] = {}
    for tag, s, e in _children(data, start, end, field):
        if tag != 0x30:
            raise ParseError(S_EXT, field, s, "expected SEQUENCE { OID, value }")
        items = _children(data, s, e, field)
        if len(items) != 2 or items[0][0] != 0x06:
            raise ParseError(S_EXT, field, s, "expected SEQUENCE { OID, value }")
        (_, os_, oe), (vtag, vs, ve) = items
        out[data[os_:oe]] = (vtag, data[vs:ve])
    return out


def _need(entries: dict[bytes, tuple[int, bytes]], arc: tuple[int, ...], tag: int, name: str,
          size: int | None = None) -> bytes:
    oid = _SGX_RAW + bytes(arc)          # every arc below the SGX OID is < 128: one byte each
    if oid not in entries:
        raise ParseError(S_EXT, name, None, f"missing (OID {_SGX}.{'.'.join(map(str, arc))})")
    got_tag, value = entries[oid]
    if got_tag != tag or (size is not None and len(value) != size):
        raise ParseError(S_EXT, name, None, f"unexpected encoding (tag 0x{got_tag:02x}, {len(value)} bytes)")
    return value


def _uint(raw: bytes, name: str) -> int:
    if not raw or raw[0] & 0x80 or len(raw) > 4:
        raise ParseError(S_EXT, name, None, "not a small non-negative INTEGER")
    return int.from_bytes(raw, "big")


def parse_sgx_extension(value: bytes) -> PckExtension:
    """Decode the DER value of the SGX extension (spec §6)."""
    tag, start, end = _tlv(value, 0, "SGX extension")
    if tag != 0x30 or end != len(value):
        raise ParseError(S_EXT, "SGX extension", 0, "expected one SEQUENCE")
    top = _entries(value, start, end, "SGX extension")
    tcb_raw = _need(top, (2,), 0x30, "TCB")
    tcb = _entries(tcb_raw, 0, len(tcb_raw), "TCB")
    comps = tuple(_uint(_need(tcb, (2, i), 0x02, f"TCB.COMP{i:02d}_SVN"), f"TCB.COMP{i:02d}_SVN")
                  for i in range(1, 17))
    sgx_type = None
    if _SGX_RAW + b"\x05" in top:
        sgx_type = SGX_TYPES.get(_uint(_need(top, (5,), 0x0A, "SGX type"), "SGX type"), "unknown")
    return PckExtension(
        ppid=_need(top, (1,), 0x04, "PPID", 16),
        tcb_components=comps,
        pce_svn=_uint(_need(tcb, (2, 17), 0x02, "TCB.PCESVN"), "TCB.PCESVN"),
        cpu_svn=_need(tcb, (2, 18), 0x04, "TCB.CPUSVN", 16),
        pce_id=_need(top, (3,), 0x04, "PCE-ID", 2),
        fmspc=_need(top, (4,), 0x04, "FMSPC", 6),
        sgx_type=sgx_type)
