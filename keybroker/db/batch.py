"""Group commit: the small writes of concurrent requests committed together by one writer thread.

Every KBS request ends in a small write: a session row (auth); a consumed
nonce, a log entry and an attestation (attest); a log entry and a release
(resource). Committed one by one they queue on the database's single writer
(SQLite) or on the log-head row lock (PostgreSQL), and each pays for its own
transaction while holding that lock. Here a request thread hands its write to
the process's writer thread as a *job* and waits; the writer runs every job
queued at that moment in one transaction — log entries numbered in order under
one lock of the log head, rows inserted with one statement per table — commits
once, and only then answers each job. No caller is answered before the commit
that holds its write, so a release and its log entry still commit together or
not at all (invariant 5), job by job.

If a job raises, the whole batch is rolled back and each of its jobs runs again
in a transaction of its own: a bad job fails alone.

Where every write of a broker process is to a local SQLite file (`inline`),
there is no writer thread: `await write(job)` queues the job on the event
loop, and the first job queued in a turn of the loop schedules one flush for
the end of that turn, which commits every job queued meanwhile on the loop
itself. A SQLite commit in WAL mode is a few hundred microseconds of CPU and
no network wait, so it costs less on the loop than the hand-offs to a thread
and back, and the thread's fight with the loop for the GIL. Elsewhere
(PostgreSQL: a commit waits on the network) the writer thread takes the jobs.

Rule for jobs: rows given to `Batch.insert` are written when the batch ends, so
a job must not query rows that another job of the batch inserts (none of the
KBS jobs does: a session's nonce reaches its client only after the commit).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Engine, Table
from sqlalchemy.engine import Connection

from ..audit import merkle
from ..journal import Pending
from .engine import LoopConnections, WriteLock
from .logstore import LOCK_HEAD, SET_HEAD
from .models import LogRecord
from .prepared import Prepared, PreparedInsert

T = TypeVar("T")
Job = Callable[["Batch"], T]
MAX_JOBS = 256
log = logging.getLogger("veil.broker")


_LOCK_HEAD, _SET_HEAD = Prepared(LOCK_HEAD), Prepared(SET_HEAD)      # run on the driver's cursor (db/prepared.py)


@functools.cache
def _insert(table: Table) -> PreparedInsert:
    return PreparedInsert(table)


class Batch:
    """What a job sees of the shared transaction: its connection (`conn`), log appends, inserts written at
    the end."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._head: int | None = None         # log size read under the head lock, at the first append
        self._size = 0
        self._rows: dict[Table, list[dict[str, Any]]] = {}

    def insert(self, table: Table, **row: Any) -> None:
        self._rows.setdefault(table, []).append(row)

    def append_log(self, pending: Pending) -> int:
        """Number a prepared log entry (the next seq of this transaction) and queue its row; its seq."""
        if self._head is None:
            self._head = self._size = int(_LOCK_HEAD.first(self.conn, {}).size)
        seq = self._size
        data = pending.entry.numbered(seq)
        self.insert(LogRecord.__table__, seq=seq, leaf_hash=merkle.leaf_hash(data), entry=data, tenant=pending.tenant)
        self._size += 1
        return seq

    def finish(self) -> None:
        """Write the queued rows (one executemany per table) and the new log size."""
        for table, rows in self._rows.items():
            _insert(table).many(self.conn, rows)
        if self._head is not None and self._size != self._head:
            _SET_HEAD.rowcount(self.conn, {"size": self._size})


class GroupCommit:
    """This process's writer (a thread, or the event loop when `inline`). `await write(job)` and `run(job)`
    return once the transaction holding the job has committed."""

    def __init__(self, engine: Engine, lock: WriteLock, *, max_jobs: int = MAX_JOBS, inline: bool = False,
                 on_commit: Callable[[int], None] | None = None) -> None:
        self._engine = engine
        self.inline = inline
        self._loop_connections = LoopConnections(engine) if inline else None
        self._begin = self._loop_connections.begin if inline else engine.begin
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Job, asyncio.Future]]] = {}
        self._on_commit = on_commit             # told the number of jobs of each committed batch (metrics)
        self._lock = lock
        self._max_jobs = max_jobs
        self._queue: queue.SimpleQueue[tuple[Job, Future] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    async def write(self, job: Job[T]) -> T:
        """The job's result once the transaction holding it has committed (the event loop's side)."""
        if not self.inline:
            return await asyncio.wrap_future(self.submit(job))
        loop = asyncio.get_running_loop()
        pending = self._pending.setdefault(loop, [])
        if not pending:
            loop.call_soon(self._flush, loop)
        done = loop.create_future()
        pending.append((job, done))
        return await done

    def run(self, job: Job[T]) -> T:
        """The job's result once committed, blocking the calling thread (inline: a transaction of its own)."""
        if not self.inline:
            return self.submit(job).result()
        done: Future = Future()
        done.set_running_or_notify_cancel()
        self._commit([(job, done)])
        return done.result()

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit every job queued on `loop` in this turn, on the loop (inline)."""
        items = [(job, done) for job, done in self._pending.pop(loop, ()) if not done.cancelled()]
        for start in range(0, len(items), self._max_jobs):
            self._commit(items[start:start + self._max_jobs])

    def submit(self, job: Job[T]) -> Future:
        """Queue a job; the future completes once the transaction holding it commits (or fails)."""
        if self.inline:
            raise RuntimeError("an inline group commit has no writer thread: use write() or run()")
        done: Future = Future()
        self._ensure_started()
        self._queue.put((job, done))
        return done

    def close(self) -> None:
        """Finish the queued jobs, then stop the thread (inline: give back the loops' connections)."""
        if self._loop_connections is not None:
            self._loop_connections.close()
        with self._start:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="veil-group-commit", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        stop = False
        while not stop:
            items, stop = self._next_batch()
            # A caller that gave up (its future cancelled, e.g. an awaiting request task cancelled) gets no
            # write; every other job is now running, so its future can no longer be cancelled under us.
            running = [(job, done) for job, done in items if done.set_running_or_notify_cancel()]
            if not running:
                continue
            try:
                self._commit(running)
            except BaseException as exc:  # noqa: BLE001 - a bug here must fail its callers, not hang everyone
                log.exception("group commit failed outside any job")
                for _, done in running:
                    if not done.done():
                        done.set_exception(exc)

    def _next_batch(self) -> tuple[list[tuple[Job, Future]], bool]:
        """The jobs queued now (waiting for the first), and whether close() asked the thread to stop."""
        first = self._queue.get()
        if first is None:
            return [], True
        items = [first]
        while len(items) < self._max_jobs:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                return items, True
            items.append(more)
        return items, False

    def _commit(self, items: list[tuple[Job, Future]]) -> None:
        try:
            results = self._transaction([job for job, _ in items])
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller(s), never swallowed
            if len(items) == 1:
                items[0][1].set_exception(exc)
            else:
                for item in items:                 # find the bad job: every job alone
                    self._commit([item])
            return
        if self._on_commit is not None:
            self._on_commit(len(items))
        for (_, done), result in zip(items, results):
            done.set_result(result)

    def _transaction(self, jobs: list[Job]) -> list[Any]:
        with self._lock(), self._begin() as conn:
            batch = Batch(conn)
            results = [job(batch) for job in jobs]
            batch.finish()
        return results
