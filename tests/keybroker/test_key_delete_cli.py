"""`veil key delete` against a real broker: it asks first on a terminal, refuses without --yes when nobody can
answer, and says what it deleted."""

from __future__ import annotations

import json

from .cli_run import run, run_on_tty


def _paths(broker) -> set[str]:
    return {k["path"] for k in broker.admin.list_keys()}


def _args(broker, *rest: str) -> list[str]:
    return ["key", "delete", *rest, "--broker", broker.url, "--key", str(broker.admin_key)]


def test_refuses_without_yes_when_stdin_is_not_a_terminal(broker, tmp_path):
    broker.admin.create_key("dev/del-refused/dek")
    result = run(*_args(broker, "dev/del-refused/dek"), cwd=tmp_path)
    assert result.returncode == 2
    assert "stdin is not a terminal" in result.stderr and "--yes" in result.stderr
    assert "Traceback" not in result.stderr
    assert "dev/del-refused/dek" in _paths(broker)


def test_yes_deletes_and_says_what(broker, tmp_path):
    broker.admin.create_key("dev/del-yes/dek")
    broker.admin.rotate_key("dev/del-yes/dek")
    result = run(*_args(broker, "dev/del-yes/dek", "--yes"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "deleted key dev/del-yes/dek: versions 1, 2"
    assert "dev/del-yes/dek" not in _paths(broker)
    entry = broker.last_log()
    assert (entry["action"], entry["resource"]) == ("key.delete", "dev/del-yes/dek")


def test_json_says_which_versions_were_deleted(broker, tmp_path):
    broker.admin.create_key("dev/del-json/dek")
    result = run(*_args(broker, "dev/del-json/dek", "-y", "--json"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"path": "dev/del-json/dek", "deleted_versions": [1]}


def test_asks_on_a_terminal_and_deletes_on_yes(broker, tmp_path):
    broker.admin.create_key("dev/del-asked/dek")
    result = run_on_tty(*_args(broker, "dev/del-asked/dek"), answer="y", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "Delete key dev/del-asked/dek (version 1)" in result.output and "[y/N]" in result.output
    assert "deleted key dev/del-asked/dek: version 1" in result.output
    assert "dev/del-asked/dek" not in _paths(broker)


def test_answering_no_deletes_nothing(broker, tmp_path):
    broker.admin.create_key("dev/del-kept/dek")
    before = len(broker.log())
    result = run_on_tty(*_args(broker, "dev/del-kept/dek"), answer="n", cwd=tmp_path)
    assert result.returncode == 2, result.output
    assert "did not delete key dev/del-kept/dek" in result.output
    assert "dev/del-kept/dek" in _paths(broker)
    assert [e["action"] for e in broker.log()[before:]] == []


def test_unknown_key_is_one_clear_line(broker, tmp_path):
    result = run(*_args(broker, "dev/never-made/dek", "--yes"), cwd=tmp_path)
    assert result.returncode == 2 and "no resource dev/never-made/dek" in result.stderr
    assert "Traceback" not in result.stderr
    on_tty = run_on_tty(*_args(broker, "dev/never-made/dek"), answer="y", cwd=tmp_path)
    assert on_tty.returncode == 2 and "no key dev/never-made/dek in your tenant" in on_tty.output
    assert "[y/N]" not in on_tty.output                    # nothing to ask about


def test_dead_broker_is_one_clear_line(broker, tmp_path):
    result = run("key", "delete", "dev/x/dek", "--yes", "--broker", "http://127.0.0.1:9", "--key",
                 str(broker.admin_key), cwd=tmp_path)
    assert result.returncode == 2 and "cannot reach the broker at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
