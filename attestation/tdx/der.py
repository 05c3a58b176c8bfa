"""A small bounds-checked DER walker, and the raw parts of certificates and CRLs.

`cryptography` gives the SGX extension only as opaque bytes, and rebuilds
names and to-be-signed bytes as new objects on every access. Reading the few
raw pieces the TDX verifier needs (to-be-signed bytes, issuer and subject
names, signature algorithm, subject CN) straight from the DER is both exact and
cheap. Every read is bounded by its container; malformed input raises
ParseError naming the structure and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..errors import ParseError

SEQUENCE, SET, OID, INTEGER = 0x30, 0x31, 0x06, 0x02
ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")   # AlgorithmIdentifier, no params
_CN_OID = bytes.fromhex("550403")


def tlv(data: bytes, pos: int, structure: str, field: str, limit: int | None = None) -> tuple[int, int, int]:
    """(tag, value start, value end) of the TLV at `pos`, within data[:limit]."""
    limit = len(data) if limit is None else limit
    if pos + 2 > limit:
        raise ParseError(structure, field, pos, "truncated DER header")
    tag, first = data[pos], data[pos + 1]
    start = pos + 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > limit:
            raise ParseError(structure, field, pos, "bad DER length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    else:
        length = first
    if start + length > limit:
        raise ParseError(structure, field, pos, f"DER value of {length} bytes overruns its container")
    return tag, start, start + length


def children(data: bytes, start: int, end: int, structure: str, field: str) -> list[tuple[int, int, int, int]]:
    """(tag, value start, value end, TLV start) of each element in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        if pos + 2 <= end and data[pos + 1] < 0x80 and pos + 2 + data[pos + 1] <= end:   # short form
            vend = pos + 2 + data[pos + 1]
            out.append((data[pos], pos + 2, vend, pos))
        else:
            tag, vstart, vend = tlv(data, pos, structure, field, end)
            out.append((tag, vstart, vend, pos))
        pos = vend
    return out


def _outer(der: bytes, structure: str) -> list[tuple[int, int, int, int]]:
    tag, start, end = tlv(der, 0, structure, "outer SEQUENCE")
    if tag != SEQUENCE or end != len(der):
        raise ParseError(structure, "outer SEQUENCE", 0, "expected exactly one SEQUENCE")
    parts = children(der, start, end, structure, "outer SEQUENCE")
    if len(parts) != 3 or parts[0][0] != SEQUENCE or parts[1][0] != SEQUENCE:
        raise ParseError(structure, "outer SEQUENCE", start, "expected { to-be-signed, algorithm, signature }")
    return parts


@dataclass(frozen=True, slots=True)
class SignedParts:
    """Raw pieces of a certificate or CRL: to-be-signed bytes, algorithm and names (full TLVs)."""

    tbs: bytes
    algorithm: bytes
    issuer: bytes
    subject: bytes        # b"" for a CRL


@lru_cache(maxsize=512)
def certificate_parts(der: bytes) -> SignedParts:
    """TBS, signature algorithm, issuer and subject of a DER certificate."""
    s = "X.509 certificate"
    (_, ts, te, tp), (_, _, ae, ap), _ = _outer(der, s)
    fields = children(der, ts, te, s, "tbsCertificate")
    if fields and fields[0][0] == 0xA0:          # explicit version
        fields = fields[1:]
    if len(fields) < 5:
        raise ParseError(s, "tbsCertificate", ts, "too few fields")
    issuer, subject = fields[2], fields[4]
    return SignedParts(tbs=der[tp:te], algorithm=der[ap:ae], issuer=der[issuer[3]:issuer[2]],
                       subject=der[subject[3]:subject[2]])


@lru_cache(maxsize=64)
def crl_parts(der: bytes) -> SignedParts:
    """TBS, signature algorithm and issuer of a DER CRL."""
    s = "X.509 CRL"
    (_, ts, te, tp), (_, _, ae, ap), _ = _outer(der, s)
    fields = children(der, ts, te, s, "tbsCertList")
    if fields and fields[0][0] == INTEGER:       # version
        fields = fields[1:]
    if len(fields) < 2:
        raise ParseError(s, "tbsCertList", ts, "too few fields")
    issuer = fields[1]
    return SignedParts(tbs=der[tp:te], algorithm=der[ap:ae], issuer=der[issuer[3]:issuer[2]],
                       subject=b"")


def common_name(name: bytes, structure: str = "X.509 name") -> str:
    """The first CN in a DER Name (full TLV), or "" when there is none."""
    _, start, end = tlv(name, 0, structure, "Name")
    for _, rs, re_, _ in children(name, start, end, structure, "RDN"):
        for _, as_, ae, _ in children(name, rs, re_, structure, "AttributeTypeAndValue"):
            items = children(name, as_, ae, structure, "AttributeTypeAndValue")
            if len(items) == 2 and name[items[0][1]:items[0][2]] == _CN_OID:
                return name[items[1][1]:items[1][2]].decode("utf-8", "replace")
    return ""
