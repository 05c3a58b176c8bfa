"""Sealed model weights: every file of a model directory under one 256-bit data key.

Format (version 1), a directory:

    manifest.veil       b"VEILMF01" ‖ nonce (12) ‖ AES-256-GCM(manifest JSON), AAD = magic
    <file_id>.vsf       one per model file: a 64-byte header, then chunks

A chunk is AES-256-GCM under a per-file key HKDF-SHA256(data key, salt=file_id)
with nonce = chunk index (96-bit big-endian) and AAD = header ‖ index (u64) ‖
final flag (u8), so chunks cannot be reordered, dropped, swapped between files
or truncated. The manifest (file names, sizes, chunk counts, file ids) is
authenticated and encrypted under its own key derived from the data key.
"""

from .format import CHUNK_SIZE, FORMAT_VERSION
from .seal import seal_model
from .unseal import SealedModel, open_sealed, verify_sealed

__all__ = ["CHUNK_SIZE", "FORMAT_VERSION", "SealedModel", "open_sealed", "seal_model", "verify_sealed"]
