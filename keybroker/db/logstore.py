"""The attestation log's storage: an append-only table written inside the caller's transaction.

`SqlLogStore` implements keybroker.audit's LogStore protocol over one SQLAlchemy
session, so a log entry commits or rolls back together with the state change it
records. Sequence numbers come from the single `log_head` row, locked
(`SELECT … FOR UPDATE` on PostgreSQL; SQLite write transactions are
`BEGIN IMMEDIATE`, so the whole database is the lock) from `size()` until the
transaction ends: concurrent appends from any number of replicas queue on it,
and a rollback undoes the increment, so seqs never collide or skip.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from .engine import utcnow
from .models import LogCheckpoint, LogHead, LogRecord


# The log head: locked by the first append of a transaction (FOR UPDATE; SQLite's write lock is the database),
# moved on by each append. Shared with the group-commit writer (db/batch.py).
LOCK_HEAD = select(LogHead.size).where(LogHead.id == 1).with_for_update()


SET_HEAD = update(LogHead).where(LogHead.id == 1).values(size=bindparam("size"))


class SqlLogStore:
    def __init__(self, session: Session, *, tenant: str | None = None) -> None:
        self.session = session
        self.tenant = tenant            # stored beside each entry for tenant-scoped log views
        self._locked_size: int | None = None      # the size read under the lock, in this transaction

    def size(self) -> int:
        """The log size, taking the append lock for the rest of the transaction."""
        self._locked_size = int(self.session.execute(LOCK_HEAD).scalar_one())
        return self._locked_size

    def append(self, entry_bytes: bytes, leaf_hash: bytes) -> int:
        seq = self._locked_size if self._locked_size is not None else self.size()   # the lock is already ours
        self.session.add(LogRecord(seq=seq, leaf_hash=bytes(leaf_hash), entry=bytes(entry_bytes),
                                   tenant=self.tenant))
        self.session.execute(SET_HEAD, {"size": seq + 1})
        self.session.flush()
        self._locked_size = seq + 1
        return seq

    def leaf_hash(self, index: int) -> bytes:
        return self._row(index).leaf_hash

    def entry(self, index: int) -> bytes:
        return self._row(index).entry

    def entries(self, start: int, end: int) -> list[bytes]:
        stmt = select(LogRecord.entry).where(LogRecord.seq >= start, LogRecord.seq < end).order_by(LogRecord.seq)
        return list(self.session.execute(stmt).scalars())

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        stmt = (select(LogRecord.leaf_hash).where(LogRecord.seq >= start, LogRecord.seq < end)
                .order_by(LogRecord.seq))
        return list(self.session.execute(stmt).scalars())

    def latest_checkpoint(self) -> str | None:
        stmt = select(LogCheckpoint.text).order_by(LogCheckpoint.size.desc(), LogCheckpoint.id.desc()).limit(1)
        return self.session.execute(stmt).scalar_one_or_none()

    def save_checkpoint(self, text: str) -> None:
        size = int(text.split("\n", 2)[1])
        self.session.add(LogCheckpoint(size=size, text=text, created_at=utcnow()))
        self.session.flush()

    def _row(self, index: int) -> LogRecord:
        row = self.session.get(LogRecord, index)
        if row is None:
            raise IndexError(f"no log entry {index}")
        return row
