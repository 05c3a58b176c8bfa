"""Bounds-checked reads of little-endian binary structures.

Every read names the field it reads, so a short or malformed buffer raises a
ParseError that says which field, at which offset, of which structure.
"""

from __future__ import annotations

from .errors import ParseError


class Reader:
    """Reads fields at absolute offsets of one structure inside `data`."""

    __slots__ = ("data", "structure", "base")

    def __init__(self, data: bytes, *, structure: str, base: int = 0) -> None:
        self.data = bytes(data)
        self.structure = structure
        self.base = base

    def _span(self, field: str, offset: int, size: int) -> bytes:
        start = self.base + offset
        end = start + size
        if offset < 0 or size < 0 or end > len(self.data):
            raise ParseError(
                self.structure, field, offset,
                f"needs {size} bytes but only {max(0, len(self.data) - start)} remain",
            )
        return self.data[start:end]

    def bytes(self, field: str, offset: int, size: int) -> bytes:
        return self._span(field, offset, size)

    def u8(self, field: str, offset: int) -> int:
        return self._span(field, offset, 1)[0]

    def u16(self, field: str, offset: int) -> int:
        return int.from_bytes(self._span(field, offset, 2), "little")

    def u32(self, field: str, offset: int) -> int:
        return int.from_bytes(self._span(field, offset, 4), "little")

    def u64(self, field: str, offset: int) -> int:
        return int.from_bytes(self._span(field, offset, 8), "little")

    def reserved_zero(self, start: int, end: int, field: str = "reserved") -> None:
        """Check that the "must be zero" range [start, end) is all zero."""
        chunk = self._span(field, start, end - start)
        if any(chunk):
            first = next(i for i, b in enumerate(chunk) if b)
            raise ParseError(self.structure, field, start + first,
                             f"must be zero (range 0x{start:X}-0x{end - 1:X})")

    def fail(self, field: str, offset: int | None, message: str) -> ParseError:
        return ParseError(self.structure, field, offset, message)
