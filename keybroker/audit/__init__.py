"""The attestation log: an append-only RFC 9162 Merkle tree with signed checkpoints.

merkle      leaf/node hashing, compact range, inclusion and consistency proofs
checkpoint  C2SP tlog-checkpoint bodies inside C2SP signed notes (Ed25519)
entry       the log entry model and its canonical (RFC 8785) leaf data
log         LogStore (the storage contract), InMemoryLogStore, AuditLog
export      the offline export directory auditors verify with `veil audit`
"""
