"""The KBS flow against a real broker process: the allow path and every named denial.

Each denial asserts the reason code, that it was logged, and that no key was released.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from attestation.attesters.emulated import EmulatedAttester
from attestation.binding import report_data
from attestation.emulated.tdx import SEPT_VE_DISABLE
from keybroker.client import KbsClient, KbsError, attestation_body, ephemeral_key, request_body, tee_pubkey

VALUE = bytes(range(32))
OUT_OF_DATE_SVN = bytes([4, 1, 2]) + bytes(13)


@pytest.fixture(scope="module")
def setup(broker, policy_docs):
    admin = broker.admin
    digests = {}
    for name, doc in (("dev-pinned", policy_docs.pinned("dev-pinned")),
                      ("prod", policy_docs.pinned("prod", anchor="vendor")),
                      ("development-emulated", policy_docs.development_emulated())):
        digests[name] = admin.push_policy(name, doc)["digest"]
    admin.create_key("dev/model/dek", value=VALUE, policy="dev-pinned")
    admin.create_key("dev/example/dek", policy="development-emulated")
    admin.create_key("dev/prod/dek", policy="prod")
    admin.create_key("dev/unbound/dek")
    return digests


def client(broker, vendor, **measurements) -> KbsClient:
    return KbsClient(broker.url, EmulatedAttester(vendor, "tdx", **measurements))


def reasons(exc: KbsError) -> list[str]:
    return [r["code"] for r in exc.reasons]


def denied(broker, fn, status: int, code: str) -> KbsError:
    """Run `fn`, expect a refusal with `code`; assert it was logged and nothing released."""
    before_released, before_log = broker.released_count(), len(broker.log())
    with pytest.raises(KbsError) as info:
        fn()
    assert info.value.status == status, info.value
    assert info.value.code == code, info.value
    assert broker.released_count() == before_released
    entries = broker.log()[before_log:]
    assert entries and entries[-1]["kind"] == "denial" and entries[-1]["decision"] == "deny"
    assert entries[-1]["reasons"][0]["code"] == code
    return info.value


def test_allow_path_returns_a_key_that_decrypts(broker, vendor, setup):
    before = broker.released_count()
    c = client(broker, vendor)
    assert c.get_resource("dev/model/dek") == VALUE
    assert broker.released_count() == before + 1
    entry = broker.last_log()
    assert entry["kind"] == "release" and entry["decision"] == "allow"
    assert entry["resource"] == "dev/model/dek" and entry["policy_id"] == "dev-pinned"
    assert entry["policy_digest"] == setup["dev-pinned"]
    attestation = [e for e in broker.log() if e["kind"] == "attestation" and e["session_id"] == entry["session_id"]]
    assert attestation and attestation[0]["evidence_digest"] and attestation[0]["claims"]["tee"] == "tdx"


def test_bearer_token_from_another_connection(broker, vendor, setup):
    c = client(broker, vendor)
    token = c.attest()
    other = KbsClient(broker.url, c.attester, http=httpx.Client(base_url=broker.url))   # no cookie
    other.key, other.token = c.key, token
    assert other.get_resource("dev/model/dek", bearer=True) == VALUE
    jwks = httpx.get(broker.url + "/.well-known/jwks.json").json()
    assert jwks == httpx.get(broker.url + "/kbs/v0/jwks").json() and jwks["keys"][0]["alg"] == "ES256"


def test_example_development_policy_allows_emulated(broker, vendor, setup):
    assert len(client(broker, vendor).get_resource("dev/example/dek")) == 32


def test_rotation_serves_the_new_version(broker, vendor, setup):
    broker.admin.create_key("dev/rotating/dek", value=b"A" * 32, policy="dev-pinned")
    assert broker.admin.rotate_key("dev/rotating/dek", value=b"B" * 32)["version"] == 2
    assert client(broker, vendor).get_resource("dev/rotating/dek") == b"B" * 32
    listed = {k["path"]: k for k in broker.admin.list_keys()}
    assert listed["dev/rotating/dek"]["versions"] == [1, 2]
    assert "value" not in str(listed)


def test_wrong_measurement_is_denied(broker, vendor, setup):
    c = client(broker, vendor, mrtd=hashlib.sha384(b"some other firmware").digest())
    c.attest()                                       # genuine evidence: attestation succeeds
    err = denied(broker, lambda: c.get_resource("dev/model/dek"), 401, "policy.tdx.mrtd")
    assert err.reasons[0]["actual"] == hashlib.sha384(b"some other firmware").hexdigest()


def test_debug_td_is_denied_at_attest(broker, vendor, setup):
    c = client(broker, vendor, td_attributes=SEPT_VE_DISABLE | 1)
    denied(broker, c.attest, 401, "tdx.debug")


def test_tcb_status_not_allowed_is_denied(broker, vendor, setup):
    c = client(broker, vendor, tee_tcb_svn=OUT_OF_DATE_SVN)
    c.attest()
    err = denied(broker, lambda: c.get_resource("dev/model/dek"), 401, "policy.tcb_status")
    assert err.reasons[0]["actual"] == "OutOfDate"


def test_emulated_anchor_under_production_policy_is_denied(broker, vendor, setup):
    c = client(broker, vendor)
    err = denied(broker, lambda: c.get_resource("dev/prod/dek"), 401, "policy.anchor")
    assert "emulated" in err.reasons[0]["actual"]


def test_unbound_resource_is_denied_by_default(broker, vendor, setup):
    c = client(broker, vendor)
    denied(broker, lambda: c.get_resource("dev/unbound/dek"), 401, "policy.unbound")


def test_unknown_resource_is_denied(broker, vendor, setup):
    c = client(broker, vendor)
    denied(broker, lambda: c.get_resource("dev/nothing/here"), 404, "resource.unknown")


def _handshake(broker, vendor, *, bind_key=None, send_key=None, **measurements):
    http = httpx.Client(base_url=broker.url)
    challenge = http.post("/kbs/v0/auth", json=request_body("tdx")).json()
    key = ephemeral_key()
    bound = tee_pubkey(bind_key or key)
    evidence = EmulatedAttester(vendor, "tdx", **measurements).collect(report_data(challenge["nonce"], bound))
    return http, attestation_body(challenge["nonce"], tee_pubkey(send_key or key), evidence)


def _post(http, body):
    resp = http.post("/kbs/v0/attest", json=body)
    if resp.status_code != 200:
        raise KbsError(resp.status_code, resp.json())
    return resp.json()


def test_replayed_nonce_is_denied(broker, vendor, setup):
    http, body = _handshake(broker, vendor)
    assert "token" in _post(http, body)                       # first use: allowed
    denied(broker, lambda: _post(http, body), 401, "kbs.nonce_consumed")


def test_evidence_replayed_into_a_new_session_is_denied(broker, vendor, setup):
    http, body = _handshake(broker, vendor)
    _post(http, body)
    fresh = httpx.Client(base_url=broker.url)
    fresh.post("/kbs/v0/auth", json=request_body("tdx"))
    denied(broker, lambda: _post(fresh, body), 401, "kbs.nonce_mismatch")


def test_expired_nonce_is_denied(broker, vendor, setup):
    http, body = _handshake(broker, vendor)
    sid = http.cookies["kbs-session-id"]
    broker.sql_exec("UPDATE kbs_sessions SET expires_at = created_at WHERE id = :sid", sid=sid)
    denied(broker, lambda: _post(http, body), 401, "kbs.nonce_expired")


def test_evidence_bound_to_a_different_key_is_denied(broker, vendor, setup):
    http, body = _handshake(broker, vendor, bind_key=ephemeral_key())
    denied(broker, lambda: _post(http, body), 401, "binding.report_data")


def test_attest_without_session_is_denied(broker, vendor, setup):
    _, body = _handshake(broker, vendor)
    denied(broker, lambda: _post(httpx.Client(base_url=broker.url), body), 401, "kbs.no_session")


def test_resource_without_session_is_denied(broker, setup):
    def fetch():
        resp = httpx.get(broker.url + "/kbs/v0/resource/dev/model/dek")
        raise KbsError(resp.status_code, resp.json())
    denied(broker, fetch, 401, "kbs.no_session")


def test_malformed_attest_changes_nothing(broker, setup):
    before = len(broker.log())
    http = httpx.Client(base_url=broker.url)
    http.post("/kbs/v0/auth", json=request_body("tdx"))
    resp = http.post("/kbs/v0/attest", content=b'{"runtime-data": 5}')
    assert resp.status_code == 400 and resp.json()["code"] == "kbs.malformed"
    resp = http.post("/kbs/v0/attest", content=b"\xff not json")
    assert resp.status_code == 400
    assert len(broker.log()) == before


def test_unreadable_evidence_is_a_logged_denial_not_a_500(broker, vendor, setup):
    http, body = _handshake(broker, vendor)
    body["tee-evidence"]["primary_evidence"]["quote"] = "AAAAAAAAAAAAAAAAAAAAAAAA"
    err = denied(broker, lambda: _post(http, body), 401, "parse.tdx_quote_header")
    assert "VERSION" in err.detail
