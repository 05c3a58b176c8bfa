"""Key-encryption keys and envelope encryption.

Each stored value gets its own random 256-bit data key: the value is sealed
with AES-256-GCM under that data key with the record's identity (resource path
and version) as associated data, and the data key is wrapped by the KEK. The
KEK never enters the database. Providers: `FileKek` (32 random bytes in a 0600
file) and `VaultTransitKek` (HashiCorp Vault's transit engine). A `FileKek` is
only ever created on purpose (`FileKek.create`); keybroker/resources/kek_open.py
decides when the broker may do so.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import Unavailable

NONCE = 12


class KekError(Unavailable):
    """The KEK cannot wrap or unwrap (missing, unreachable, or the wrapped key is not its own)."""


class Kek(Protocol):
    key_id: str

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class FileKek:
    """A 256-bit KEK in a local 0600 file. Opening it never creates it: `FileKek.create` does, on purpose."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        key = self._read()
        self._aead = AESGCM(key)
        self.key_id = "file:" + hashlib.sha256(b"veil-kek-id\0" + key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"FileKek({str(self.path)!r}, key_id={self.key_id!r})"

    @classmethod
    def create(cls, path: Path) -> FileKek:
        """A new random KEK written to `path` (0600), which must not exist. The file appears whole or not at
        all: the key is written to a private temporary file beside it, then linked into place."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)   # created 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)                    # FileExistsError if another process got there first
        finally:
            os.unlink(tmp)
        return cls(path)

    def _read(self) -> bytes:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            raise KekError("kek.file_missing", f"KEK file {self.path} does not exist") from None
        except OSError as exc:
            raise KekError("kek.file_unreadable", f"KEK file {self.path} cannot be read: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise KekError("kek.file_invalid", f"KEK file {self.path} is not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KekError("kek.file_permissions",
                           f"KEK file {self.path} is readable by group or others; chmod 600 it")
        try:
            key = self.path.read_bytes()
        except OSError as exc:
            raise KekError("kek.file_unreadable", f"KEK file {self.path} cannot be read: {exc.strerror}") from None
        if len(key) != 32:
            raise KekError("kek.file_invalid", f"KEK file {self.path} does not hold 32 bytes")
        return key

    def wrap(self, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return nonce + self._aead.encrypt(nonce, data_key, b"veil-kek-wrap")

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE], wrapped[NONCE:], b"veil-kek-wrap")
        except (InvalidTag, ValueError):
            raise KekError("kek.unwrap", f"data key was not wrapped by KEK {self.key_id}") from None


@dataclass(frozen=True, slots=True)
class Sealed:
    ciphertext: bytes      # nonce ‖ AES-256-GCM(value)
    wrapped_key: bytes
    kek_id: str

    def __repr__(self) -> str:
        return f"Sealed(kek_id={self.kek_id!r}, {len(self.ciphertext)} bytes)"


def seal(kek: Kek, value: bytes, aad: bytes) -> Sealed:
    data_key = AESGCM.generate_key(256)
    nonce = secrets.token_bytes(NONCE)
    ciphertext = nonce + AESGCM(data_key).encrypt(nonce, value, aad)
    return Sealed(ciphertext, kek.wrap(data_key), kek.key_id)


def unseal(kek: Kek, sealed: Sealed, aad: bytes) -> bytes:
    if sealed.kek_id != kek.key_id:
        raise KekError("kek.mismatch", f"value is sealed under {sealed.kek_id}, configured KEK is {kek.key_id}")
    data_key = kek.unwrap(sealed.wrapped_key)
    try:
        return AESGCM(data_key).decrypt(sealed.ciphertext[:NONCE], sealed.ciphertext[NONCE:], aad)
    except InvalidTag:
        raise KekError("kek.integrity", "stored value does not authenticate under its record's "
                                        "identity (moved or tampered)") from None


def record_aad(path: str, version: int) -> bytes:
    """Associated data binding a sealed value to its resource path and version."""
    return f"veil-resource\0{path}\0{version}".encode()
