"""The attestation log: an append-only RFC 9162 Merkle tree with signed checkpoints.

merkle      leaf/node hashing, compact range, inclusion and consistency proofs
checkpoint  C2SP tlog-checkpoint bodies inside C2SP signed notes (Ed25519)
entry       the log entry model and its canonical (RFC 8785) leaf data
log         LogStore (the storage contract), InMemoryLogStore, AuditLog
export      the offline export directory auditors verify with `veil audit`
reverify    re-run verification and policy on recorded evidence
verify      offline verification of an export; consistency between checkpoints
"""

from .checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    generate_key,
    open_note,
    parse_checkpoint,
    sign_note,
    verify_note,
)
from .entry import LogEntry, Reason, claims_digest, entry_leaf_hash
from .errors import AuditError, CheckpointError, LogTamperedError, ProofError
from .export import EntryFilter, export_log, export_view, load_export
from .log import AuditLog, InMemoryLogStore, LogStore
from .merkle import CompactRange, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion
from .verify import Problem, VerifyReport, verify_consistency_between, verify_export

__all__ = [
    "AuditError", "AuditLog", "Checkpoint", "CheckpointError", "CompactRange", "EntryFilter", "InMemoryLogStore",
    "LogEntry", "LogStore", "LogTamperedError", "NoteSigner", "NoteVerifier", "Problem", "ProofError", "Reason",
    "VerifyReport", "claims_digest", "consistency_proof", "entry_leaf_hash", "export_log", "export_view",
    "generate_key", "inclusion_proof", "load_export", "open_note", "parse_checkpoint", "sign_note",
    "verify_consistency", "verify_consistency_between", "verify_export", "verify_inclusion", "verify_note",
]
