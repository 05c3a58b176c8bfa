"""Legacy guest devices: /dev/tdx_guest and /dev/sev-guest (Linux include/uapi/linux/tdx-guest.h, sev-guest.h).

The struct layouts are packed and unpacked by pure functions (tested directly);
the device classes add the ioctl calls. `ioctl(fd, request, address)` is
injectable: the argument is always the address of a ctypes buffer, as the
kernel expects a pointer.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import AttesterError
from ..evidence import Evidence, Tee
from .base import check_report_data
from .certtable import certificates_from_auxblob

TDX_CMD_GET_REPORT0 = 0xC4405401          # _IOWR('T', 1, struct tdx_report_req)
TDX_REPORT_REQ_SIZE = 64 + 1024
TDREPORT_SIZE = 1024

SNP_GET_REPORT = 0xC0205300               # _IOWR('S', 0, struct snp_guest_request_ioctl)
SNP_GET_EXT_REPORT = 0xC0205302           # _IOWR('S', 2, …)
GUEST_REQUEST = struct.Struct("<B7xQQQ")  # msg_version, req_data, resp_data, exitinfo2 (32 B)
REPORT_REQ = struct.Struct("<64sI28x")    # user_data, vmpl, reserved (96 B)
EXT_REPORT_REQ = struct.Struct("<64sI28xQI4x")   # snp_report_req, certs_address, certs_len (112 B)
CERTS_LEN_OFFSET = 96 + 8
REPORT_RESP_SIZE = 4000
REPORT_OFFSET = 0x20
SNP_REPORT_SIZE = 0x4A0
PAGE = 4096
VMM_ERR_INVALID_LEN = 1
VMM_ERR_BUSY = 2

Ioctl = Callable[[int, int, int], object]


def _default_ioctl(fd: int, request: int, address: int) -> object:
    return fcntl.ioctl(fd, request, address)


# ------------------------------------------------------------------ struct packing

def pack_tdx_report_req(report_data: bytes) -> bytes:
    return check_report_data(report_data) + bytes(TDREPORT_SIZE)


def unpack_tdx_report_req(buffer: bytes) -> bytes:
    """The 1024-byte TDREPORT the kernel wrote after the report data."""
    if len(buffer) != TDX_REPORT_REQ_SIZE:
        raise ValueError(f"tdx_report_req is {TDX_REPORT_REQ_SIZE} bytes, got {len(buffer)}")
    return bytes(buffer[64:])


def pack_guest_request(req_address: int, resp_address: int, msg_version: int = 1) -> bytes:
    return GUEST_REQUEST.pack(msg_version, req_address, resp_address, 0)


def unpack_exitinfo2(buffer: bytes) -> tuple[int, int]:
    """(firmware error, VMM error) from snp_guest_request_ioctl.exitinfo2."""
    exitinfo2 = GUEST_REQUEST.unpack(bytes(buffer[:GUEST_REQUEST.size]))[3]
    return exitinfo2 & 0xFFFFFFFF, exitinfo2 >> 32


def pack_report_req(report_data: bytes, vmpl: int) -> bytes:
    return REPORT_REQ.pack(check_report_data(report_data), vmpl)


def pack_ext_report_req(report_data: bytes, vmpl: int, certs_address: int, certs_len: int) -> bytes:
    if certs_len % PAGE:
        raise ValueError("certs_len must be a multiple of the page size")
    return EXT_REPORT_REQ.pack(check_report_data(report_data), vmpl, certs_address, certs_len)


def unpack_report_resp(buffer: bytes) -> bytes:
    """The ATTESTATION_REPORT inside snp_report_resp (status u32, size u32, 24 reserved, report)."""
    status, size = struct.unpack_from("<II", buffer, 0)
    if status != 0:
        raise AttesterError("/dev/sev-guest", f"firmware returned status 0x{status:X} for the report request")
    if size < SNP_REPORT_SIZE or REPORT_OFFSET + size > len(buffer):
        raise AttesterError("/dev/sev-guest", f"report size {size} is not a valid ATTESTATION_REPORT size")
    return bytes(buffer[REPORT_OFFSET:REPORT_OFFSET + size])


# ------------------------------------------------------------------ devices

@dataclass(frozen=True, slots=True)
class TdReport:
    """A TDREPORT (1024 bytes): MAC'd for this platform only, not a quote."""

    raw: bytes

    @property
    def report_data(self) -> bytes:
        return self.raw[128:192]    # REPORTMACSTRUCT.REPORTDATA


