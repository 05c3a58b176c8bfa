"""Golden (RIM) against runtime (SPDM) measurements (NVIDIA nvtrust local GPU verifier, verifier.py).

Golden set: the active entries of the driver RIM and of the VBIOS RIM; an
index active in both is an error. RIM index i is SPDM block i+1. A golden
entry matches when one of its alternatives equals the runtime value byte for
byte (and the RIM size equals the runtime length). Index 35 is skipped when
the report says NVDEC0 is disabled. Every mismatch is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import VerificationError
from .rim import Rim, RimMeasurement
from .spdm import AttestationReport

NVDEC0_INDEX = 35


@dataclass(frozen=True, slots=True)
class Comparison:
    golden_count: int
    mismatching: tuple[int, ...]         # RIM indices (0-based)
    missing: tuple[int, ...]             # golden indices with no runtime block
    skipped: tuple[int, ...]

    @property
    def success(self) -> bool:
        return not self.mismatching and not self.missing


def golden_set(driver: Rim, vbios: Rim) -> dict[int, RimMeasurement]:
    driver_active, vbios_active = driver.active(), vbios.active()
    conflict = sorted(set(driver_active) & set(vbios_active))
    if conflict:
        raise VerificationError("nvidia.rim_index_conflict", "indices active in both the driver and the "
                                "VBIOS RIM", expected="no overlap", actual=",".join(map(str, conflict)))
    return {**driver_active, **vbios_active}


def compare(report: AttestationReport, driver: Rim, vbios: Rim) -> Comparison:
    golden = golden_set(driver, vbios)
    mismatching, missing, skipped = [], [], []
    for index in sorted(golden):
        if index == NVDEC0_INDEX and report.response.opaque.nvdec0_disabled:
            skipped.append(index)
            continue
        runtime = report.measurement(index + 1)
        entry = golden[index]
        if runtime is None:
            missing.append(index)
        elif entry.size != len(runtime) or runtime not in entry.alternatives:
            mismatching.append(index)
    return Comparison(len(golden), tuple(mismatching), tuple(missing), tuple(skipped))
