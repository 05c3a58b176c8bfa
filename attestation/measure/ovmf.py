"""The GUIDed table at the end of an OVMF/TDVF image (edk2 OvmfPkg/ResetVector).

Layout, read backwards from the end of the image: the last 32 bytes are the
reset vector; before them is the footer entry (GUID 96b582de-…, preceded by a
u16 length that covers the whole table including the footer). Each entry is
`data ‖ u16 length ‖ GUID`, with the length covering data, length and GUID, so
the table is walked from its end towards its start.
"""

from __future__ import annotations

import uuid

from ..binary import Reader
from ..errors import ParseError

FOOTER_GUID = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d")
BYTES_AFTER_FOOTER = 32
_ENTRY_HEADER = 18          # u16 length + 16-byte GUID


def footer_table(image: bytes, *, structure: str = "OVMF") -> dict[uuid.UUID, bytes]:
    """Every entry of the GUIDed table: GUID -> entry data. ParseError if the table is absent or malformed."""
    r = Reader(image, structure=structure)
    end = len(image) - BYTES_AFTER_FOOTER
    if end < _ENTRY_HEADER:
        raise ParseError(structure, "footer", None, f"image of {len(image)} bytes is too small for a GUIDed table")
    guid = uuid.UUID(bytes_le=r.bytes("footer GUID", end - 16, 16))
    if guid != FOOTER_GUID:
        raise ParseError(structure, "footer GUID", end - 16,
                         f"expected {FOOTER_GUID} (the OVMF GUIDed table footer), found {guid}")
    table_size = r.u16("footer length", end - _ENTRY_HEADER)
    start = end - table_size
    if table_size < _ENTRY_HEADER or start < 0:
        raise ParseError(structure, "footer length", end - _ENTRY_HEADER,
                         f"table length {table_size} does not fit the image")
    entries: dict[uuid.UUID, bytes] = {}
    cursor = end - _ENTRY_HEADER          # the footer entry itself is not an entry
    while cursor > start:
        if cursor - start < _ENTRY_HEADER:
            raise ParseError(structure, "table entry", cursor, "truncated entry header")
        size = r.u16("entry length", cursor - _ENTRY_HEADER)
        if size < _ENTRY_HEADER or cursor - size < start:
            raise ParseError(structure, "entry length", cursor - _ENTRY_HEADER,
                             f"entry length {size} is outside 18..{cursor - start}")
        guid = uuid.UUID(bytes_le=r.bytes("entry GUID", cursor - 16, 16))
        entries[guid] = r.bytes("entry data", cursor - size, size - _ENTRY_HEADER)
        cursor -= size
    return entries
