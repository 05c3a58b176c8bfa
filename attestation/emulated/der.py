"""A minimal DER encoder for the vendor certificate extensions the emulator writes.

Only what the Intel SGX PCK extension (1.2.840.113741.1.13.1) and the AMD
VCEK/VLEK extensions (1.3.6.1.4.1.3704.1.*) need: SEQUENCE, OBJECT IDENTIFIER,
INTEGER, OCTET STRING, ENUMERATED, BOOLEAN and IA5String (X.690 §8).
"""

from __future__ import annotations


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _signed_be(value: int) -> bytes:
    """Minimal two's-complement big-endian encoding (X.690 §8.3)."""
    size = max(1, (value.bit_length() + 8) // 8)
    return value.to_bytes(size, "big", signed=True)


def integer(value: int) -> bytes:
    return tlv(0x02, _signed_be(value))


def enumerated(value: int) -> bytes:
    return tlv(0x0A, _signed_be(value))


def boolean(value: bool) -> bytes:
    return tlv(0x01, b"\xff" if value else b"\x00")


def octet_string(value: bytes) -> bytes:
    return tlv(0x04, value)


def ia5_string(value: str) -> bytes:
    return tlv(0x16, value.encode("ascii"))


def sequence(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))
