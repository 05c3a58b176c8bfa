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
from typing import Literal, Mapping, Sequence, TypeVar

from cryptography import x509

from ..errors import ParseError
from . import der

SGX_EXTENSION_OID = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
_SGX = "1.2.840.113741.1.13.1"
_SGX_RAW = bytes.fromhex("2a864886f84d010d01")   # DER content of the OID above
LEAF_CN = "Intel SGX PCK Certificate"
CA_CNS = {"Intel SGX PCK Platform CA": "platform", "Intel SGX PCK Processor CA": "processor"}
SGX_TYPES = {0: "Standard", 1: "Scalable", 2: "ScalableWithIntegrity"}

S_CHAIN = "TDX PCK certificate chain"
S_EXT = "PCK SGX extension"

K = TypeVar("K")

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
    return [raw for raw, _ in split_pem_chain_known(pem, structure, None)]


def split_pem_chain_known(pem: bytes, structure: str, known: Mapping[bytes, K] | None
                          ) -> list[tuple[bytes, K | None]]:
    """Like split_pem_chain, with each block's entry in `known` (keyed by the exact text
    between the BEGIN and END lines, which must be strict canonical PEM; its DER is `.der`),
    or None when the block is not there and was decoded."""
    text = pem.rstrip(b"\x00")
    out: list[tuple[bytes, K | None]] = []
    pos = 0
    while pos < len(text):
        if not text.startswith(_BEGIN, pos):
            raise ParseError(structure, f"certificate[{len(out)}]", pos,
                             "expected a '-----BEGIN CERTIFICATE-----' line")
        end = text.find(_END, pos)
        if end < 0:
            raise ParseError(structure, f"certificate[{len(out)}]", pos, "no '-----END CERTIFICATE-----' line")
        body = text[pos + len(_BEGIN):end]
        hit = known.get(body) if known else None
        if hit is not None:
            out.append((hit.der, hit))  # type: ignore[attr-defined]
        else:
            out.append((_decode_b64(body, structure, f"certificate[{len(out)}]", pos), None))
        pos = end + len(_END)
        while text.startswith(b"\n", pos) or text.startswith(b"\r\n", pos):
            pos += 1 if text[pos] == 0x0A else 2
    if not out:
        raise ParseError(structure, "certificate[0]", 0, "no certificate in the chain")
    return out


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
    return _load_ders(split_pem_chain(pem, structure), structure)


def _load_ders(ders: list[bytes], structure: str) -> tuple[x509.Certificate, ...]:
    certs = []
    for i, raw in enumerate(ders):
        try:
            certs.append(x509.load_der_x509_certificate(raw))
        except Exception as exc:  # noqa: BLE001 - cryptography raises several types (InvalidVersion...)
            raise ParseError(structure, f"certificate[{i}]", None,
                             f"not a valid X.509 certificate: {exc}") from None
    return tuple(certs)


def parse_pck_chain(pem: bytes) -> PckChain:
    """The quote's PCK chain: leaf, PCK CA, root, with the leaf's SGX extension decoded."""
    ders = split_pem_chain(pem)
    check_pck_chain_length(len(ders))
    return pck_chain_of(_load_ders(ders, S_CHAIN), ders)


def check_pck_chain_length(count: int) -> None:
    if count != 3:
        raise ParseError(S_CHAIN, "certificates", None,
                         f"{count} certificates; expected PCK leaf, PCK CA and root")


def pck_chain_of(certs: Sequence[x509.Certificate], ders: Sequence[bytes],
                 parts: Sequence[der.SignedParts | None] = (None, None)) -> PckChain:
    """The PCK chain of three loaded certificates (`ders`: their exact DER; `parts`: the
    already read der.certificate_parts of the first two, where known)."""
    leaf, inter, root = certs
    leaf_cn = der.common_name((parts[0] or der.certificate_parts(ders[0])).subject, S_CHAIN)
    if leaf_cn != LEAF_CN:
        raise ParseError(S_CHAIN, "certificate[0].subject.CN", None, f"{leaf_cn!r}; expected {LEAF_CN!r}")
    inter_cn = der.common_name((parts[1] or der.certificate_parts(ders[1])).subject, S_CHAIN)
    ca = CA_CNS.get(inter_cn)
    if ca is None:
        raise ParseError(S_CHAIN, "certificate[1].subject.CN", None,
                         f"{inter_cn!r} is not a PCK Platform or Processor CA")
    try:
        ext = leaf.extensions.get_extension_for_oid(SGX_EXTENSION_OID).value
    except x509.ExtensionNotFound:
        raise ParseError(S_CHAIN, "certificate[0].extensions", None,
                         "the PCK certificate has no SGX extension") from None
    except Exception as exc:  # noqa: BLE001 - malformed or duplicate extensions
        raise ParseError(S_CHAIN, "certificate[0].extensions", None, str(exc)) from None
    return PckChain(leaf=leaf, intermediate=inter, root=root, ca=ca,  # type: ignore[arg-type]
                    extension=parse_sgx_extension(ext.value))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- SGX extension
