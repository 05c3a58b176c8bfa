"""Legacy device struct packing (Linux tdx-guest.h / sev-guest.h ioctls) and the attesters over a fake ioctl.

Real ioctls need a confidential VM; here a fake "kernel" reads and writes the
caller's memory through the addresses in the request, as the driver does.
"""

from __future__ import annotations

import ctypes
import errno
import struct

import pytest

from attestation.attesters import SevGuestDeviceAttester, TdxGuestDeviceAttester
from attestation.attesters import devices as dev
from attestation.errors import AttesterError
from attestation.snp.certtable import build_cert_table

NONCE = bytes(range(64))


def _iowr(kind: str, nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord(kind) << 8) | nr


def test_ioctl_numbers_match_the_uapi_macros():
    assert dev.TDX_CMD_GET_REPORT0 == _iowr("T", 1, 64 + 1024) == 0xC4405401
    assert dev.SNP_GET_REPORT == _iowr("S", 0, 32) == 0xC0205300
    assert dev.SNP_GET_EXT_REPORT == _iowr("S", 2, 32) == 0xC0205302


def test_struct_sizes():
    assert dev.GUEST_REQUEST.size == 32
    assert dev.REPORT_REQ.size == 96
    assert dev.EXT_REPORT_REQ.size == 112           # u64 alignment pads after certs_len


def test_guest_request_packing_and_exitinfo2():
    raw = dev.pack_guest_request(0x1000, 0x2000)
    assert raw[0] == 1 and raw[1:8] == bytes(7)
    assert struct.unpack_from("<QQ", raw, 8) == (0x1000, 0x2000)
    failed = raw[:24] + struct.pack("<Q", (1 << 32) | 0x16)
    assert dev.unpack_exitinfo2(failed) == (0x16, 1)


def test_report_requests():
    req = dev.pack_report_req(NONCE, 2)
    assert req[:64] == NONCE and struct.unpack_from("<I", req, 64)[0] == 2 and not any(req[68:])
    ext = dev.pack_ext_report_req(NONCE, 0, 0xABC000, 8192)
    assert struct.unpack_from("<QI", ext, 96) == (0xABC000, 8192)
    with pytest.raises(ValueError, match="page"):
        dev.pack_ext_report_req(NONCE, 0, 0, 100)


def test_report_response_unpacking():
    report = bytes([7]) * 0x4A0
    resp = struct.pack("<II", 0, 0x4A0) + bytes(24) + report + bytes(4000 - 0x20 - 0x4A0)
    assert dev.unpack_report_resp(resp) == report
    with pytest.raises(AttesterError, match="status 0x16"):
        dev.unpack_report_resp(struct.pack("<II", 0x16, 0) + bytes(3992))


def test_tdx_report_req_round_trip():
    buf = dev.pack_tdx_report_req(NONCE)
    assert len(buf) == 1088 and buf[:64] == NONCE
    assert dev.unpack_tdx_report_req(buf[:64] + b"\x01" * 1024) == b"\x01" * 1024


# ------------------------------------------------------------------ fake kernels

class FakeSevGuest:
    """Answers SNP_GET_(EXT_)REPORT by writing into the caller's buffers."""

    def __init__(self, table: bytes, *, busy: int = 0) -> None:
        self.table = table
        self.busy = busy
        self.calls: list[tuple[int, int]] = []

    def __call__(self, fd: int, request: int, address: int) -> int:
        io = ctypes.string_at(address, 32)
        _, req_addr, resp_addr, _ = dev.GUEST_REQUEST.unpack(io)
        user_data = ctypes.string_at(req_addr, 64)
        if request == dev.SNP_GET_EXT_REPORT:
            certs_addr, certs_len = struct.unpack("<QI", ctypes.string_at(req_addr + 96, 12))
            self.calls.append((request, certs_len))
            if certs_len < len(self.table):
                ctypes.memmove(req_addr + 104, struct.pack("<I", len(self.table)), 4)
                return self._fail(address, 1)
            ctypes.memmove(certs_addr, self.table, len(self.table))
        else:
            self.calls.append((request, 0))
        if self.busy:
            self.busy -= 1
            return self._fail(address, 2)
        report = user_data.rjust(0x90, b"\x00").ljust(0x4A0, b"\x00")   # REPORT_DATA at 0x50
        resp = struct.pack("<II", 0, 0x4A0) + bytes(24) + report
        ctypes.memmove(resp_addr, resp, len(resp))
        return 0

    @staticmethod
    def _fail(address: int, vmm_error: int):
        ctypes.memmove(address + 24, struct.pack("<Q", vmm_error << 32), 8)
        raise OSError(errno.EIO, "guest request failed")


@pytest.fixture
def device(tmp_path):
    path = tmp_path / "sev-guest"
    path.write_bytes(b"")
    return path


def test_sev_extended_report_grows_the_certificate_buffer(device):
    table = build_cert_table([("vcek", b"V" * 9000), ("ask", b"A" * 4000), ("ark", b"R" * 4000)])
    kernel = FakeSevGuest(table)
    evidence = SevGuestDeviceAttester(device, ioctl=kernel).collect(NONCE)
    assert evidence.tee == "snp"
    assert evidence.report[0x50:0x90] == NONCE
    assert evidence.certificates == (b"V" * 9000, b"A" * 4000, b"R" * 4000)
    assert [n for _, n in kernel.calls] == [16384, 20480]      # page-aligned growth to fit


def test_sev_report_without_certificates_retries_when_busy(device):
    kernel = FakeSevGuest(b"", busy=1)
    evidence = SevGuestDeviceAttester(device, certificates=False, ioctl=kernel).collect(NONCE)
    assert evidence.certificates == ()
    assert [r for r, _ in kernel.calls] == [dev.SNP_GET_REPORT] * 2


def test_sev_firmware_error_is_reported(device):
    def failing(fd, request, address):
        ctypes.memmove(address + 24, struct.pack("<Q", 0x16), 8)
        raise OSError(errno.EIO, "io")
    with pytest.raises(AttesterError, match="firmware error 0x16"):
        SevGuestDeviceAttester(device, ioctl=failing).collect(NONCE)


def test_missing_device_names_it(tmp_path):
    with pytest.raises(AttesterError) as info:
        SevGuestDeviceAttester(tmp_path / "sev-guest").collect(NONCE)
    assert info.value.missing == str(tmp_path / "sev-guest")


def test_tdx_device_gives_a_tdreport_not_a_quote(tmp_path):
    path = tmp_path / "tdx_guest"
    path.write_bytes(b"")

    def kernel(fd, request, address):
        assert request == dev.TDX_CMD_GET_REPORT0
        report_data = ctypes.string_at(address, 64)
        ctypes.memmove(address + 64 + 128, report_data, 64)        # REPORTMACSTRUCT.REPORTDATA
    attester = TdxGuestDeviceAttester(path, ioctl=kernel)
    assert attester.td_report(NONCE).report_data == NONCE
    with pytest.raises(AttesterError, match="not a quote") as info:
        attester.collect(NONCE)
    assert info.value.missing == "/sys/kernel/config/tsm/report"
