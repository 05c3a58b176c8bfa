"""Engines and sessions: SQLite (WAL, immediate write transactions) or PostgreSQL (psycopg 3).

SQLite allows one writer at a time, and a writer that finds the lock taken
sleeps in SQLite's busy handler (1, 2, 5 … up to 100 ms between tries): under
concurrent requests most of the time went to those sleeps. So on SQLite:
reads run in deferred transactions (WAL readers never wait for the writer),
and write transactions queue on `WriteLock` (a mutex for this process's
threads, an flock beside the database file for other processes), which wakes
the next writer the moment the previous one commits. PostgreSQL needs neither.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

READ_ONLY = "veil_read_only"
log = logging.getLogger("veil.broker")


def normalize_url(url: str) -> str:
    """Accept `postgresql://…` and use the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_events(engine: Engine, checkpoints_on_commit: bool) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE so writers serialize instead of failing late."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None          # let us issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        if not checkpoints_on_commit:              # a WalCheckpointer does them
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:               # on the driver's connection: no statement execution machinery
        conn.connection.driver_connection.execute(
            "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def make_engine(url: str, *, checkpoints_on_commit: bool = True) -> Engine:
    """An engine whose errors never quote statement parameters (`hide_parameters`): what a failed write
    carried (nonces, sealed values, evidence) stays out of exception messages and the logs that print them.
    On SQLite, `checkpoints_on_commit=False` leaves WAL checkpoints to a `WalCheckpointer`."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        _sqlite_events(engine, checkpoints_on_commit)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only: a deferred transaction on SQLite (no write lock taken)."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


class WriteLock:
    """Queues this broker's write transactions on one SQLite database file (a no-op otherwise)."""

    def __init__(self, engine: Engine) -> None:
        url = engine.url
        self._enabled = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        self._mutex = threading.Lock()
        self._path = f"{url.database}.writelock" if self._enabled else None
        self._fd: int | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if not self._enabled:
            yield
            return
        with self._mutex:                                  # one thread of this process at a time …
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)           # … then one process (released if it dies)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


@contextmanager
def write_session(factory: sessionmaker[Session], lock: WriteLock | None = None) -> Iterator[Session]:
    """A write transaction: committed on success, rolled back on error, queued behind `lock`."""
    with lock() if lock is not None else nullcontext(), factory.begin() as session:
        yield session


class LoopConnections:
    """Transactions on one Core connection per event loop, kept checked out of the pool, where the broker runs
    database work on the loop itself (SQLite, keybroker.state.Local): taking a connection from the pool and
    resetting it on return cost more than a small read. Work on any other thread (no running loop) takes its
    connection from the pool as usual. Work on the loop never awaits inside a transaction, so one connection
    per loop is never wanted by two transactions at once."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._kept: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Connection] = weakref.WeakKeyDictionary()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction (committed on success, rolled back on error) and its connection."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with self._engine.begin() as conn:
                yield conn
            return
        conn = self._kept.get(loop)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._kept[loop] = self._engine.connect()
        with conn.begin():
            yield conn

    def close(self) -> None:
        """Give the kept connections back to the pool."""
        for conn in list(self._kept.values()):
            conn.close()
        self._kept.clear()


class WalCheckpointer:
    """SQLite WAL checkpoints on a thread of their own. By default the commit that takes the WAL past 1,000
    pages copies it into the database file and fsyncs, on whichever thread committed: for the broker, a
    worker's event loop, which then answered nothing for 10–30 ms. Here a thread runs a PASSIVE checkpoint
    (it never waits for readers or writers) every `interval_s`, on a connection of its own; sqlite3 lets go
    of the GIL while it copies and fsyncs, so the loop goes on serving."""

    def __init__(self, engine: Engine, interval_s: float = 0.2) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="veil-wal-checkpoint", daemon=True)
        self.checkpoints = 0                       # PASSIVE checkpoints run (tests, metrics)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conn = self._engine.raw_connection()
        try:
            while not self._stop.wait(self._interval_s):
                self.checkpoint(conn)
            self.checkpoint(conn)                   # what the last commits left
        finally:
            conn.close()

    def checkpoint(self, conn) -> None:
        try:
            cursor = conn.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            finally:
                cursor.close()
            self.checkpoints += 1
        except sqlite3.Error as exc:               # e.g. a disk error: said, and tried again next time
            log.warning("WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        """Stop the thread after one last checkpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
