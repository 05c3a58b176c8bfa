"""The broker and its key-encryption key at start-up, with real broker processes on SQLite: a new KEK is
announced with its path; a database that holds keys is never given a new KEK or a wrong one."""

from __future__ import annotations

import os
import secrets
import shutil

from .conftest import start_broker, veil

BACK_IT_UP = "back it up: without it the stored keys cannot be decrypted"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _serve(db_url: str, cwd, *extra: str):
    return veil("broker", "serve", "--db", db_url, "--port", "0", *extra, cwd=cwd, check=False)


def test_a_new_kek_is_announced_with_where_it_is(tmp_path):
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}")
    try:
        out = _one_line((tmp_path / "broker.out").read_text())
    finally:
        broker.stop()
    kek = tmp_path / "broker-kek.key"
    assert f"created a new key-encryption key at {kek}; {BACK_IT_UP}" in out
    assert out.count("created a new key-encryption key") == 1       # the workers open it, they do not announce it
    assert kek.stat().st_mode & 0o777 == 0o600


def test_a_kek_that_exists_is_not_announced(tmp_path):
    kek = tmp_path / "given.key"
    fd = os.open(kek, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_bytes(32))
    os.close(fd)
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--kek-file", str(kek))
    broker.stop()
    assert "created a new key-encryption key" not in (tmp_path / "broker.out").read_text()
    assert not (tmp_path / "broker-kek.key").exists()


def test_refuses_a_new_kek_beside_a_database_that_holds_keys(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    db_url = f"sqlite:///{home / 'broker.db'}"
    broker = start_broker(home, db_url)                  # creates home/broker-kek.key and seals its signing keys
    broker.admin.create_key("dev/kept/dek")
    broker.stop()
    elsewhere.mkdir()
    db_before = (home / "broker.db").read_bytes()

    result = _serve(db_url, elsewhere)                   # the same database, started from another directory

    assert result.returncode == 2, result.stderr
    message = _one_line(result.stderr)
    assert message.startswith("error: no key-encryption key at") and "--kek-file" in message
    assert str(elsewhere / "broker-kek.key") in message and "Traceback" not in result.stderr + result.stdout
    assert "created a new key-encryption key" not in result.stderr + result.stdout
    assert list(elsewhere.iterdir()) == []               # nothing created
    assert (home / "broker.db").read_bytes() == db_before
    # with --kek-file naming the broker's KEK it starts, and serves the key stored before
    shutil.copy2(home / "admin.key", elsewhere / "admin.key")
    again = start_broker(elsewhere, db_url, "--kek-file", str(home / "broker-kek.key"), admin=False)
    try:
        assert "dev/kept/dek" in {k["path"] for k in again.admin.list_keys()}
    finally:
        again.stop()


def test_a_wrong_kek_is_a_clear_error_not_a_crash(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'broker.db'}"
    start_broker(tmp_path, db_url).stop()
    wrong = tmp_path / "wrong.key"
    fd = os.open(wrong, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_bytes(32))
    os.close(fd)

    result = _serve(db_url, tmp_path, "--kek-file", str(wrong))

    assert result.returncode == 2, result.stderr
    message = _one_line(result.stderr)
    assert f"the key-encryption key at {wrong}" in message and "is not the one the database's keys are sealed" \
        in message and "--kek-file" in message
    assert "Traceback" not in result.stderr + result.stdout


def test_an_unreadable_kek_file_is_a_clear_error(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'broker.db'}"
    start_broker(tmp_path, db_url).stop()
    (tmp_path / "broker-kek.key").chmod(0o644)
    result = _serve(db_url, tmp_path)
    assert result.returncode == 2 and "chmod 600" in _one_line(result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    short = tmp_path / "short.key"
    fd = os.open(short, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"too short")
    os.close(fd)
    result = _serve(db_url, tmp_path, "--kek-file", str(short))
    assert result.returncode == 2 and "does not hold 32 bytes" in _one_line(result.stderr)
