"""The attestation log store: gap-free sequence numbers under concurrent appends (SQLite and
PostgreSQL), append-only in the database, and a release that cannot commit without its log entry."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attestation.attesters.emulated import EmulatedAttester
from keybroker.audit.checkpoint import NoteSigner
from keybroker.audit.entry import LogEntry
from keybroker.db.engine import make_engine, session_factory
from keybroker.db.logstore import SqlLogStore
from keybroker.db.migrate import upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, pg_url):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
    else:
        url = pg_url()
        if url is None:
            pytest.skip("no PostgreSQL server reachable at 127.0.0.1:5432; CI provides one")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_concurrent_appends_never_collide_or_leave_gaps(db_url):
    from keybroker import journal
    engine = make_engine(db_url)
    factory = session_factory(engine)
    signer = NoteSigner.generate("test-log")

    def worker(n: int) -> None:
        for i in range(10):
            with factory.begin() as db:
                journal.append(db, signer, "test-log", kind="admin", actor=f"w{n}", action=f"a{i}")

    assert in_threads(worker, 8) == []
    numbered_without_gaps(factory, 80)
    engine.dispose()


def in_threads(worker, count: int) -> list[BaseException]:
    """Run worker(0 … count-1) on as many threads at once; what they raised."""
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            worker(n)
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def numbered_without_gaps(factory, count: int) -> list[LogEntry]:
    """The log holds `count` entries numbered 0 … count-1 in order."""
    with factory() as db:
        store = SqlLogStore(db)
        assert store.size() == count
        entries = [LogEntry.from_canonical(bytes(e)) for e in store.entries(0, count)]
    assert [e.seq for e in entries] == list(range(count))
    return entries


def test_log_table_is_append_only_in_the_database(db_url):
    from keybroker import journal
    engine = make_engine(db_url)
    with session_factory(engine).begin() as db:
        journal.append(db, NoteSigner.generate("t"), "t", kind="admin", actor="a", action="b")
    for stmt in ("UPDATE log_entries SET entry = entry", "DELETE FROM log_entries"):
        with pytest.raises(Exception) as info:
            with engine.begin() as conn:
                conn.execute(text(stmt))
        assert "append-only" in str(info.value)
    engine.dispose()


def test_release_without_its_log_entry_never_commits(db_url, trust_dirs, vendor, tmp_path, monkeypatch,
                                                     policy_docs):
    from keybroker.admin import service
    from keybroker.admin.auth import Principal
    from keybroker.app import create_app
    from keybroker.client import KbsClient
    from keybroker.db.batch import Batch
    from keybroker.resources.paths import ResourcePath
    from keybroker.settings import BrokerSettings, KekSettings

    anchors, bundle = trust_dirs
    settings = BrokerSettings(db_url=db_url, allow_emulated=True, emulated_anchors=anchors, collateral=bundle,
                              kek=KekSettings(file=tmp_path / "kek"))
    app = create_app(settings)
    state = app.state.broker
    who = Principal("kid", "test", "default", frozenset({"key-admin", "policy-admin"}))
    service.push_policy(state, who, "dev-pinned", policy_docs.pinned("dev-pinned"))
    service.create_key(state, who, ResourcePath.of("dev", "m", "dek"), b"k" * 32, 32, "dev-pinned")

    real_append = Batch.append_log

    def failing(batch, pending):
        if b'"kind":"release"' in pending.entry.head:
            raise RuntimeError("simulated crash while appending the log entry")
        return real_append(batch, pending)

    http = TestClient(app, raise_server_exceptions=False)
    client = KbsClient("http://testserver", EmulatedAttester(vendor, "tdx"), http=http)
    client.attest()
    monkeypatch.setattr(Batch, "append_log", failing)
    resp = http.get("/kbs/v0/resource/dev/m/dek")
    assert resp.status_code == 500 and "ciphertext" not in resp.text
    with state.sessions() as db:
        assert db.execute(text("SELECT count(*) FROM releases")).scalar_one() == 0
        kinds = [LogEntry.from_canonical(bytes(e)).kind for e in SqlLogStore(db).entries(0, 10_000)]
    assert "release" not in kinds
    monkeypatch.setattr(Batch, "append_log", real_append)
    assert client.get_resource("dev/m/dek") == b"k" * 32
    state.engine.dispose()


def test_group_commit_numbers_appends_beside_plain_transactions(db_url):
    """Jobs of two writer threads (two GroupCommits: as two broker processes) and plain transactions append
    concurrently: every seq once, no gap, and each job is told the seq its own entry got."""
    from keybroker import journal
    from keybroker.db.batch import GroupCommit
    from keybroker.db.engine import WriteLock
    engine = make_engine(db_url)
    factory = session_factory(engine)
    signer = NoteSigner.generate("test-log")
    groups = [GroupCommit(engine, WriteLock(engine)), GroupCommit(engine, WriteLock(engine))]
    told: dict[str, int] = {}

    def worker(n: int) -> None:
        for i in range(10):
            actor = f"w{n}-{i}"
            if n % 4 == 3:
                with factory.begin() as db:
                    told[actor] = journal.append(db, signer, "test-log", kind="admin", actor=actor, action="a")
            else:
                pending = journal.prepare(kind="admin", actor=actor, action="a")
                told[actor] = groups[n % 2].run(lambda batch, p=pending: batch.append_log(p))

    errors = in_threads(worker, 8)
    for group in groups:
        group.close()
    assert errors == []
    assert {e.actor: e.seq for e in numbered_without_gaps(factory, 80)} == told
    engine.dispose()


def test_group_commit_a_failing_job_fails_alone(db_url):
    """One batch of three jobs, the middle one raising after it wrote: the batch is rolled back and each job
    runs again alone, so the other two commit (their seqs have no gap) and only the bad one fails."""
    from concurrent.futures import Future

    from keybroker import journal
    from keybroker.db.batch import GroupCommit
    from keybroker.db.engine import WriteLock
    engine = make_engine(db_url)
    group = GroupCommit(engine, WriteLock(engine))
    good = [journal.prepare(kind="admin", actor=f"good{i}", action="a") for i in range(2)]
    bad = journal.prepare(kind="admin", actor="bad", action="a")

    def failing(batch):
        batch.append_log(bad)
        raise RuntimeError("the job failed after appending")

    jobs = [lambda b: b.append_log(good[0]), failing, lambda b: b.append_log(good[1])]
    items = [(job, Future()) for job in jobs]
    group._commit(items)
    assert items[0][1].result() == 0 and items[2][1].result() == 1
    with pytest.raises(RuntimeError, match="after appending"):
        items[1][1].result()
    with session_factory(engine)() as db:
        store = SqlLogStore(db)
        assert store.size() == 2
        assert [LogEntry.from_canonical(bytes(e)).actor for e in store.entries(0, 2)] == ["good0", "good1"]
    engine.dispose()


def test_group_commit_skips_a_job_whose_caller_gave_up_and_keeps_serving(db_url):
    """A job whose future was cancelled before the writer took it (the awaiting request went away) is not
    run; the writer thread survives it and later jobs commit."""
    from concurrent.futures import Future

    from keybroker import journal
    from keybroker.db.batch import GroupCommit
    from keybroker.db.engine import WriteLock
    engine = make_engine(db_url)
    group = GroupCommit(engine, WriteLock(engine))
    pending = [journal.prepare(kind="admin", actor=f"a{i}", action="a") for i in range(3)]
    gave_up: Future = Future()
    assert gave_up.cancel()
    kept: Future = Future()
    group._queue.put((lambda b: b.append_log(pending[0]), gave_up))
    group._queue.put((lambda b: b.append_log(pending[1]), kept))
    assert group.submit(lambda b: b.append_log(pending[2])).result(timeout=60) == 1   # the writer takes all three
    assert kept.result(timeout=60) == 0 and gave_up.cancelled()
    group.close()
    assert [e.actor for e in numbered_without_gaps(session_factory(engine), 2)] == ["a1", "a2"]
    engine.dispose()


def test_inline_group_commit_commits_a_turn_of_the_loop_together(db_url):
    """Inline (no writer thread): the jobs awaited in one turn of the event loop commit in one transaction, a
    failing job fails alone, a job whose awaiting task was cancelled is not run, and each caller learns its
    own seq."""
    import asyncio

    from keybroker import journal
    from keybroker.db.batch import GroupCommit
    from keybroker.db.engine import WriteLock
    engine = make_engine(db_url)
    batches: list[int] = []
    group = GroupCommit(engine, WriteLock(engine), inline=True, on_commit=batches.append)
    pending = {name: journal.prepare(kind="admin", actor=name, action="a") for name in ("a", "b", "bad", "c", "gone")}

    def failing(batch):
        batch.append_log(pending["bad"])
        raise RuntimeError("the job failed after appending")

    async def main():
        jobs = [group.write(lambda b, n=n: b.append_log(pending[n])) for n in ("a", "b")]
        together = await asyncio.gather(*jobs)
        gone = asyncio.ensure_future(group.write(lambda b: b.append_log(pending["gone"])))
        await asyncio.sleep(0)                      # the job is queued; its caller gives up before the flush
        gone.cancel()
        mixed = await asyncio.gather(group.write(failing), group.write(lambda b: b.append_log(pending["c"])),
                                     return_exceptions=True)
        return together, mixed, gone

    together, mixed, gone = asyncio.run(main())
    assert together == [0, 1] and batches[0] == 2            # one transaction for both
    assert isinstance(mixed[0], RuntimeError) and mixed[1] == 2 and gone.cancelled()
    assert [e.actor for e in numbered_without_gaps(session_factory(engine), 3)] == ["a", "b", "c"]
    with pytest.raises(RuntimeError, match="no writer thread"):
        group.submit(lambda b: None)
    assert group.run(lambda b: b.append_log(journal.prepare(kind="admin", actor="d", action="a"))) == 3
    engine.dispose()


def test_broker_runs_on_the_loop_only_what_cannot_wait_on_the_network(db_url, trust_dirs, tmp_path):
    """SQLite reads and writes, the file KEK, an offline bundle and an in-memory denial budget run on the event
    loop; PostgreSQL, online collateral or a shared denial store each put their part back on threads."""
    from keybroker.settings import BrokerSettings, KekSettings
    from keybroker.state import BrokerState, Local
    anchors, bundle = trust_dirs
    base = dict(db_url=db_url, allow_emulated=True, emulated_anchors=anchors, kek=KekSettings(file=tmp_path / "kek"))
    sqlite = db_url.startswith("sqlite")
    cases = [(dict(collateral=bundle), Local(db=sqlite, kek=True, collateral=True, denials=True)),
             (dict(collateral=None), Local(db=sqlite, kek=True, collateral=False, denials=True)),
             (dict(collateral=bundle, denial_storage="redis://127.0.0.1:6379"),
              Local(db=sqlite, kek=True, collateral=True, denials=False))]
    for extra, local in cases:
        state = BrokerState.build(BrokerSettings(**base, **extra))
        assert (state.local, state.group.inline) == (local, sqlite), extra
        on_threads = state.local.describe().split("on threads: ")[1]           # what the start-up log says
        assert ("collateral" in on_threads, "denial budget" in on_threads) == (not local.collateral,
                                                                                not local.denials)
        state.engine.dispose()


def test_database_errors_do_not_quote_what_the_statement_carried(db_url):
    """A failed write's exception (which a server log may print) names the statement, not its parameters."""
    from sqlalchemy.exc import IntegrityError

    from keybroker.db.models import KbsSession
    engine = make_engine(db_url)
    row = dict(id="s" * 32, nonce="secret-nonce-value-0123456789", tee="tdx", hash_alg="sha384",
               created_at=dt.datetime.now(dt.timezone.utc), expires_at=dt.datetime.now(dt.timezone.utc),
               consumed=False, attestation_id=None)
    with engine.begin() as conn:
        conn.execute(KbsSession.__table__.insert(), row)
    with pytest.raises(IntegrityError) as info:
        with engine.begin() as conn:
            conn.execute(KbsSession.__table__.insert(), row)          # the same primary key again
    assert "secret-nonce-value" not in str(info.value) and "hidden" in str(info.value)
    engine.dispose()
