"""The append-only attestation log over a pluggable store.

`LogStore` is the whole storage contract. The broker implements it on its
database (SQLAlchemy); `InMemoryLogStore` serves tests and offline tools.

Atomicity: `AuditLog.append` reads `store.size()`, puts that number in the
entry as `seq`, and calls `store.append`. The broker calls it inside the same
database transaction as the decision it records, and the store must make a
racing append fail rather than interleave: `seq` is the primary key (a second
insert of the same seq raises and the transaction is retried), or the
transaction holds a lock on a log-head row. A store that returns a seq other
than the one expected makes `append` raise AuditError, so the caller rolls back.
Nothing is ever updated or deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from . import merkle
from .checkpoint import Checkpoint, NoteSigner, NoteVerifier, open_note, sign_note
from .entry import LogEntry, PreparedEntry
from .errors import AuditError, LogTamperedError, ProofError


@runtime_checkable
class LogStore(Protocol):
    """Persistent storage for the log. Entries are numbered 0, 1, 2, … without gaps."""

    def size(self) -> int:
        """Number of entries appended (and committed) so far."""
        ...

    def append(self, entry_bytes: bytes, leaf_hash: bytes) -> int:
        """Store entry number `size()`: its canonical bytes and 32-byte leaf hash. Return its seq.

        Must run in the caller's transaction and fail (not renumber) if another
        writer appended first.
        """
        ...

    def leaf_hash(self, seq: int) -> bytes:
        """The stored leaf hash of entry `seq`; IndexError if there is none."""
        ...

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        """Leaf hashes of entries [start, end), in order (one range read for proofs and roots)."""
        ...

    def entry(self, seq: int) -> bytes:
        """The canonical bytes of entry `seq`; IndexError if there is none."""
        ...

    def entries(self, start: int, end: int) -> Sequence[bytes]:
        """Canonical bytes of entries [start, end), in order."""
        ...

    def latest_checkpoint(self) -> str | None:
        """The most recently saved signed checkpoint note, or None."""
        ...

    def save_checkpoint(self, signed_text: str) -> None:
        """Keep a signed checkpoint note (all are kept; the latest is returned above)."""
        ...


class InMemoryLogStore:
    """A LogStore in lists: for tests, exports and offline tools."""

    def __init__(self) -> None:
        self._entries: list[bytes] = []
        self._hashes: list[bytes] = []
        self.checkpoints: list[str] = []

    def size(self) -> int:
        return len(self._entries)

    def append(self, entry_bytes: bytes, leaf_hash: bytes) -> int:
        self._entries.append(bytes(entry_bytes))
        self._hashes.append(bytes(leaf_hash))
        return len(self._entries) - 1

    def leaf_hash(self, seq: int) -> bytes:
        return self._hashes[_index(seq, len(self._hashes))]

    def leaf_hashes(self, start: int, end: int) -> Sequence[bytes]:
        return self._hashes[start:end]

    def entry(self, seq: int) -> bytes:
        return self._entries[_index(seq, len(self._entries))]

    def entries(self, start: int, end: int) -> Sequence[bytes]:
        return self._entries[start:end]

    def latest_checkpoint(self) -> str | None:
        return self.checkpoints[-1] if self.checkpoints else None

    def save_checkpoint(self, signed_text: str) -> None:
        self.checkpoints.append(signed_text)


def _index(seq: int, size: int) -> int:
    if not 0 <= seq < size:
        raise IndexError(f"no log entry {seq} (size {size})")
    return seq


class AuditLog:
    """Appends entries, signs checkpoints and serves proofs for one log (`origin`)."""

    def __init__(self, store: LogStore, signer: NoteSigner, origin: str) -> None:
        self.store = store
        self.signer = signer
        self.origin = origin

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    def append(self, entry: LogEntry | PreparedEntry) -> tuple[int, bytes]:
        """Number the entry, store it and return (seq, leaf hash).

        Pass `entry.prepare()` to canonicalise before the caller's transaction takes the log lock."""
        prepared = entry if isinstance(entry, PreparedEntry) else entry.prepare()
        seq = self.store.size()
        data = prepared.numbered(seq)
        leaf = merkle.leaf_hash(data)
        stored = self.store.append(data, leaf)
        if stored != seq:
            raise AuditError(f"log store put entry {seq} at {stored}: a concurrent append; roll back")
        return seq, leaf

    def root(self, size: int | None = None) -> bytes:
        size = self.store.size() if size is None else size
        return merkle.root(self.store.leaf_hashes(0, size))

    def checkpoint(self) -> str:
        """Sign the current size and root, after checking they extend the last checkpoint."""
        size = self.store.size()
        hashes = self.store.leaf_hashes(0, size)
        previous = self.store.latest_checkpoint()
        if previous is not None:
            self._check_extends(open_note(previous, [self.verifier]), hashes)
        body = Checkpoint(self.origin, size, merkle.root(hashes)).body()
        note = sign_note(body, [self.signer])
        self.store.save_checkpoint(note)
        return note

    def _check_extends(self, old: Checkpoint, hashes: Sequence[bytes]) -> None:
        if old.origin != self.origin:
            raise AuditError(f"last checkpoint is for log {old.origin!r}, not {self.origin!r}")
        if old.size > len(hashes):
            raise LogTamperedError(len(hashes), "truncated", f"last checkpoint covers {old.size} entries")
        if merkle.root(hashes[: old.size]) != old.root_hash:
            raise LogTamperedError(None, "rewritten", f"the first {old.size} entries no longer match "
                                                      "the last checkpoint")

    def prove_inclusion(self, seq: int, size: int | None = None) -> list[bytes]:
        """Audit path for entry `seq` in the tree of `size` entries (default: current)."""
        size = self.store.size() if size is None else size
        self._check_size(size)
        return merkle.inclusion_proof(seq, size, self.store.leaf_hashes(0, size))

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of `old_size` entries is a prefix of the one of `new_size`."""
        new_size = self.store.size() if new_size is None else new_size
        self._check_size(new_size)
        return merkle.consistency_proof(old_size, new_size, self.store.leaf_hashes(0, new_size))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.store.size():
            raise ProofError(f"tree size {size} is beyond the log's {self.store.size()} entries")

    def entry(self, seq: int) -> LogEntry:
        return LogEntry.from_canonical(self.store.entry(seq))
