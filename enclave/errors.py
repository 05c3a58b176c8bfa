"""Errors raised by enclave/.

EnclaveError
├── SealingError      a model directory cannot be sealed (what, which file)
├── UnsealError       a sealed model fails authentication or structure checks:
│                     which file and chunk — never the key, never plaintext
├── KeyAgentError     the in-memory key hand-off to a vLLM worker failed
├── LoadError         vLLM could not load the sealed model (the worker's reason)
├── ServingError      the attested gRPC server cannot start
├── BootError         the boot agent cannot get going: key file, broker unreachable
│   └── KeyReleaseError   the key broker refused to release the data key
└── AttestedChannelError  a client refused the server's evidence; no prompt was sent

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


class KeyAgentError(EnclaveError):
    """The in-memory key hand-off to a vLLM worker failed: which agent, why (never the key)."""

    code = "enclave.key_agent"


class LoadError(EnclaveError):
    """vLLM could not load the sealed model: the worker's reason (file and chunk), never the key."""

    code = "enclave.load"


class ServingError(EnclaveError):
    """The attested gRPC server cannot start or serve: what is missing."""

    code = "enclave.serve"


class BootError(EnclaveError):
    """The boot agent (enclave.boot) cannot get going: an unreadable key file, an unreachable broker."""

    code = "enclave.boot"


class KeyReleaseError(BootError):
    """The key broker was reached and refused the data key (its reason: evidence or policy)."""

    code = "enclave.key_release"


class AttestedChannelError(EnclaveError):
    """A client refused the server: its evidence did not verify, bind the TLS key and nonce, or satisfy
    the policy. `reasons` holds (code, message) pairs; no prompt was sent."""

    code = "enclave.attested_channel"

    def __init__(self, message: str, reasons: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons
