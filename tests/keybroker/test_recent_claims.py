"""A release takes its attestation's claims from the process that verified them (keybroker/kbs/recent.py) or,
where that process is another, from the stored row: the log entries, the token and the decision are the same
either way."""

from __future__ import annotations

import hashlib

import jwt
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from attestation.attesters.emulated import EmulatedAttester
from attestation.claims import Claims
from attestation.jcs import canonical_json
from keybroker.audit.entry import LogEntry
from keybroker.db.logstore import SqlLogStore
from keybroker.kbs.recent import AttestedClaims, RecentClaims

VALUE = b"r" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, trust_dirs, tmp_path, policy_docs, pg_url):
    from keybroker.admin import service
    from keybroker.admin.auth import Principal
    from keybroker.app import create_app
    from keybroker.db.engine import make_engine
    from keybroker.db.migrate import upgrade
    from keybroker.resources.paths import ResourcePath
    from keybroker.settings import BrokerSettings, KekSettings

    url = f"sqlite:///{tmp_path / 'b.db'}" if request.param == "sqlite" else pg_url()
    if url is None:
        pytest.skip("no PostgreSQL server reachable at 127.0.0.1:5432; CI provides one")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    anchors, bundle = trust_dirs
    settings = BrokerSettings(db_url=url, allow_emulated=True, emulated_anchors=anchors, collateral=bundle,
                              kek=KekSettings(file=tmp_path / "kek"))
    app = create_app(settings)
    who = Principal("kid", "test", "default", frozenset({"key-admin", "policy-admin"}))
    service.push_policy(app.state.broker, who, "dev-pinned", policy_docs.pinned("dev-pinned"))
    service.create_key(app.state.broker, who, ResourcePath.of("dev", "m", "dek"), VALUE, 32, "dev-pinned")
    yield app
    app.state.broker.group.close()
    app.state.broker.engine.dispose()


def _entries(state) -> list[LogEntry]:
    with state.sessions() as db:
        return [LogEntry.from_canonical(bytes(e)) for e in SqlLogStore(db).entries(0, 10_000)]


def _release(app, vendor, *, forget: bool):
    """Attest and release on one client; `forget`: as if the release ran in another worker."""
    from keybroker.client import KbsClient

    state = app.state.broker
    client = KbsClient("http://testserver", EmulatedAttester(vendor, "tdx"), http=TestClient(app))
    token = client.attest()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    remembered = state.recent_claims.get(jti)
    assert remembered is not None
    if forget:
        state.recent_claims = RecentClaims()
    assert client.get_resource("dev/m/dek") == VALUE
    return jti, remembered, token


@pytest.mark.parametrize("forget", [False, True])
def test_release_entry_records_the_attestation_claims(app, vendor, forget):
    state = app.state.broker
    jti, remembered, _ = _release(app, vendor, forget=forget)
    entries = _entries(state)
    attestation, release = entries[-2], entries[-1]
    assert attestation.kind == "attestation" and release.kind == "release"
    assert release.claims == attestation.claims == remembered.document
    assert release.claims_digest == attestation.claims_digest == hashlib.sha256(remembered.jcs).hexdigest()
    with state.sessions() as db:
        stored = db.execute(text("SELECT claims_json FROM attestations WHERE id = :i"), {"i": jti}).scalar_one()
    assert stored.encode() == remembered.jcs == canonical_json(remembered.document)    # stored in JCS form
    assert Claims.model_validate_json(stored) == remembered.claims


def test_token_carries_the_same_tee_claims(app, vendor):
    _, remembered, token = _release(app, vendor, forget=False)
    payload = jwt.decode(token, options={"verify_signature": False})
    annotated = payload["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
    assert annotated["tdx"] == remembered.claims.tdx.model_dump(mode="json")


def test_a_replayed_attestation_is_not_remembered(app, vendor):
    from attestation.binding import report_data
    from keybroker.client import attestation_body, ephemeral_key, request_body, tee_pubkey

    state = app.state.broker
    http = TestClient(app)
    nonce = http.post("/kbs/v0/auth", json=request_body("tdx")).json()["nonce"]
    key = tee_pubkey(ephemeral_key())
    body = attestation_body(nonce, key, EmulatedAttester(vendor, "tdx").collect(report_data(nonce, key)))
    assert http.post("/kbs/v0/attest", json=body).status_code == 200
    before = len(state.recent_claims)
    replay = http.post("/kbs/v0/attest", json=body)       # the same session and nonce again
    assert replay.status_code == 401 and replay.json()["code"] == "kbs.nonce_consumed"
    assert len(state.recent_claims) == before


def test_the_newest_entries_are_kept():
    recent = RecentClaims(max_entries=3)
    item = AttestedClaims(claims=None, document={}, jcs=b"{}")      # type: ignore[arg-type]
    for i in range(5):
        recent.put(f"a{i}", item)
    assert len(recent) == 3
    assert [recent.get(f"a{i}") for i in range(5)] == [None, None, item, item, item]
