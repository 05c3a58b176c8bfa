"""Errors raised by enclave/.

EnclaveError
├── SealingError      a model directory cannot be sealed (what, which file)
└── UnsealError       a sealed model fails authentication or structure checks:
                      which file and chunk — never the key, never plaintext

Like cryptography's InvalidToken, an authentication failure says only that the
chunk does not authenticate under this key: a wrong key, an altered, swapped,
dropped or truncated chunk all look the same to AES-GCM.
"""

from __future__ import annotations


class EnclaveError(Exception):
    code = "enclave.error"


class SealingError(EnclaveError):
    code = "enclave.seal"


class UnsealError(EnclaveError):
    code = "enclave.unseal"

    def __init__(self, file: str, message: str, *, chunk: int | None = None) -> None:
        where = f"{file}" + (f", chunk {chunk}" if chunk is not None else "")
        super().__init__(f"{where}: {message}")
        self.file = file
        self.chunk = chunk
