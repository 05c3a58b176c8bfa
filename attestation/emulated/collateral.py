"""EmulatedCollateral: a CollateralSource backed by the emulated vendor.

Like Intel's PCS and AMD's KDS for emulated platforms: TDX collateral and SNP
CRLs are issued on request with validity windows around the injected clock's
"now" (never the system clock deep inside), VCEKs/VLEKs are derived from the
chip ID and TCB the verifier asks for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from ..collateral import PckCa, SnpSigner, SnpTcbParts, TdxCollateral
from ..errors import CollateralError
from .vendor import EmulatedVendor

Clock = Callable[[], dt.datetime]


class EmulatedCollateral:
    """Collateral for evidence signed by `vendor`; windows are `clock()` ± 15 days.

    `clock` may be a callable or a fixed datetime.
    """

    def __init__(self, vendor: EmulatedVendor, clock: Clock | dt.datetime) -> None:
        self.vendor = vendor
        self._clock: Clock = (lambda: clock) if isinstance(clock, dt.datetime) else clock

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        if ca != "platform":
            raise CollateralError(f"TDX collateral for FMSPC {fmspc}",
                                  "the emulated vendor has only a PCK Platform CA")
        return self.vendor.tdx_collateral(fmspc, at=self._clock())

    def snp_endorsement(self, product: str, signer: SnpSigner, chip_id: bytes,
                        tcb: SnpTcbParts) -> bytes:
        try:
            return self.vendor.snp_endorsement(product, signer, chip_id, tcb)
        except ValueError as exc:
            raise CollateralError(f"{signer.upper()} for emulated {product}", str(exc)) from None

    def snp_crl(self, product: str, signer: SnpSigner) -> bytes:
        try:
            return self.vendor.snp_crl(product, signer, at=self._clock())
        except ValueError as exc:
            raise CollateralError(f"CRL for the emulated AMD {product} hierarchy", str(exc)) from None
