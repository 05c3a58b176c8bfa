"""The Attester protocol: collect evidence inside a guest, bound to caller data."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..evidence import Evidence, Tee

REPORT_DATA_SIZE = 64


@runtime_checkable
class Attester(Protocol):
    """Something that can produce evidence for one TEE."""

    @property
    def tee(self) -> Tee:
        ...

    def collect(self, report_data: bytes) -> Evidence:
        """Evidence whose report data is exactly `report_data` (64 bytes)."""
        ...


def check_report_data(report_data: bytes) -> bytes:
    """Report data must be exactly 64 bytes: never padded or truncated silently."""
    if not isinstance(report_data, (bytes, bytearray)) or len(report_data) != REPORT_DATA_SIZE:
        size = len(report_data) if isinstance(report_data, (bytes, bytearray)) else type(report_data).__name__
        raise ValueError(f"report data must be exactly {REPORT_DATA_SIZE} bytes, got {size}")
    return bytes(report_data)
