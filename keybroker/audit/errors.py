"""Errors raised by keybroker/audit/.

AuditError
├── ProofError          an inclusion or consistency proof does not verify: which proof, why
├── CheckpointError     a checkpoint or signed note is malformed, unsigned or signed badly
└── LogTamperedError    the log disagrees with what was signed: first bad seq, what is wrong

Messages name sizes, indices, key names and hashes (all public), never a private key.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base class; `code` is a stable machine-readable identifier."""

    code: str = "audit.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProofError(AuditError):
    """A Merkle proof is malformed or does not lead to the expected root."""

    code = "audit.proof"


class CheckpointError(AuditError):
    """A checkpoint body or signed note is malformed, or its signatures do not verify."""

    code = "audit.checkpoint"


class LogTamperedError(AuditError):
    """Log entries were edited, deleted, inserted or reordered after they were signed.

    `index` is the first sequence number found wrong (None when it cannot be
    located, e.g. a bare root mismatch); `what` is one of "edited", "deleted",
    "inserted", "reordered", "truncated", "extended", "rewritten".
    """

    code = "audit.tampered"

    def __init__(self, index: int | None, what: str, detail: str = "") -> None:
        where = f"entry {index}" if index is not None else "the log"
        super().__init__(f"{where}: {what}" + (f" ({detail})" if detail else ""))
        self.index = index
        self.what = what
        self.detail = detail
