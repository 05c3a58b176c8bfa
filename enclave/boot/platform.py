"""The platform the enclave attests as: its attester and, for emulated evidence, the collateral it serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from attestation.attesters import Attester


@dataclass(frozen=True, slots=True)
class Platform:
    attester: Attester
    tdx_collateral: Callable | None = None       # served to clients with the evidence (emulated vendors)
    snp_crls: Callable | None = None

    @classmethod
    def detect(cls, tee: str | None = None) -> Platform:
        """The TEE interface of this machine (raises attestation.errors.AttesterError where there is none)."""
        from attestation.attesters import detect_attester
        return cls(detect_attester(tee=tee))

    @classmethod
    def emulated(cls, vendor_dir: Path, tee: str) -> Platform:
        """Evidence signed by the emulated vendor in `vendor_dir` (created on first use): development only."""
        from attestation.attesters import EmulatedAttester
        from attestation.emulated import EmulatedVendor

        from ..server.attest import emulated_collateral
        vendor = EmulatedVendor.open(vendor_dir)
        tdx, crls = emulated_collateral(vendor)
        return cls(EmulatedAttester(vendor, tee), tdx, crls)

    @property
    def tee(self) -> Any:
        return self.attester.tee
