"""keybroker.db.prepared: each hot KBS statement run on the driver's cursor gives what Connection.execute gives
(same values, same types: datetimes, booleans, bytes), on SQLite and on PostgreSQL, inside the caller's
transaction; and the group commit's inserts (PreparedInsert) write what Connection.execute writes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from keybroker.db.engine import make_engine
from keybroker.db.migrate import upgrade
from keybroker.db.models import Attestation, KbsSession, LogRecord, PolicyVersion, Release, Resource, ResourceVersion
from keybroker.db.prepared import Prepared, PreparedInsert
from keybroker.kbs import attest, release, sessions

NOW = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=timezone.utc)
WHOLE_SECOND = datetime(2026, 12, 3, 12, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path, pg_url):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'broker.db'}"
    else:
        url = pg_url()
        if url is None:
            pytest.skip("no PostgreSQL server reachable at 127.0.0.1:5432 (trust auth); CI provides one")
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(KbsSession.__table__.insert(), [
            dict(id="s1", nonce="n", tee="tdx", hash_alg="sha384", created_at=NOW, expires_at=NOW + timedelta(minutes=5),
                 consumed=False, attestation_id="a1"),
            dict(id="s2", nonce="m", tee="snp", hash_alg="sha512", created_at=NOW, expires_at=NOW - timedelta(seconds=1),
                 consumed=False, attestation_id=None),
            dict(id="s3", nonce="o", tee="tdx", hash_alg="sha384", created_at=NOW, expires_at=WHOLE_SECOND,
                 consumed=False, attestation_id=None)])
        conn.execute(Attestation.__table__.insert(), dict(
            id="a1", session_id="s1", tee="tdx", claims_json='{"tee": "tdx"}', tee_pubkey_json="{}",
            evidence_digest="ab" * 32, created_at=NOW, expires_at=NOW + timedelta(hours=1), log_seq=7))
        rid = conn.execute(Resource.__table__.insert().returning(Resource.id), dict(
            tenant="default", repo="r", type="t", tag="g", policy_name="p", created_at=NOW)).scalar_one()
        conn.execute(ResourceVersion.__table__.insert(), [
            dict(resource_id=rid, version=v, ciphertext=bytes([v]) * 40, wrapped_key=b"\x00\xff" * 20, kek_id="k",
                 created_at=NOW) for v in (1, 2, 3)])
        conn.execute(PolicyVersion.__table__.insert(), [
            dict(tenant="default", name="p", version=v, text=f"v{v}", references=None, digest=f"d{v}",
                 created_at=NOW) for v in (1, 2)])
    yield engine
    engine.dispose()


def _both(engine, prepared: Prepared, params: dict):
    with engine.begin() as conn:
        return prepared.first(conn, params), conn.execute(prepared.statement, params).first()


CASES = {
    "session": (attest._SESSION, {"sid": "s1"}),
    "attestation by session": (release._BY_SESSION, {"sid": "s1"}),
    "attestation by token": (release._BY_TOKEN, {"jti": "a1"}),
    "resource": (release._RESOURCE, {"repo": "r", "type": "t", "tag": "g"}),
    "newest policy": (release._NEWEST_POLICY, {"tenant": "default", "name": "p"}),
}


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_a_prepared_select_reads_what_execute_reads(engine, case):
    prepared, params = CASES[case]
    fast, reference = _both(engine, prepared, params)
    assert reference is not None
    assert tuple(fast) == tuple(reference)
    assert [type(v) for v in fast] == [type(v) for v in reference]
    assert fast._fields == tuple(reference._fields)


def test_the_newest_version_is_the_highest_with_its_bytes(engine):
    with engine.begin() as conn:
        rid = conn.execute(select(Resource.id)).scalar_one()
    fast, reference = _both(engine, release._NEWEST_VERSION, {"resource_id": rid})
    assert fast.version == 3 and fast.ciphertext == bytes([3]) * 40 and isinstance(fast.ciphertext, bytes)
    assert tuple(fast) == tuple(reference)


def test_no_row_is_none(engine):
    assert _both(engine, release._BY_SESSION, {"sid": "s2"}) == (None, None)      # s2 has no attestation
    assert _both(engine, attest._SESSION, {"sid": "nope"}) == (None, None)


def test_times_read_back_as_written(engine):
    fast, _ = _both(engine, attest._SESSION, {"sid": "s1"})
    assert fast.expires_at.replace(tzinfo=timezone.utc) == NOW + timedelta(minutes=5)
    assert fast.consumed is False


def test_consume_binds_time_and_boolean_and_counts_once(engine):
    with engine.begin() as conn:
        assert not sessions.consume(conn, "s2", NOW)                   # expired: the time comparison binds
        assert sessions.consume(conn, "s1", NOW, attestation_id="a9")
        assert not sessions.consume(conn, "s1", NOW)                   # single use
    with engine.begin() as conn:
        row = conn.execute(select(KbsSession.consumed, KbsSession.attestation_id).where(KbsSession.id == "s1")).one()
    assert tuple(row) == (True, "a9")


def test_a_session_is_stale_at_the_instant_it_expires(engine):
    """The time is bound as the column type stores it: sqlite3's own datetime adapter would write
    '12:10:00+00:00', which sorts before the stored '12:10:00.000000' and would let the nonce through."""
    with engine.begin() as conn:
        assert not sessions.consume(conn, "s3", WHOLE_SECOND)
        assert sessions.consume(conn, "s3", WHOLE_SECOND - timedelta(microseconds=1))


def test_it_runs_inside_the_callers_transaction(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        assert sessions.consume(conn, "s1", NOW)
        raise RuntimeError("roll back")
    with engine.begin() as conn:
        assert sessions.consume(conn, "s1", NOW)                       # the rolled-back consumption left it fresh


def _session_row(sid: str, **changes) -> dict:
    return dict(id=sid, nonce="n" + sid, tee="tdx", hash_alg="sha384", created_at=NOW, expires_at=WHOLE_SECOND,
                consumed=False, attestation_id=None) | changes


def _rows(conn, table, order_by):
    return [tuple(r) for r in conn.execute(select(*table.columns).order_by(order_by))]


def test_prepared_inserts_write_what_execute_writes(engine):
    """Times, booleans, bytes and NULLs go through the column types' processors: rows inserted by PreparedInsert
    read back exactly as the same rows inserted by Connection.execute (the log is append-only, so the reference
    rows get other keys)."""
    def rows(first: int) -> tuple[list[dict], list[dict]]:
        return ([_session_row(f"p{first}", nonce="n"), _session_row(f"p{first + 1}", nonce="n", consumed=True,
                                                                  attestation_id="a1")],
                [dict(seq=first + i, leaf_hash=bytes([i]) * 32, entry=b'{"n":%d}' % i, tenant=t)
                 for i, t in enumerate((None, "default"))])

    def read(keys) -> tuple[list, list]:
        with engine.begin() as conn:
            got = (conn.execute(select(*KbsSession.__table__.columns).where(KbsSession.id.in_(keys[0]))
                                .order_by(KbsSession.id)).all(),
                   conn.execute(select(*LogRecord.__table__.columns).where(LogRecord.seq.in_(keys[1]))
                                .order_by(LogRecord.seq)).all())
        return tuple([tuple(r)[1:] for r in table] for table in got)     # without the keys

    fast_sessions, fast_records = rows(0)
    ref_sessions, ref_records = rows(2)
    with engine.begin() as conn:
        PreparedInsert(KbsSession.__table__).many(conn, fast_sessions)
        PreparedInsert(LogRecord.__table__).many(conn, fast_records)
        conn.execute(KbsSession.__table__.insert(), ref_sessions)
        conn.execute(LogRecord.__table__.insert(), ref_records)
    fast, reference = read((["p0", "p1"], [0, 1])), read((["p2", "p3"], [2, 3]))
    assert fast == reference
    assert fast[1][0][0] == b"\x00" * 32 and fast[1][0][2] is None and fast[0][1][5] is True
    with engine.begin() as conn:                      # the stored time compares as the column type writes it
        assert not sessions.consume(conn, "p0", WHOLE_SECOND)
        assert sessions.consume(conn, "p0", WHOLE_SECOND - timedelta(microseconds=1))


def test_a_prepared_insert_leaves_an_autoincrement_key_to_the_database(engine):
    row = dict(attestation_id="a1", tenant="default", resource="r/t/g", version=1, policy="p@1", policy_digest="d",
               log_seq=0, created_at=NOW)
    with engine.begin() as conn:
        PreparedInsert(Release.__table__).many(conn, [row, row | {"version": 2}])
    with engine.begin() as conn:
        ids = conn.execute(select(Release.id, Release.version).order_by(Release.id)).all()
    assert [v for _, v in ids] == [1, 2] and ids[0][0] < ids[1][0]


def test_a_prepared_insert_refuses_rows_it_cannot_write_as_execute_would(engine):
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="Python-side defaults: consumed"):
            PreparedInsert(KbsSession.__table__).many(conn, [{k: v for k, v in _session_row("p3").items()
                                                              if k != "consumed"}])
        with pytest.raises(ValueError, match="the same columns"):
            PreparedInsert(KbsSession.__table__).many(conn, [_session_row("p4"), _session_row("p5") | {"x": 1}])


def test_a_prepared_insert_rolls_back_with_the_callers_transaction(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        PreparedInsert(KbsSession.__table__).many(conn, [_session_row("p6")])
        raise RuntimeError("roll back")
    with engine.begin() as conn:
        assert conn.execute(select(KbsSession.id).where(KbsSession.id == "p6")).first() is None
