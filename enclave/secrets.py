"""Key and plaintext buffers that stay in memory: redacted reprs, wiping, no core dumps.

Best effort, as the secret-hygiene invariant asks: buffers we own are wiped when we
are done; plaintext lives in anonymous mappings marked MADV_DONTDUMP (left out
of core dumps) and, where RLIMIT_MEMLOCK allows, locked against swapping.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import secrets as _secrets

KEY_SIZE = 32

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class DataKey:
    """A 256-bit data-encryption key. Its repr and str never show the bytes."""

    __slots__ = ("_buf",)

    def __init__(self, material: bytes | bytearray) -> None:
        if len(material) != KEY_SIZE:
            raise ValueError(f"a data key is {KEY_SIZE} bytes, not {len(material)}")
        self._buf = bytearray(material)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(_secrets.token_bytes(KEY_SIZE))

    def bytes(self) -> bytes:
        if not any(self._buf):
            raise ValueError("this data key has been wiped")
        return bytes(self._buf)

    def wipe(self) -> None:
        for i in range(len(self._buf)):
            self._buf[i] = 0

    def __repr__(self) -> str:
        return "DataKey(<redacted>)"

    __str__ = __repr__

    def __reduce__(self):  # never pickled into a worker's argv or a file by accident
        raise TypeError("DataKey cannot be pickled")


MLOCK_ONFAULT = 1                     # mlock2(2): lock each page when it is first touched
MADV_POPULATE_WRITE = 23              # madvise(2), Linux 5.14: fault a range in, writable, in one call
PAGE = mmap.PAGESIZE


class SecureBuffer:
    """An anonymous, writable mapping for plaintext: not dumped, locked if allowed, wiped on close.

    Pages are locked as they are first touched (`mlock2(MLOCK_ONFAULT)`), not all at once here: whoever fills the
    buffer faults its pages in, so threads filling parts of it share that work (`populate`). Where the kernel has
    no MLOCK_ONFAULT, plain `mlock` faults the whole buffer in at once, as before."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._map = mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_DONTDUMP"):
            self._map.madvise(mmap.MADV_DONTDUMP)
        self._address = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self.locked = _lock(self._address, max(size, 1))

    def populate(self, start: int, end: int) -> None:
        """Fault the pages under [start, end) in before they are written (one call instead of a fault per
        page); a kernel without MADV_POPULATE_WRITE faults them in on the first write instead."""
        first, last = start - start % PAGE, min(-(-end // PAGE) * PAGE, len(self._map))
        if last > first:
            _libc.madvise(ctypes.c_void_p(self._address + first), ctypes.c_size_t(last - first),
                          MADV_POPULATE_WRITE)

    @property
    def view(self) -> memoryview:
        return memoryview(self._map)[: self.size]

    def wipe(self) -> None:
        if self._map.closed:                      # unmapped: nothing left to wipe, and nothing to write to
            return
        ctypes.memset(self._address, 0, len(self._map))

    def close(self) -> None:
        """Wipe, then unmap. If views are still alive (say, held by a traceback) the
        mapping is unmapped when they go; its contents are already zero."""
        if self._map.closed:
            return
        self.wipe()
        try:
            self._map.close()
        except BufferError:
            pass

    def __enter__(self) -> SecureBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock(address: int, size: int) -> bool:
    """Lock [address, address + size) against swapping: on first touch where the kernel can, else now."""
    mlock2 = getattr(_libc, "mlock2", None)
    if mlock2 is not None and mlock2(ctypes.c_void_p(address), ctypes.c_size_t(size), MLOCK_ONFAULT) == 0:
        return True
    return _libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(size)) == 0
