"""keybroker.db.engine.WalCheckpointer: a broker's SQLite engine leaves WAL checkpoints to a thread of its own,
and that thread moves committed pages into the database file (read here with `immutable=1`, which ignores the
WAL: it sees only what a checkpoint has copied)."""

from __future__ import annotations

import sqlite3
import time

from sqlalchemy import text

from keybroker.db.engine import WalCheckpointer, make_engine


def _write(engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB)"))
        conn.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": b"x" * 8000}] * rows)   # > 1,000 pages


def _in_database_file(path) -> int | None:
    """Rows of t in the database file alone, the WAL ignored; None for a read torn by a checkpoint writing the
    file at that moment (`immutable=1` assumes nobody does)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    except sqlite3.OperationalError as exc:     # no table yet (its creation is still in the WAL), or torn
        return 0 if "no such table" in str(exc) else None
    except sqlite3.DatabaseError:               # "malformed": torn
        return None
    finally:
        conn.close()


def test_the_broker_engine_does_not_checkpoint_on_commit(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}", checkpoints_on_commit=False)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
    _write(engine, 600)
    assert _in_database_file(tmp_path / "b.db") == 0          # all of it still in the WAL: nobody checkpointed
    engine.dispose()


def test_a_default_engine_checkpoints_on_commit(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
    _write(engine, 600)
    _write(engine, 1)                                          # the commit after the WAL passed 1,000 pages
    assert _in_database_file(tmp_path / "c.db") >= 600
    engine.dispose()


def test_the_checkpointer_thread_moves_committed_pages_into_the_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}", checkpoints_on_commit=False)
    checkpointer = WalCheckpointer(engine, interval_s=0.05)
    checkpointer.start()
    try:
        _write(engine, 600)
        deadline = time.monotonic() + 30
        seen, done = None, 0
        while not (seen == 600 and done) and time.monotonic() < deadline:     # while the thread runs, with
            time.sleep(0.05)                                                     # no one else checkpointing
            done, seen = checkpointer.checkpoints, _in_database_file(tmp_path / "d.db")
        assert seen == 600 and done > 0
    finally:
        checkpointer.close()
    assert _in_database_file(tmp_path / "d.db") == 600         # the file at rest
    _write(engine, 5)
    assert _in_database_file(tmp_path / "d.db") == 600         # stopped: no more checkpoints
    engine.dispose()


def test_close_runs_one_last_checkpoint(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}", checkpoints_on_commit=False)
    checkpointer = WalCheckpointer(engine, interval_s=3600)     # would never wake up by itself
    checkpointer.start()
    _write(engine, 10)
    checkpointer.close()
    assert _in_database_file(tmp_path / "e.db") == 10
    engine.dispose()
