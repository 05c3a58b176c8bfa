"""keybroker.db.engine.LoopConnections: one kept connection per event loop, the pool elsewhere; a failed
transaction rolls back and leaves the kept connection usable."""

from __future__ import annotations

import asyncio
import gc

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, select

from keybroker.db.engine import LoopConnections, make_engine

META = MetaData()
ROWS = Table("rows", META, Column("id", Integer, primary_key=True))


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    META.create_all(engine)
    yield engine
    engine.dispose()


def count(conn) -> int:
    return conn.execute(select(func.count()).select_from(ROWS)).scalar_one()


def test_transactions_on_one_loop_share_one_connection_and_commit(engine):
    kept = LoopConnections(engine)

    async def main():
        seen = []
        for i in range(3):
            with kept.begin() as conn:
                conn.execute(ROWS.insert(), {"id": i})
                seen.append(conn)
        assert engine.pool.checkedout() == 1          # kept out of the pool until close()
        kept.close()
        assert engine.pool.checkedout() == 0
        return seen

    seen = asyncio.run(main())
    assert len({id(c) for c in seen}) == 1
    with engine.connect() as conn:
        assert count(conn) == 3                       # every transaction committed


def test_two_loops_keep_two_connections(engine):
    kept = LoopConnections(engine)

    async def one():
        with kept.begin() as conn:
            return conn

    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        first, second = (loop.run_until_complete(one()) for loop in loops)
        assert first is not second
        assert engine.pool.checkedout() == 2
        assert loops[0].run_until_complete(one()) is first      # each loop keeps its own
    finally:
        for loop in loops:
            loop.close()
    kept.close()
    assert engine.pool.checkedout() == 0


def test_off_the_loop_the_pool_is_used(engine):
    kept = LoopConnections(engine)
    with kept.begin() as conn:
        conn.execute(ROWS.insert(), {"id": 1})
        assert engine.pool.checkedout() == 1
    assert engine.pool.checkedout() == 0              # returned at once: nothing kept without a loop


def test_a_failed_transaction_rolls_back_and_the_connection_stays_usable(engine):
    kept = LoopConnections(engine)

    async def main():
        with pytest.raises(ZeroDivisionError):
            with kept.begin() as conn:
                conn.execute(ROWS.insert(), {"id": 7})
                1 / 0
        with kept.begin() as conn:
            assert count(conn) == 0                   # the insert was rolled back
            conn.execute(ROWS.insert(), {"id": 8})
        with kept.begin() as conn:
            return count(conn)

    assert asyncio.run(main()) == 1
    kept.close()


def test_a_dead_loops_connection_goes_back_to_the_pool(engine):
    kept = LoopConnections(engine)

    async def one():
        with kept.begin():
            pass

    asyncio.run(one())
    gc.collect()
    assert engine.pool.checkedout() == 0              # nothing leaks from loops that have ended
