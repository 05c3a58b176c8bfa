"""SecureBuffer: plaintext memory that is locked as it is touched, left out of core dumps, and wiped on close."""

from __future__ import annotations

import ctypes
import mmap
import os

import pytest

from enclave.secrets import SecureBuffer

MIB = 1 << 20


def mapping(buffer: SecureBuffer) -> dict[str, str]:
    """The /proc/self/smaps fields of the mapping that holds `buffer`."""
    address = buffer._address
    fields: dict[str, str] = {}
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(x, 16) for x in head.split("-"))
                inside = start <= address < end
            elif inside:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
    assert fields, "the buffer's mapping is not in /proc/self/smaps"
    return fields


def kib(value: str) -> int:
    return int(value.split()[0])


needs_smaps = pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/self/smaps")


@needs_smaps
def test_pages_are_locked_when_first_touched_not_all_at_once():
    with SecureBuffer(8 * MIB) as buffer:
        if not buffer.locked:
            pytest.skip("mlock is not allowed here (RLIMIT_MEMLOCK)")
        before = mapping(buffer)
        flags = before["VmFlags"].split()
        assert "dd" in flags                                   # MADV_DONTDUMP: never in a core dump
        assert "lo" in flags and "lf" in flags                 # locked, on fault (mlock2 MLOCK_ONFAULT)
        assert kib(before["Rss"]) == 0                         # nothing faulted in by the constructor

        buffer.populate(MIB + 5, 3 * MIB - 7)                  # unaligned: whole pages under the range
        after = mapping(buffer)
        assert kib(after["Rss"]) == 2 * MIB // 1024
        assert kib(after["Locked"]) == 2 * MIB // 1024         # touched pages are locked at once

        buffer.view[-1:] = b"\x01"                             # a write faults (and locks) its page too
        assert kib(mapping(buffer)["Locked"]) == 2 * MIB // 1024 + mmap.PAGESIZE // 1024


def test_populate_at_the_edges_stays_inside_the_mapping():
    with SecureBuffer(3 * mmap.PAGESIZE + 10) as buffer:
        buffer.populate(0, 0)
        buffer.populate(buffer.size - 1, buffer.size + 10 * mmap.PAGESIZE)
        buffer.view[:] = b"\xaa" * buffer.size
        assert bytes(buffer.view) == b"\xaa" * buffer.size


def test_close_wipes_and_a_second_close_or_wipe_does_nothing():
    buffer = SecureBuffer(MIB + 3)
    buffer.view[:] = os.urandom(buffer.size)
    raw = (ctypes.c_char * buffer.size).from_address(buffer._address)
    buffer.wipe()
    assert raw.raw == bytes(buffer.size)                       # every byte zero before the unmap
    buffer.close()
    buffer.close()
    buffer.wipe()                                              # unmapped: must not write to the old address
