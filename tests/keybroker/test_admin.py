"""The admin API against a real broker: authentication, roles, tenants, jti replay, the audit export."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keybroker.admin.client import AdminClient
from keybroker.admin.keys import generate, public_jwk, token
from keybroker.audit import merkle
from keybroker.audit.checkpoint import NoteVerifier, open_note
from keybroker.client import KbsError


def _new_admin(broker, tmp_path, name: str, roles: list[str]) -> AdminClient:
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.key"
    jwk = generate(path)
    broker.admin.add_admin(name, roles, jwk)
    return AdminClient(broker.url, path)


def test_admin_call_without_token_is_rejected(broker):
    resp = httpx.get(broker.url + "/admin/v1/keys")
    assert resp.status_code == 401 and resp.json()["code"] == "admin.no_token"


def test_admin_token_from_unregistered_key_is_rejected(broker):
    key = ec.generate_private_key(ec.SECP256R1())
    resp = httpx.get(broker.url + "/admin/v1/keys", headers={"Authorization": f"Bearer {token(key)}"})
    assert resp.status_code == 401 and resp.json()["code"] == "admin.unknown_key"


def test_wrong_role_is_forbidden_and_changes_nothing(broker, tmp_path):
    auditor = _new_admin(broker, tmp_path, "auditor", ["auditor"])
    before = broker.admin.list_keys()
    with pytest.raises(KbsError) as info:
        auditor.create_key("dev/auditor-made/dek")
    assert info.value.status == 403 and info.value.code == "admin.role"
    with pytest.raises(KbsError) as info:
        auditor.push_policy("x", "kind: ReleasePolicy")
    assert info.value.status == 403
    assert broker.admin.list_keys() == before
    assert auditor.list_keys() == before            # read-only access works


def test_replayed_admin_token_is_rejected(broker):
    tok = token(broker.admin._key)
    headers = {"Authorization": f"Bearer {tok}"}
    assert httpx.get(broker.url + "/admin/v1/keys", headers=headers).status_code == 200
    resp = httpx.get(broker.url + "/admin/v1/keys", headers=headers)
    assert resp.status_code == 401 and resp.json()["code"] == "admin.token_replayed"


def test_long_lived_or_wrong_audience_tokens_are_rejected(broker):
    key = broker.admin._key
    kid = public_jwk(key)["kid"]
    now = int(time.time())
    for claims, code in (({"aud": "veil-broker-admin", "iat": now, "exp": now + 86400}, "admin.token_lifetime"),
                         ({"aud": "someone-else", "iat": now, "exp": now + 60}, "admin.token_invalid"),
                         ({"aud": "veil-broker-admin", "iat": now - 600, "exp": now - 300}, "admin.token_invalid")):
        tok = jwt.encode(claims | {"jti": uuid.uuid4().hex}, key, algorithm="ES256", headers={"kid": kid})
        resp = httpx.get(broker.url + "/admin/v1/keys", headers={"Authorization": f"Bearer {tok}"})
        assert resp.status_code == 401 and resp.json()["code"] == code


def test_tenants_do_not_see_each_others_keys(broker, tmp_path, init_tenant):
    other = init_tenant(broker, "team-b", tmp_path)
    broker.admin.create_key("dev/tenant-a/dek")
    assert "dev/tenant-a/dek" not in {k["path"] for k in other.list_keys()}
    for call in (lambda: other.rotate_key("dev/tenant-a/dek"), lambda: other.delete_key("dev/tenant-a/dek"),
                 lambda: other.create_key("dev/another-in-a-repo/dek")):
        with pytest.raises(KbsError) as info:
            call()
        assert info.value.status == 404
    other.create_key("team-b-models/m/dek")
    assert {k["path"] for k in other.list_keys()} == {"team-b-models/m/dek"}
    assert "team-b-models/m/dek" not in {k["path"] for k in broker.admin.list_keys()}
    export = other.export()
    assert all(e["tenant"] in (None, "team-b") for e in map(_entry, export["entries"]))


def _entry(item: dict) -> dict:
    import json
    return json.loads(item["entry"])


def test_admin_actions_are_logged(broker):
    before = len(broker.log())
    broker.admin.create_key("dev/logged/dek")
    entry = broker.log()[before]
    assert entry["kind"] == "admin" and entry["action"] == "key.generate" and entry["resource"] == "dev/logged/dek"
    assert entry["actor"].startswith("admin")


def test_bad_admin_input_gets_a_clear_error(broker):
    for call, status, code in ((lambda: broker.admin.create_key("dev/bad/dek", size=7), 400, "resource.size"),
                               (lambda: broker.admin.create_key("dev/bad/dek", policy="nope"), 404, "policy.unknown"),
                               (lambda: broker.admin.push_policy("bad", "kind: [unclosed"), 422, "policy.syntax"),
                               (lambda: broker.admin.create_key(".hidden/x/y"), 400, "resource.path")):
        with pytest.raises(KbsError) as info:
            call()
        assert (info.value.status, info.value.code) == (status, code), info.value
    assert "dev/bad/dek" not in {k["path"] for k in broker.admin.list_keys()}


def test_audit_export_verifies_offline(broker):
    broker.admin.create_key("dev/export/dek")
    data = broker.admin.export()
    verifier = NoteVerifier.from_key_string(data["log_key"])
    cp = open_note(data["checkpoint"], [verifier])
    hashes = [bytes.fromhex(h) for h in data["leaf_hashes"]]
    assert cp.size == data["size"] == len(hashes) and merkle.root(hashes) == cp.root_hash
    seqs = [e["seq"] for e in data["entries"]]
    assert seqs == sorted(set(seqs))                          # this tenant's view, in order
    assert [r[0] for r in broker.sql("SELECT seq FROM log_entries ORDER BY seq")][:cp.size] == list(range(cp.size))
    for item in data["entries"]:
        assert merkle.leaf_hash(item["entry"].encode()) == hashes[item["seq"]]


def test_openapi_is_published(broker):
    spec = httpx.get(broker.url + "/openapi.json").json()
    assert "/kbs/v0/attest" in spec["paths"] and "/admin/v1/keys" in spec["paths"]


def test_metrics_count_denials(broker):
    text = httpx.get(broker.url + "/metrics").text
    assert "veil_broker_request_seconds" in text and "veil_broker_attestations_total" in text