#
# The extension is a SEQUENCE of { OID, value } pairs, the TCB entry nesting 18 more.
# Each OID below the SGX arc is unique in it, so each value is found by its
# OID's TLV and read with a bounds-checked DER read.

def _needle(arc: tuple[int, ...]) -> bytes:
    oid = _SGX_RAW + bytes(arc)          # every arc below the SGX OID is < 128: one byte each
    return bytes((der.OID, len(oid))) + oid


_NEEDLES = {arc: _needle(arc) for arc in [(1,), (3,), (4,), (5,)] + [(2, i) for i in range(1, 19)]}


def _value(ext: bytes, arc: tuple[int, ...], tag: int, name: str, size: int | None = None) -> bytes:
    needle = _NEEDLES.get(arc) or _needle(arc)
    at = ext.find(needle)
    if at < 0:
        raise ParseError(S_EXT, name, None, f"missing (OID {_SGX}.{'.'.join(map(str, arc))})")
    if ext.find(needle, at + 1) >= 0:
        raise ParseError(S_EXT, name, at, "appears more than once")
    pos = at + len(needle)
    if pos + 2 <= len(ext) and not ext[pos + 1] & 0x80:   # short-form length: read inline
        got_tag, start = ext[pos], pos + 2
        end = start + ext[pos + 1]
        if end > len(ext):
            got_tag, start, end = der.tlv(ext, pos, S_EXT, name)   # raises the overrun error
    else:
        got_tag, start, end = der.tlv(ext, pos, S_EXT, name)
    if got_tag != tag or (size is not None and end - start != size):
        raise ParseError(S_EXT, name, at, f"unexpected encoding (tag 0x{got_tag:02x}, {end - start} bytes)")
    return ext[start:end]


def _uint(raw: bytes, name: str) -> int:
    if not raw or raw[0] & 0x80 or len(raw) > 4:
        raise ParseError(S_EXT, name, None, "not a small non-negative INTEGER")
    return int.from_bytes(raw, "big")


_COMP_NAMES = tuple((i, f"TCB.COMP{i:02d}_SVN") for i in range(1, 17))


_COMP_NEEDLES = tuple((_NEEDLES[(2, i)], (2, i), name) for i, name in _COMP_NAMES)


def _components(value: bytes) -> tuple[int, ...]:
    """TCB.COMP01..16_SVN: `_uint(_value(...))` of each, with the usual one-byte INTEGER read inline."""
    comps = []
    size = len(value)
    for needle, arc, name in _COMP_NEEDLES:
        at = value.find(needle)
        pos = at + 13                     # len(needle)
        if at >= 0 and pos + 3 <= size and value[pos] == der.INTEGER and value[pos + 1] == 1 \
                and value[pos + 2] < 0x80 and value.find(needle, at + 1) < 0:
            comps.append(value[pos + 2])
        else:                             # anything else: the general read (and its error)
            comps.append(_uint(_value(value, arc, der.INTEGER, name), name))
    return tuple(comps)


def parse_sgx_extension(value: bytes) -> PckExtension:
    """Decode the DER value of the SGX extension (spec §6)."""
    tag, _, end = der.tlv(value, 0, S_EXT, "SGX extension")
    if tag != der.SEQUENCE or end != len(value):
        raise ParseError(S_EXT, "SGX extension", 0, "expected one SEQUENCE")
    comps = _components(value)
    sgx_type = None
    if value.find(_NEEDLES[(5,)]) >= 0:
        sgx_type = SGX_TYPES.get(_uint(_value(value, (5,), 0x0A, "SGX type"), "SGX type"), "unknown")
    return PckExtension(
        ppid=_value(value, (1,), 0x04, "PPID", 16),
        tcb_components=comps,
        pce_svn=_uint(_value(value, (2, 17), der.INTEGER, "TCB.PCESVN"), "TCB.PCESVN"),
        cpu_svn=_value(value, (2, 18), 0x04, "TCB.CPUSVN", 16),
        pce_id=_value(value, (3,), 0x04, "PCE-ID", 2),
        fmspc=_value(value, (4,), 0x04, "FMSPC", 6),
        sgx_type=sgx_type)
