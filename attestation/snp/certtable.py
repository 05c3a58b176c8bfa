"""The GHCB certificate table that accompanies an extended SNP report.

Layout (GHCB spec 56421, go-sev-guest `abi.go`): a list of 24-byte entries
`GUID (16 bytes, RFC 4122 order as printed) ‖ offset u32 ‖ length u32`,
terminated by an all-zero entry, followed by the certificates. Offsets count
from the start of the table and must point past the entry list.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from ..binary import Reader

ENTRY_SIZE = 24
STRUCTURE = "SNP certificate table"

GUIDS = {
    "vcek": uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"),
    "vlek": uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"),
    "ask": uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"),   # ASK or ASVK
    "ark": uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"),
    "extra_platform_info": uuid.UUID("ecae0c0f-9502-43b1-afa2-0ae2e0d565b6"),
}
_KIND_BY_GUID = {guid.bytes: kind for kind, guid in GUIDS.items()}
_ZERO_ENTRY = bytes(ENTRY_SIZE)


def looks_like_cert_table(data: bytes) -> bool:
    """True when `data` starts with a known GUID or is all zero (an empty table plus padding)."""
    if len(data) < ENTRY_SIZE:
        return False
    return data[:16] in _KIND_BY_GUID or not any(data)


def _entries(r: Reader) -> list[tuple[bytes, int, int, int]]:
    """Read (guid, offset, length, entry offset) until the all-zero terminator."""
    entries = []
    pos = 0
    while True:
        raw = r.bytes("entry", pos, ENTRY_SIZE)
        if raw == _ZERO_ENTRY:
            return entries
        entries.append((raw[:16], r.u32("offset", pos + 16), r.u32("length", pos + 20), pos))
        pos += ENTRY_SIZE


def parse_cert_table(data: bytes) -> dict[str, bytes]:
    """Parse a certificate table → {kind: DER}; kind is "vcek", "vlek", "ask", "ark", … or the GUID.

    Raises:
        ParseError: missing terminator, an entry pointing outside the data or into the
            entry list, or the same GUID twice.
    """
    r = Reader(data, structure=STRUCTURE)
    entries = _entries(r)
    header_end = (len(entries) + 1) * ENTRY_SIZE
    table: dict[str, bytes] = {}
    for guid, offset, length, at in entries:
        kind = _KIND_BY_GUID.get(guid, str(uuid.UUID(bytes=guid)))
        if kind in table:
            raise r.fail("GUID", at, f"{kind} appears twice")
        if offset < header_end:
            raise r.fail("offset", at + 16,
                         f"{kind} offset 0x{offset:X} points into the entry list (ends 0x{header_end:X})")
        if length == 0:
            raise r.fail("length", at + 20, f"{kind} has length 0")
        table[kind] = r.bytes(f"{kind} certificate", offset, length)
    return table


def build_cert_table(entries: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> bytes:
    """Build a certificate table from (kind or GUID string, DER) pairs, in the given order."""
    items = list(entries.items()) if isinstance(entries, Mapping) else list(entries)
    guids = [GUIDS[kind] if kind in GUIDS else uuid.UUID(kind) for kind, _ in items]
    offset = (len(items) + 1) * ENTRY_SIZE
    header = bytearray()
    for guid, (_, blob) in zip(guids, items):
        header += guid.bytes + offset.to_bytes(4, "little") + len(blob).to_bytes(4, "little")
        offset += len(blob)
    header += _ZERO_ENTRY
    return bytes(header) + b"".join(blob for _, blob in items)
