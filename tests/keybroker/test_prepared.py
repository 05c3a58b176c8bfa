"""keybroker.db.prepared: each hot KBS statement run on the driver's cursor gives what Connection.execute gives
(same values, same types: datetimes, booleans, bytes), on SQLite and on PostgreSQL, inside the caller's
transaction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from keybroker.db.engine import make_engine
from keybroker.db.migrate import upgrade
from keybroker.db.models import Attestation, KbsSession, PolicyVersion, Resource, ResourceVersion
from keybroker.db.prepared import Prepared
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
