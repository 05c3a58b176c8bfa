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


class EmulatedGpuAttester:
    """Evidence of `count` emulated GPUs (the emulated vendor's NVIDIA half); `cc_mode` is what NVML
    would report, `spec` goes to the SPDM report generator (driver_version, measurements, …)."""

    tee = "nvidia"

    def __init__(self, vendor: EmulatedVendor, *, count: int = 1, cc_mode: str | None = "on", **spec: Any) -> None:
        if not 1 <= count <= 8:
            raise ValueError("an emulated VM has 1 to 8 GPUs")
        self.nvidia = vendor.nvidia
        self.count = count
        self.cc_mode = cc_mode
        self.spec = spec

    def collect(self, nonce: bytes) -> tuple:
        return tuple(self.nvidia.evidence(nonce, gpu=i, cc_mode=self.cc_mode, **self.spec) for i in range(self.count))
