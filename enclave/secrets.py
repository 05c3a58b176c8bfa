"""Key and plaintext buffers that stay in memory: redacted reprs, wiping, no core dumps.

Best effort, as DESIGN.md invariant 3 asks: buffers we own are wiped when we
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


class SecureBuffer:
    """An anonymous, writable mapping for plaintext: not dumped, locked if allowed, wiped on close."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._map = mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_DONTDUMP"):
            self._map.madvise(mmap.MADV_DONTDUMP)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self.locked = _libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(max(size, 1))) == 0

    @property
    def view(self) -> memoryview:
        return memoryview(self._map)[: self.size]

    def wipe(self) -> None:
        zeros = bytes(min(len(self._map), 1 << 20))
        self._map.seek(0)
        while self._map.tell() < len(self._map):
            self._map.write(zeros[: len(self._map) - self._map.tell()])

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
