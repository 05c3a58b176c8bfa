"""The sealed model's manifest (enclave.sealing.manifest.open_manifest): only UnsealError.

The input is the manifest's plaintext JSON, sealed under the fixed fuzzing
key before opening, so the fuzzer reaches the parser behind the AES-GCM
check; with a first byte of 0 the bytes are opened as they are (a forged or
damaged file).
"""

from __future__ import annotations

import os

from enclave.errors import UnsealError
from enclave.secrets import DataKey
from enclave.sealing.format import MANIFEST_MAGIC, NONCE_SIZE, manifest_cipher
from enclave.sealing.manifest import open_manifest

from ._fixed import SEAL_KEY

KEY = DataKey(SEAL_KEY)
_CIPHER = manifest_cipher(KEY)


def test_one_input(data: bytes) -> None:
    if data[:1] == b"\0":
        sealed = data[1:]
    else:
        nonce = os.urandom(NONCE_SIZE)
        sealed = MANIFEST_MAGIC + nonce + _CIPHER.encrypt(nonce, data, MANIFEST_MAGIC)
    try:
        open_manifest(sealed, KEY)
    except UnsealError:
        pass
