"""Guest-side attesters: collect TEE evidence inside a confidential VM.

`detect_attester()` picks configfs-tsm (kernel ≥ 6.7), else the legacy
/dev/tdx_guest or /dev/sev-guest device. `EmulatedAttester` is used only when
a caller asks for it explicitly.
"""

from __future__ import annotations

from .base import Attester, check_report_data
from .configfs import ConfigfsTsmAttester, TsmFilesystem
from .detect import detect_attester
from .devices import SevGuestDeviceAttester, TdReport, TdxGuestDeviceAttester
from .emulated import EmulatedAttester, EmulatedGpuAttester
from .nvidia import NvmlGpuAttester

__all__ = ["Attester", "ConfigfsTsmAttester", "EmulatedAttester", "EmulatedGpuAttester", "NvmlGpuAttester",
           "SevGuestDeviceAttester", "TdReport", "TdxGuestDeviceAttester", "TsmFilesystem", "check_report_data",
           "detect_attester"]
