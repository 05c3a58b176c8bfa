"""Byte layout, key derivation and associated data of the sealed-weights format (v1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import UnsealError
from ..secrets import DataKey

FORMAT_VERSION = 1
FILE_MAGIC = b"VEILSF01"
MANIFEST_MAGIC = b"VEILMF01"
MANIFEST_NAME = "manifest.veil"
HEADER_SIZE = 64
TAG_SIZE = 16
NONCE_SIZE = 12
CHUNK_SIZE = 4 << 20            # 4 MiB of plaintext per chunk
MAX_CHUNK_SIZE = 64 << 20
_HEADER = struct.Struct(">8sHHI16sQQ")   # magic, version, reserved, chunk size, file id, size, chunks


@dataclass(frozen=True, slots=True)
class FileHeader:
    file_id: bytes
    chunk_size: int
    plaintext_size: int
    chunk_count: int

    def pack(self) -> bytes:
        body = _HEADER.pack(FILE_MAGIC, FORMAT_VERSION, 0, self.chunk_size, self.file_id,
                            self.plaintext_size, self.chunk_count)
        return body.ljust(HEADER_SIZE, b"\0")

    @classmethod
    def unpack(cls, data: bytes, name: str) -> FileHeader:
        if len(data) < HEADER_SIZE:
            raise UnsealError(name, f"header is {len(data)} bytes, expected {HEADER_SIZE} (truncated file)")
        magic, version, reserved, chunk_size, file_id, size, chunks = _HEADER.unpack_from(data)
        if magic != FILE_MAGIC:
            raise UnsealError(name, "not a Veil sealed file (bad magic)")
        if version != FORMAT_VERSION or reserved or any(data[_HEADER.size:HEADER_SIZE]):
            raise UnsealError(name, f"unsupported sealed-file version {version}")
        if not 0 < chunk_size <= MAX_CHUNK_SIZE or chunks != chunk_count(size, chunk_size):
            raise UnsealError(name, "inconsistent chunk size or count in the header")
        return cls(file_id=file_id, chunk_size=chunk_size, plaintext_size=size, chunk_count=chunks)

    def chunk_span(self, index: int) -> tuple[int, int, int]:
        """(plaintext offset, plaintext length, ciphertext offset in the file) of chunk `index`."""
        offset = index * self.chunk_size
        length = min(self.chunk_size, self.plaintext_size - offset)
        return offset, length, HEADER_SIZE + index * (self.chunk_size + TAG_SIZE)

    @property
    def sealed_size(self) -> int:
        return HEADER_SIZE + self.plaintext_size + self.chunk_count * TAG_SIZE


def chunk_count(size: int, chunk_size: int) -> int:
    """Number of chunks; an empty file still has one (empty, final) chunk."""
    return max(1, -(-size // chunk_size))


def _derive(key: DataKey, salt: bytes, info: bytes) -> AESGCM:
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key.bytes())
    return AESGCM(material)


def file_cipher(key: DataKey, file_id: bytes) -> AESGCM:
    return _derive(key, file_id, b"veil sealed file v1")


def manifest_cipher(key: DataKey) -> AESGCM:
    return _derive(key, b"", b"veil sealed manifest v1")


def chunk_nonce(index: int) -> bytes:
    return index.to_bytes(NONCE_SIZE, "big")


def chunk_aad(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")
