"""`veil broker admin keygen|add|list|remove` against a real broker: roles are the broker's, per tenant, with
the role checks on the server, and a tenant never loses its last operator."""

from __future__ import annotations

import json

import pytest

from keybroker.admin.auth import ROLES
from keybroker.admin.client import AdminClient
from keybroker.client import KbsError
from veil.cli.broker_admin import Role

from .cli_run import run


def _veil(broker, *args: str, key=None, cwd):
    # Options first: a kid (a JWK thumbprint, base64url) may begin with "-", so callers pass it after "--".
    command, *rest = args
    return run("broker", "admin", command, "--broker", broker.url, "--key", str(key or broker.admin_key), *rest,
               cwd=cwd)


def _admins(broker, key=None, cwd=None) -> dict:
    result = _veil(broker, "list", "--json", key=key, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _add(broker, tmp_path, name: str, *roles: str, key=None) -> tuple[dict, object]:
    private = tmp_path / f"{name}.key"
    args = [a for r in roles for a in ("--role", r)]
    result = _veil(broker, "add", name, *args, "--new-key", str(private), "--json", key=key, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), private


def test_the_cli_offers_exactly_the_brokers_roles():
    assert {r.value for r in Role} == set(ROLES)


def test_keygen_then_add_by_public_key(broker, tmp_path):
    keygen = run("broker", "admin", "keygen", "--out", str(tmp_path / "ana.key"), cwd=tmp_path)
    assert keygen.returncode == 0, keygen.stderr
    assert (tmp_path / "ana.key").stat().st_mode & 0o777 == 0o600
    public = tmp_path / "ana.key.pub.jwk"
    assert "d" not in json.loads(public.read_text())
    before = len(broker.log())
    result = _veil(broker, "add", "ana", "--role", "auditor", "--public-key", str(public), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "added admin ana (" in result.stdout and "with roles auditor" in result.stdout
    assert [e["action"] for e in broker.log()[before:]] == ["admin.register"]
    ana = AdminClient(broker.url, tmp_path / "ana.key")
    assert isinstance(ana.list_keys(), list)                     # the auditor reads
    with pytest.raises(KbsError) as info:
        ana.create_key("dev/ana-made/dek")                      # and changes nothing
    assert info.value.status == 403


def test_add_refuses_a_private_key_as_the_public_key(broker, tmp_path):
    result = _veil(broker, "add", "oops", "--role", "auditor", "--public-key", str(broker.admin_key), cwd=tmp_path)
    assert result.returncode == 2 and "holds a private key" in result.stderr
    assert "oops" not in {a["name"] for a in _admins(broker, cwd=tmp_path)["admins"]}


def test_add_with_repeated_roles_and_list_shows_them(broker, tmp_path):
    added, private = _add(broker, tmp_path, "keys-and-policies", "key-admin", "policy-admin")
    assert added["roles"] == ["key-admin", "policy-admin"] and added["private_key_file"] == str(private)
    listing = _admins(broker, cwd=tmp_path)
    assert listing["tenant"] == "default"
    mine = next(a for a in listing["admins"] if a["kid"] == added["kid"])
    assert mine["roles"] == ["key-admin", "policy-admin"] and "public_jwk" not in mine
    first = listing["admins"][0]
    assert first["name"] == "admin" and sorted(first["roles"]) == sorted(ROLES)
    AdminClient(broker.url, private).create_key("dev/made-by-key-admin/dek")
    table = _veil(broker, "list", cwd=tmp_path)
    assert table.returncode == 0 and added["kid"] in table.stdout and "key-admin, policy-admin" in table.stdout
    assert f"{len(listing['admins'])} admin keys" in table.stdout


def test_an_unknown_role_is_a_usage_error(broker, tmp_path):
    result = _veil(broker, "add", "x", "--role", "admin", "--new-key", str(tmp_path / "x.key"), cwd=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "x.key").exists()


def test_only_an_operator_adds_or_removes(broker, tmp_path):
    auditor, auditor_key = _add(broker, tmp_path, "only-reads", "auditor")
    listed = _veil(broker, "list", "--json", key=auditor_key, cwd=tmp_path)
    assert listed.returncode == 0                               # auditors see who holds which role
    added = _veil(broker, "add", "sneaky", "--role", "operator", "--new-key", str(tmp_path / "s.key"),
                  key=auditor_key, cwd=tmp_path)
    assert added.returncode == 1 and "admin.role" in added.stderr
    removed = _veil(broker, "remove", "admin", "--yes", key=auditor_key, cwd=tmp_path)
    assert removed.returncode == 1 and "admin.role" in removed.stderr
    assert "admin" in {a["name"] for a in _admins(broker, cwd=tmp_path)["admins"]}


def test_another_tenant_is_refused_and_logged(broker, tmp_path):
    result = _veil(broker, "list", "--tenant", "someone-else", cwd=tmp_path)
    assert result.returncode == 1 and "manages tenant 'default', not 'someone-else'" in result.stderr
    denial = broker.last_log()
    assert denial["kind"] == "denial" and denial["action"] == "admin GET /admin/v1/admins"
    ok = _veil(broker, "list", "--tenant", "default", "--json", cwd=tmp_path)
    assert ok.returncode == 0


def test_remove_needs_yes_without_a_terminal(broker, tmp_path):
    added, _ = _add(broker, tmp_path, "to-keep", "auditor")
    result = _veil(broker, "remove", "--", added["kid"], cwd=tmp_path)
    assert result.returncode == 2 and "--yes" in result.stderr and "stdin is not a terminal" in result.stderr
    assert added["kid"] in {a["kid"] for a in _admins(broker, cwd=tmp_path)["admins"]}


def test_remove_by_kid_or_name_and_the_key_stops_working(broker, tmp_path):
    added, private = _add(broker, tmp_path, "leaver", "auditor")
    result = _veil(broker, "remove", "leaver", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"removed admin leaver ({added['kid']}, roles auditor) from tenant default"
    entry = broker.last_log()
    assert (entry["action"], entry["resource"]) == ("admin.remove", f"admin/{added['kid']}")
    with pytest.raises(KbsError) as info:
        AdminClient(broker.url, private).list_keys()
    assert info.value.code == "admin.unknown_key"
    again = _veil(broker, "remove", "--yes", "--", added["kid"], cwd=tmp_path)
    assert again.returncode == 2 and f"no admin key {added['kid']!r}" in again.stderr


def test_the_last_operator_of_a_tenant_stays(broker, tmp_path, init_tenant):
    init_tenant(broker, "team-ops", tmp_path)
    first = tmp_path / "team-ops.key"
    me = _admins(broker, key=first, cwd=tmp_path)["admins"]
    assert len(me) == 1
    refused = _veil(broker, "remove", "--yes", "--", me[0]["kid"], key=first, cwd=tmp_path)
    assert refused.returncode == 2 and "last admin key of tenant 'team-ops' with the operator role" in refused.stderr
    assert "Traceback" not in refused.stderr
    second, second_key = _add(broker, tmp_path, "second-operator", "operator", key=first)
    assert second["tenant"] == "team-ops"
    assert _veil(broker, "remove", "--yes", "--", me[0]["kid"], key=first, cwd=tmp_path).returncode == 0
    left = _admins(broker, key=second_key, cwd=tmp_path)["admins"]
    assert [a["kid"] for a in left] == [second["kid"]]
    last = _veil(broker, "remove", "--yes", "--", second["kid"], key=second_key, cwd=tmp_path)
    assert last.returncode == 2 and "last admin key" in last.stderr
    # the default tenant's admins are not team-ops's to see or remove
    other = _veil(broker, "remove", "admin", "--yes", key=second_key, cwd=tmp_path)
    assert other.returncode == 2 and "no admin key 'admin'" in other.stderr


def test_dead_broker_is_one_clear_line(broker, tmp_path):
    result = run("broker", "admin", "list", "--broker", "http://127.0.0.1:9", "--key", str(broker.admin_key),
                 cwd=tmp_path)
    assert result.returncode == 2 and "cannot reach the broker" in result.stderr and "Traceback" not in result.stderr
