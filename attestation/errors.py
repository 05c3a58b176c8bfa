"""Errors raised by attestation/.

AttestationError
├── ParseError          evidence is malformed: structure, field, offset
├── VerificationError   a signature, chain, CRL or TCB check failed: check code
├── CollateralError     collateral missing, expired or unreachable: item, hint
└── AttesterError       no TEE or device here: what is missing

Messages never carry key material or secret input; they name fields, offsets,
checks and (public) identifiers such as an FMSPC or a certificate subject.
"""

from __future__ import annotations


class AttestationError(Exception):
    """Base class; `code` is a stable machine-readable identifier."""

    code: str = "attestation.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ParseError(AttestationError):
    """Evidence or collateral bytes do not have the documented structure."""

    def __init__(self, structure: str, field: str, offset: int | None, message: str) -> None:
        where = f" at offset 0x{offset:X}" if offset is not None else ""
        super().__init__(f"{structure}: {field}{where}: {message}")
        self.structure = structure
        self.field = field
        self.offset = offset
        self.code = f"parse.{structure.lower().replace(' ', '_')}"


class VerificationError(AttestationError):
    """A verification step failed. `check` names the step (e.g. "tdx.quote_signature")."""

    def __init__(self, check: str, message: str, *, expected: str | None = None,
                 actual: str | None = None) -> None:
        super().__init__(f"{check}: {message}")
        self.detail = message
        self.check = check
        self.code = check
        self.expected = expected
        self.actual = actual


class CollateralError(AttestationError):
    """Collateral is missing, stale or unreachable. `item` names exactly what; `hint` says how to get it."""

    def __init__(self, item: str, message: str, *, hint: str = "") -> None:
        text = f"{item}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.item = item
        self.hint = hint
        self.code = "collateral." + item.split(" ", 1)[0].lower()


class AttesterError(AttestationError):
    """No usable TEE interface here. `missing` names the device, file or module that is absent."""

    def __init__(self, missing: str, message: str) -> None:
        super().__init__(f"{missing}: {message}")
        self.missing = missing
        self.code = "attester.unavailable"
