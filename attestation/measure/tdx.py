"""Expected TDX measurements of a TD from its firmware, kernel, initrd and command line."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MeasureError
from .rtmr import RtmrEvent, replay, rtmr1_events, rtmr2_events
from .tdvf import PageAddOrder, Tdvf, mrtd, parse_tdvf


@dataclass(frozen=True, slots=True)
class TdxMeasurements:
    """MRTD always; RTMR[1] and RTMR[2] only for a direct kernel boot (None otherwise)."""

    tdvf: Tdvf
    mrtd: bytes
    rtmr1: bytes | None
    rtmr2: bytes | None
    events: tuple[RtmrEvent, ...]


def tdx_measurements(firmware: bytes, *, kernel: bytes | None = None, initrd: bytes | None = None,
                     cmdline: str = "", page_add_order: PageAddOrder | str = PageAddOrder.single_pass
                     ) -> TdxMeasurements:
    """MRTD from the TDVF image; with a kernel, RTMR[1] and RTMR[2] of OVMF's direct boot (rtmr.py)."""
    tdvf = parse_tdvf(firmware)
    if kernel is None:
        if initrd is not None or cmdline:
            raise MeasureError("kernel", "an initrd or a command line is measured only with a kernel (direct boot)")
        return TdxMeasurements(tdvf, mrtd(tdvf, page_add_order), None, None, ())
    events = rtmr1_events(kernel) + rtmr2_events(cmdline, initrd)
    return TdxMeasurements(tdvf, mrtd(tdvf, page_add_order),
                           replay([e.digest for e in events if e.rtmr == 1]),
                           replay([e.digest for e in events if e.rtmr == 2]), events)