class TdxGuestDeviceAttester:
    """/dev/tdx_guest: only a TDREPORT is available here; a quote needs configfs-tsm or the QGS."""

    tee: Tee = "tdx"

    def __init__(self, device: str | Path = "/dev/tdx_guest", *, ioctl: Ioctl = _default_ioctl) -> None:
        self.device = Path(device)
        self._ioctl = ioctl

    def td_report(self, report_data: bytes) -> TdReport:
        buffer = ctypes.create_string_buffer(pack_tdx_report_req(report_data), TDX_REPORT_REQ_SIZE)
        fd = _open(self.device)
        try:
            self._ioctl(fd, TDX_CMD_GET_REPORT0, ctypes.addressof(buffer))
        except OSError as exc:
            raise AttesterError(str(self.device), f"TDX_CMD_GET_REPORT0 failed: {_errno(exc)}") from None
        finally:
            os.close(fd)
        return TdReport(unpack_tdx_report_req(buffer.raw))

    def collect(self, report_data: bytes) -> Evidence:
        check_report_data(report_data)
        raise AttesterError("/sys/kernel/config/tsm/report",
                            f"{self.device} gives only a TDREPORT, which is not a quote and cannot "
                            "be verified remotely; a DCAP quote needs configfs-tsm (kernel ≥ 6.7, "
                            "`mount -t configfs none /sys/kernel/config`) and a host quote service (QGS)")


class SevGuestDeviceAttester:
    """/dev/sev-guest: SNP_GET_EXT_REPORT (report + certificates) or SNP_GET_REPORT."""

    tee: Tee = "snp"

    def __init__(self, device: str | Path = "/dev/sev-guest", *, vmpl: int = 0,
                 certificates: bool = True, ioctl: Ioctl = _default_ioctl,
                 max_attempts: int = 4) -> None:
        self.device = Path(device)
        self.vmpl = vmpl
        self.certificates = certificates
        self._ioctl = ioctl
        self.max_attempts = max_attempts

    def collect(self, report_data: bytes) -> Evidence:
        check_report_data(report_data)
        fd = _open(self.device)
        try:
            if not self.certificates:
                return Evidence("snp", self._report(fd, report_data))
            report, table = self._ext_report(fd, report_data)
            return Evidence("snp", report, certificates_from_auxblob(table))
        finally:
            os.close(fd)

    def _call(self, fd: int, request: int, req, resp) -> tuple[int, int] | None:
        """Run one guest request; None on success, else (fw_error, vmm_error)."""
        io = ctypes.create_string_buffer(pack_guest_request(ctypes.addressof(req), ctypes.addressof(resp)),
                                         GUEST_REQUEST.size)
        try:
            self._ioctl(fd, request, ctypes.addressof(io))
        except OSError as exc:
            fw_error, vmm_error = unpack_exitinfo2(io.raw)
            if vmm_error in (VMM_ERR_INVALID_LEN, VMM_ERR_BUSY):
                return fw_error, vmm_error
            raise AttesterError(str(self.device), f"guest request 0x{request:X} failed: {_errno(exc)}, "
                                f"firmware error 0x{fw_error:X}, VMM error 0x{vmm_error:X}") from None
        return None

    def _report(self, fd: int, report_data: bytes) -> bytes:
        req = ctypes.create_string_buffer(pack_report_req(report_data, self.vmpl), REPORT_REQ.size)
        resp = ctypes.create_string_buffer(REPORT_RESP_SIZE)
        for _ in range(self.max_attempts):
            if self._call(fd, SNP_GET_REPORT, req, resp) is None:
                return unpack_report_resp(resp.raw)
        raise AttesterError(str(self.device), "the host stayed busy; SNP_GET_REPORT did not complete")

    def _ext_report(self, fd: int, report_data: bytes) -> tuple[bytes, bytes]:
        certs_len = 4 * PAGE
        resp = ctypes.create_string_buffer(REPORT_RESP_SIZE)
        for _ in range(self.max_attempts):
            certs = ctypes.create_string_buffer(certs_len)
            req = ctypes.create_string_buffer(
                pack_ext_report_req(report_data, self.vmpl, ctypes.addressof(certs), certs_len),
                EXT_REPORT_REQ.size)
            error = self._call(fd, SNP_GET_EXT_REPORT, req, resp)
            if error is None:
                return unpack_report_resp(resp.raw), certs.raw
            if error[1] == VMM_ERR_INVALID_LEN:      # the kernel wrote the size it needs
                needed = struct.unpack_from("<I", req.raw, CERTS_LEN_OFFSET)[0]
                certs_len = -(-needed // PAGE) * PAGE if needed > certs_len else certs_len * 2
        raise AttesterError(str(self.device), "SNP_GET_EXT_REPORT did not complete: certificate "
                            "buffer kept growing or the host stayed busy")


def _open(device: Path) -> int:
    try:
        return os.open(device, os.O_RDWR)
    except FileNotFoundError:
        raise AttesterError(str(device), "absent (not a confidential VM, or the guest driver is not loaded)") from None
    except OSError as exc:
        raise AttesterError(str(device), f"cannot open: {_errno(exc)}") from None


def _errno(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, str(exc))
