"""EmulatedAttester: evidence from the emulated vendor, only when explicitly asked for.

Never returned by `detect_attester`; a caller constructs it on purpose, and the
evidence verifies only against the emulated vendor's anchors.
"""

from __future__ import annotations

from typing import Any

from ..emulated.vendor import EmulatedVendor
from ..evidence import Evidence, Tee
from .base import check_report_data


class EmulatedAttester:
    """Collects emulated evidence; `measurements` are passed to the vendor's generator
    (TDX: mrtd, rtmr0..3, td_attributes, version, …; SNP: product, measurement, host_data, …)."""

    def __init__(self, vendor: EmulatedVendor, tee: Tee, **measurements: Any) -> None:
        if tee not in ("tdx", "snp"):
            raise ValueError(f"unsupported TEE {tee!r}; expected 'tdx' or 'snp'")
        self.vendor = vendor
        self._tee: Tee = tee
        self.measurements = measurements

    @property
    def tee(self) -> Tee:
        return self._tee

    def collect(self, report_data: bytes) -> Evidence:
        return self.vendor.evidence(self._tee, check_report_data(report_data), **self.measurements)
