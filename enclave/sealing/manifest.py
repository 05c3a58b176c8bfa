"""The sealed model's manifest: which files, how big, under which file ids — encrypted and authenticated."""

from __future__ import annotations

import os
from datetime import datetime

from cryptography.exceptions import InvalidTag
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UnsealError
from ..secrets import DataKey
from .format import FORMAT_VERSION, MANIFEST_MAGIC, MANIFEST_NAME, NONCE_SIZE, manifest_cipher


class SealedFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[^/\\\x00]+(/[^/\\\x00]+)*$")   # relative path inside the model
    blob: str = Field(pattern=r"^[0-9a-f]{32}\.vsf$")
    size: int = Field(ge=0)
    chunks: int = Field(ge=1)


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = "veil-sealed-model"
    version: int = FORMAT_VERSION
    model_name: str
    created_at: datetime
    chunk_size: int
    files: tuple[SealedFile, ...]

    def file(self, name: str) -> SealedFile:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise KeyError(name)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def seal_manifest(manifest: Manifest, key: DataKey) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    body = manifest.model_dump_json().encode()
    return MANIFEST_MAGIC + nonce + manifest_cipher(key).encrypt(nonce, body, MANIFEST_MAGIC)


def open_manifest(data: bytes, key: DataKey) -> Manifest:
    if not data.startswith(MANIFEST_MAGIC) or len(data) < len(MANIFEST_MAGIC) + NONCE_SIZE + 16:
        raise UnsealError(MANIFEST_NAME, "not a Veil sealed-model manifest")
    nonce = data[len(MANIFEST_MAGIC):len(MANIFEST_MAGIC) + NONCE_SIZE]
    try:
        body = manifest_cipher(key).decrypt(nonce, data[len(MANIFEST_MAGIC) + NONCE_SIZE:], MANIFEST_MAGIC)
    except InvalidTag:
        raise UnsealError(MANIFEST_NAME, "does not authenticate under this key "
                          "(wrong key, or the manifest was altered)") from None
    try:
        manifest = Manifest.model_validate_json(body)
    except ValidationError as exc:
        raise UnsealError(MANIFEST_NAME, f"malformed content: {exc.errors()[0]['msg']}") from None
    if manifest.version != FORMAT_VERSION or manifest.format != "veil-sealed-model":
        raise UnsealError(MANIFEST_NAME, f"unsupported format {manifest.format} v{manifest.version}")
    return manifest
