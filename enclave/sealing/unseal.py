"""Open a sealed model: authenticate the manifest, decrypt files into locked memory only."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

from cryptography.exceptions import InvalidTag

from ..errors import UnsealError
from ..secrets import DataKey, SecureBuffer
from .format import HEADER_SIZE, MANIFEST_NAME, TAG_SIZE, FileHeader, chunk_aad, chunk_nonce, file_cipher
from .manifest import Manifest, SealedFile, open_manifest

Progress = Callable[[int], None]


class SealedModel:
    """A sealed model directory whose manifest authenticated under the data key."""

    def __init__(self, directory: Path, manifest: Manifest, key: DataKey, workers: int) -> None:
        self.directory = directory
        self.manifest = manifest
        self._key = key
        self._workers = workers

    def __repr__(self) -> str:
        return f"SealedModel({str(self.directory)!r}, {len(self.manifest.files)} files)"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.manifest.files)

    def read(self, name: str, *, progress: Progress | None = None) -> SecureBuffer:
        """Decrypt one file into a new SecureBuffer (the caller closes it, which wipes it)."""
        try:
            entry = self.manifest.file(name)
        except KeyError:
            raise UnsealError(name, "is not in this sealed model") from None
        buffer = SecureBuffer(entry.size)
        try:
            self._decrypt(entry, buffer, progress)
        except BaseException:
            buffer.close()
            raise
        return buffer

    def read_all(self, *, progress: Progress | None = None) -> Iterator[tuple[str, SecureBuffer]]:
        for entry in self.manifest.files:
            yield entry.name, self.read(entry.name, progress=progress)

    def verify(self, *, progress: Progress | None = None) -> None:
        """Authenticate every chunk of every file, decrypting into scratch memory that is wiped."""
        for entry in self.manifest.files:
            with SecureBuffer(entry.size) as scratch:
                self._decrypt(entry, scratch, progress)

    def _decrypt(self, entry: SealedFile, buffer: SecureBuffer, progress: Progress | None) -> None:
        """Authenticate and decrypt every chunk into `buffer`, chunks spread over the worker threads, each of which
        also faults in the pages its chunk lands on (the kernel's zeroing of fresh pages is most of the work)."""
        path = self.directory / entry.blob
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise UnsealError(entry.name, f"sealed blob {entry.blob} cannot be read: {exc.strerror}") from None
        try:
            header, packed = _read_header(fd, entry)
            cipher = file_cipher(self._key, header.file_id)

            local = threading.local()             # one ciphertext buffer per worker thread, reused
            out = buffer.view

            def one(index: int) -> int:
                offset, length, at = header.chunk_span(index)
                sealed = getattr(local, "sealed", None)
                if sealed is None or len(sealed) < length + TAG_SIZE:
                    sealed = local.sealed = bytearray(length + TAG_SIZE)
                scratch = memoryview(sealed)[:length + TAG_SIZE]
                if os.preadv(fd, [scratch], at) != len(scratch):
                    raise UnsealError(entry.name, "ends early (truncated)", chunk=index)
                aad = chunk_aad(packed, index, index == header.chunk_count - 1)
                buffer.populate(offset, offset + length)
                try:
                    cipher.decrypt_into(chunk_nonce(index), scratch, aad, out[offset:offset + length])
                except InvalidTag:
                    raise UnsealError(entry.name, "does not authenticate (wrong key, or the chunk was "
                                      "altered, swapped, reordered or truncated)", chunk=index) from None
                return length

            with ThreadPoolExecutor(self._workers) as pool:
                for done in pool.map(one, range(header.chunk_count)):
                    if progress:
                        progress(done)
        finally:
            os.close(fd)


def _read_header(fd: int, entry: SealedFile) -> tuple[FileHeader, bytes]:
    packed = os.pread(fd, HEADER_SIZE, 0)
    header = FileHeader.unpack(packed, entry.name)
    if f"{header.file_id.hex()}.vsf" != entry.blob:
        raise UnsealError(entry.name, f"blob {entry.blob} holds another file's data (swapped files)")
    if header.plaintext_size != entry.size or header.chunk_count != entry.chunks:
        raise UnsealError(entry.name, "size or chunk count differs from the manifest")
    actual = os.fstat(fd).st_size
    if actual != header.sealed_size:
        state = "truncated" if actual < header.sealed_size else "has trailing data"
        raise UnsealError(entry.name, f"sealed blob is {actual} bytes, expected {header.sealed_size} ({state})")
    return header, packed


def open_sealed(directory: str | os.PathLike[str], key: DataKey, *, workers: int | None = None) -> SealedModel:
    """Authenticate the manifest of the sealed model in `directory` under `key`."""
    path = Path(directory)
    try:
        data = (path / MANIFEST_NAME).read_bytes()
    except OSError as exc:
        raise UnsealError(MANIFEST_NAME, f"cannot be read in {path}: {exc.strerror}") from None
    return SealedModel(path, open_manifest(data, key), key, workers or os.cpu_count() or 1)


def verify_sealed(directory: str | os.PathLike[str], key: DataKey, *, progress: Progress | None = None) -> Manifest:
    """Check every chunk of a sealed model without writing plaintext anywhere."""
    model = open_sealed(directory, key)
    model.verify(progress=progress)
    return model.manifest
