"""`veil broker policy list|show` against a real broker: the tenant's policies with their versions, one
policy's document as pushed; `policy-push` beside them still works."""

from __future__ import annotations

import json

from .cli_run import run


def _veil(broker, *args: str, cwd, key=None):
    return run("broker", *args, "--broker", broker.url, "--key", str(key or broker.admin_key), cwd=cwd)


def _push_two_versions(broker, policy_docs, name: str) -> tuple[str, str]:
    first, second = policy_docs.pinned(name, resources="dev/one/**"), policy_docs.pinned(name, resources="dev/two/**")
    broker.admin.push_policy(name, first)
    broker.admin.push_policy(name, second)
    return first, second


def test_list_shows_each_policy_with_its_versions(broker, policy_docs, tmp_path):
    _push_two_versions(broker, policy_docs, "listed-twice")
    result = _veil(broker, "policy", "list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    policies = {p["name"]: p for p in json.loads(result.stdout)["policies"]}
    listed = policies["listed-twice"]
    assert listed["latest"] == 2 and [v["version"] for v in listed["versions"]] == [1, 2]
    assert listed["versions"][0]["digest"] != listed["versions"][1]["digest"]
    table = _veil(broker, "policy", "list", cwd=tmp_path)
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith("listed-twice"))
    assert row.split()[1:3] == ["2", "2"] and listed["versions"][1]["digest"] in row
    assert f"{len(policies)} polic" in table.stdout


def test_show_prints_the_newest_document_or_the_version_asked(broker, policy_docs, tmp_path):
    first, second = _push_two_versions(broker, policy_docs, "shown")
    newest = _veil(broker, "policy", "show", "shown", cwd=tmp_path)
    assert newest.returncode == 0, newest.stderr
    assert second.endswith("\n") and newest.stdout == second          # the document exactly as pushed
    assert "policy shown version 2, digest" in newest.stderr
    older = _veil(broker, "policy", "show", "shown", "--version", "1", "--json", cwd=tmp_path)
    body = json.loads(older.stdout)
    assert (body["name"], body["version"], body["text"]) == ("shown", 1, first)


def test_show_unknown_policy_is_one_clear_line(broker, tmp_path):
    for args in (("never-pushed",), ("never-pushed", "--version", "3")):
        result = _veil(broker, "policy", "show", *args, cwd=tmp_path)
        assert result.returncode == 2 and "no policy" in result.stderr and "never-pushed" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_key_admin_without_policy_roles_is_refused(broker, tmp_path):
    from keybroker.admin.keys import generate
    key = tmp_path / "keys-only.key"
    broker.admin.add_admin("keys-only", ["key-admin"], generate(key))
    result = _veil(broker, "policy", "list", cwd=tmp_path, key=key)
    assert result.returncode == 1 and "admin.role" in result.stderr


def test_policy_push_still_works_beside_them(broker, policy_docs, tmp_path):
    (tmp_path / "p.yaml").write_text(policy_docs.pinned("pushed-by-cli"))
    pushed = _veil(broker, "policy-push", str(tmp_path / "p.yaml"), cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["name"] == "pushed-by-cli"
    shown = _veil(broker, "policy", "show", "pushed-by-cli", cwd=tmp_path)
    assert shown.returncode == 0 and "name: pushed-by-cli" in shown.stdout
