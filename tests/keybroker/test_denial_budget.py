"""The per-address denial budget (keybroker/denials.py): KBS error answers spend it; once spent, the address
gets 429 with Retry-After before any work, nothing is appended to the log; successes never spend it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attestation.attesters.emulated import EmulatedAttester


@pytest.fixture
def make_broker(tmp_path, trust_dirs, policy_docs):
    from keybroker.admin import service
    from keybroker.admin.auth import Principal
    from keybroker.app import create_app
    from keybroker.db.engine import make_engine
    from keybroker.db.migrate import upgrade
    from keybroker.resources.paths import ResourcePath
    from keybroker.settings import BrokerSettings, KekSettings

    made = []

    def make(denials_per_minute: int, storage: str = "memory://"):
        db_url = f"sqlite:///{tmp_path / f'broker-{len(made)}.db'}"
        engine = make_engine(db_url)
        upgrade(engine)
        engine.dispose()
        anchors, bundle = trust_dirs
        settings = BrokerSettings(db_url=db_url, allow_emulated=True, emulated_anchors=anchors, collateral=bundle,
                                  kek=KekSettings(file=tmp_path / "kek"), denials_per_minute=denials_per_minute,
                                  denial_storage=storage)
        app = create_app(settings)
        state = app.state.broker
        who = Principal("kid", "test", "default", frozenset({"key-admin", "policy-admin"}))
        service.push_policy(state, who, "dev-pinned", policy_docs.pinned("dev-pinned"))
        service.create_key(state, who, ResourcePath.of("dev", "m", "dek"), b"k" * 32, 32, "dev-pinned")
        made.append(state)
        return app, state

    yield make
    for state in made:
        state.group.close()
        state.engine.dispose()


def log_size(state) -> int:
    with state.sessions() as db:
        return db.execute(text("SELECT size FROM log_head")).scalar_one()


def attest_without_session(http: TestClient):
    return http.post("/kbs/v0/attest", json={"tee-pubkey": {}, "tee-evidence": "{}"})


def test_an_address_that_spent_its_budget_gets_429_and_nothing_is_logged(make_broker):
    app, state = make_broker(3)
    http = TestClient(app, client=("192.0.2.7", 40000))
    for _ in range(3):
        assert attest_without_session(http).status_code in (400, 401)
    size = log_size(state)
    refused = http.post("/kbs/v0/auth", json={"version": "0.4.0", "tee": "tdx", "extra-params": ""})
    assert refused.status_code == 429
    assert refused.json()["code"] == "kbs.too_many_denials"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert attest_without_session(http).status_code == 429
    assert log_size(state) == size                          # refused before any work: no entry, no session
    with state.sessions() as db:
        assert db.execute(text("SELECT count(*) FROM kbs_sessions")).scalar_one() == 0
    metrics = TestClient(app).get("/metrics").text
    assert "veil_broker_rate_limited_total 2.0" in metrics
    # Another address has its own budget.
    other = TestClient(app, client=("192.0.2.8", 40000))
    assert other.post("/kbs/v0/auth", json={"version": "0.4.0", "tee": "tdx", "extra-params": ""}).status_code == 200


def test_successful_releases_never_spend_the_budget(make_broker, vendor):
    from keybroker.client import KbsClient
    app, _ = make_broker(1)
    http = TestClient(app, client=("192.0.2.9", 40000))
    for _ in range(4):
        client = KbsClient("http://testserver", EmulatedAttester(vendor, "tdx"), http=http)
        assert client.get_resource("dev/m/dek") == b"k" * 32


def test_a_denied_release_spends_it(make_broker, vendor):
    from keybroker.client import KbsClient
    app, _ = make_broker(1)
    http = TestClient(app, client=("192.0.2.10", 40000))
    client = KbsClient("http://testserver", EmulatedAttester(vendor, "tdx"), http=http)
    client.attest()
    assert http.get("/kbs/v0/resource/dev/m/unknown").status_code == 404     # a logged denial: spends the one unit
    assert http.get("/kbs/v0/resource/dev/m/dek").status_code == 429


def test_zero_turns_the_budget_off(make_broker):
    app, _ = make_broker(0)
    http = TestClient(app, client=("192.0.2.11", 40000))
    assert all(attest_without_session(http).status_code in (400, 401) for _ in range(30))


def test_cli_refuses_a_storage_uri_with_credentials(tmp_path):
    from typer.testing import CliRunner

    from veil.cli.main import app
    result = CliRunner().invoke(app, ["broker", "serve", "--db", f"sqlite:///{tmp_path / 'b.db'}",
                                      "--denial-storage", "redis://:hunter2@127.0.0.1:6379"])
    assert result.exit_code == 2
    assert "password" in result.output and "hunter2" not in result.output
    result = CliRunner().invoke(app, ["broker", "serve", "--db", f"sqlite:///{tmp_path / 'b.db'}",
                                      "--denial-storage", "nosuch://x"])
    assert result.exit_code == 2 and "--denial-storage" in result.output


def test_an_oversized_body_is_refused_before_it_is_read_whole(make_broker):
    """A denial keeps the body in the log: bodies over 512 KiB are refused (400), declared or streamed."""
    app, state = make_broker(0)
    http = TestClient(app)
    size = log_size(state)
    big = b'{"tee-pubkey": {}, "tee-evidence": "' + b"A" * (600 << 10) + b'"}'
    declared = http.post("/kbs/v0/attest", content=big, headers={"content-type": "application/json"})
    streamed = http.post("/kbs/v0/attest", content=iter([big[:1000], big[1000:]]),
                         headers={"content-type": "application/json"})
    for resp in (declared, streamed):
        assert resp.status_code == 400 and resp.json()["code"] == "kbs.body_too_large"
    assert log_size(state) == size


def test_kbs_writes_go_through_group_commit_and_are_counted(make_broker, vendor):
    """auth, attest and resource each commit one group-commit job (sequential calls: batches of one)."""
    from keybroker.client import KbsClient
    app, state = make_broker(0)
    http = TestClient(app)
    for _ in range(2):
        KbsClient("http://testserver", EmulatedAttester(vendor, "tdx"), http=http).get_resource("dev/m/dek")
    metrics = http.get("/metrics").text
    assert "veil_broker_group_commit_jobs_sum 6.0" in metrics and "veil_broker_group_commit_jobs_count 6.0" in metrics
    with state.sessions() as db:
        assert db.execute(text("SELECT count(*) FROM releases")).scalar_one() == 2


def test_behind_a_named_proxy_each_forwarded_client_has_its_own_budget(make_broker):
    """uvicorn's proxy-headers middleware (what `--forwarded-allow-ips` configures) gives the denial budget the
    client's address, so one client spending it does not lock out the others behind the same proxy."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
    app, _ = make_broker(2)
    proxied = ProxyHeadersMiddleware(app, trusted_hosts="10.0.0.5")
    http = TestClient(proxied, client=("10.0.0.5", 40000))
    attacker, other = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
    for _ in range(2):
        assert http.post("/kbs/v0/attest", json={}, headers=attacker).status_code in (400, 401)
    assert http.post("/kbs/v0/attest", json={}, headers=attacker).status_code == 429
    auth = {"version": "0.4.0", "tee": "tdx", "extra-params": ""}
    assert http.post("/kbs/v0/auth", json=auth, headers=other).status_code == 200


REDIS = "redis://127.0.0.1:6379"


def test_replicas_sharing_redis_share_the_budget(make_broker):
    """Two brokers (as two replicas) with `--denial-storage redis://…`: denials spent at one are refused at the
    other. Needs the Redis server CI provides."""
    import random

    import redis
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server reachable at {REDIS}; CI provides one")
    address = f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"     # a fresh budget in the shared store
    first, _ = make_broker(2, REDIS)
    second, _ = make_broker(2, REDIS)
    one, two = TestClient(first, client=(address, 40000)), TestClient(second, client=(address, 40000))
    assert attest_without_session(one).status_code in (400, 401)
    assert attest_without_session(two).status_code in (400, 401)
    assert attest_without_session(one).status_code == 429
    assert attest_without_session(two).status_code == 429
