"""Find the TEE interface of this guest: configfs-tsm first, then the legacy devices.

Emulation is never detected: `EmulatedAttester` exists only where a caller
constructs it on purpose.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AttesterError
from ..evidence import Tee
from .base import Attester
from .configfs import DEFAULT_ROOT, ConfigfsTsmAttester
from .devices import SevGuestDeviceAttester, TdxGuestDeviceAttester

TDX_DEVICE = "/dev/tdx_guest"
SEV_DEVICE = "/dev/sev-guest"


def _under(sysroot: Path, absolute: str) -> Path:
    return sysroot / absolute.lstrip("/")


def detect_attester(*, tee: Tee | None = None, sysroot: str | Path = "/") -> Attester:
    """The first usable interface: configfs-tsm, /dev/tdx_guest, /dev/sev-guest.

    `tee` restricts the search to one TEE; `sysroot` prefixes every path (tests).

    Raises:
        AttesterError: nothing found; the message names every path that was checked.
    """
    root = Path(sysroot)
    configfs = _under(root, DEFAULT_ROOT)
    tdx_device = _under(root, TDX_DEVICE)
    sev_device = _under(root, SEV_DEVICE)
    if configfs.is_dir():
        return ConfigfsTsmAttester(configfs, tee=tee)
    if tee in (None, "tdx") and tdx_device.exists():
        return TdxGuestDeviceAttester(tdx_device)
    if tee in (None, "snp") and sev_device.exists():
        return SevGuestDeviceAttester(sev_device)
    raise AttesterError(
        "TEE interface",
        f"no TEE found: {DEFAULT_ROOT} absent (mount configfs or use kernel ≥ 6.7), "
        f"{TDX_DEVICE} absent, {SEV_DEVICE} absent (checked under {root})")
