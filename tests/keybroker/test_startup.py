"""Invariant 6 at start-up: emulated anchors only with --allow-emulated, loudly; schema migrations."""

from __future__ import annotations

import httpx


def test_refuses_emulated_anchors_without_allow_emulated(trust_dirs, tmp_path, cli):
    anchors, bundle = trust_dirs
    result = cli("broker", "serve", "--db", f"sqlite:///{tmp_path / 'b.db'}", "--port", "0",
                 "--emulated-anchors", str(anchors), "--collateral", str(bundle), cwd=tmp_path, check=False)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "--allow-emulated" in message and "not allowed" in message
    assert not (tmp_path / "b.db").exists()                      # nothing was created


def test_says_so_loudly_when_emulated_is_allowed(broker):
    out = (broker.workdir / "broker.out").read_text()
    assert "EMULATED TRUST ANCHORS ARE ENABLED" in out
    assert httpx.get(broker.url + "/readyz").json()["emulated_anchors"] is True


def test_serve_refuses_an_old_schema_without_migrations(tmp_path, cli):
    result = cli("broker", "serve", "--db", f"sqlite:///{tmp_path / 'empty.db'}", "--no-migrate", cwd=tmp_path,
                 check=False)
    message = " ".join(result.stderr.split())
    assert result.returncode == 1 and "schema is at nothing" in message and "veil broker migrate" in message


def test_kek_file_is_private_and_never_logged(broker):
    kek = broker.workdir / "broker-kek.key"
    assert kek.stat().st_mode & 0o777 == 0o600
    out = (broker.workdir / "broker.out").read_bytes()
    assert kek.read_bytes() not in out and kek.read_bytes().hex().encode() not in out
