"""Envelope encryption and KEK providers. The Vault transit KEK is tested against a local HTTP server
implementing the two transit endpoints Veil uses (no Vault server can run here)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keybroker.resources.kek import FileKek, KekError, record_aad, seal, unseal
from keybroker.resources.vault import VaultTransitKek

TOKEN = "s.test-token-not-a-secret"


class _Transit(BaseHTTPRequestHandler):
    """POST /v1/transit/{encrypt,decrypt}/<key> as Vault's transit engine answers them."""

    key = AESGCM.generate_key(256)
    seen_tokens: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.seen_tokens.append(self.headers.get("X-Vault-Token", ""))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = self.path.split("/")
        if self.headers.get("X-Vault-Token") != TOKEN or parts[1:3] != ["v1", "transit"]:
            return self._send(403, {"errors": ["permission denied"]})
        aead = AESGCM(self.key)
        if parts[3] == "encrypt":
            nonce = secrets.token_bytes(12)
            ct = nonce + aead.encrypt(nonce, base64.b64decode(body["plaintext"]), parts[4].encode())
            return self._send(200, {"data": {"ciphertext": "vault:v1:" + base64.b64encode(ct).decode()}})
        raw = base64.b64decode(body["ciphertext"].removeprefix("vault:v1:"))
        try:
            pt = aead.decrypt(raw[:12], raw[12:], parts[4].encode())
        except Exception:  # noqa: BLE001
            return self._send(400, {"errors": ["cipher: message authentication failed"]})
        self._send(200, {"data": {"plaintext": base64.b64encode(pt).decode()}})

    def _send(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def vault_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Transit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_file_kek_is_created_0600_and_round_trips(tmp_path):
    kek = FileKek.create(tmp_path / "kek")
    assert (tmp_path / "kek").stat().st_mode & 0o777 == 0o600
    sealed = seal(kek, b"model key", record_aad("m/t/dek", 1))
    assert b"model key" not in sealed.ciphertext + sealed.wrapped_key
    assert unseal(FileKek(tmp_path / "kek"), sealed, record_aad("m/t/dek", 1)) == b"model key"
    assert "kek" not in repr(sealed).lower() or kek.key_id in repr(sealed)
    assert (tmp_path / "kek").read_bytes().hex() not in repr(kek)


def test_opening_a_file_kek_never_creates_one(tmp_path):
    with pytest.raises(KekError) as info:
        FileKek(tmp_path / "kek")
    assert info.value.code == "kek.file_missing" and not (tmp_path / "kek").exists()
    FileKek.create(tmp_path / "kek")
    with pytest.raises(FileExistsError):
        FileKek.create(tmp_path / "kek")                       # never over an existing KEK
    assert [p.name for p in tmp_path.iterdir()] == ["kek"]     # no temporary file left beside it


def test_sealed_value_is_bound_to_its_path_and_version(tmp_path):
    kek = FileKek.create(tmp_path / "kek")
    sealed = seal(kek, b"model key", record_aad("m/t/dek", 1))
    for aad in (record_aad("m/t/dek", 2), record_aad("other/t/dek", 1)):
        with pytest.raises(KekError) as info:
            unseal(kek, sealed, aad)
        assert info.value.code == "kek.integrity"


def test_file_kek_refuses_group_readable_file(tmp_path):
    path = tmp_path / "kek"
    path.write_bytes(secrets.token_bytes(32))
    path.chmod(0o644)
    with pytest.raises(KekError) as info:
        FileKek(path)
    assert info.value.code == "kek.file_permissions"


def test_vault_transit_kek_round_trips(vault_url):
    kek = VaultTransitKek(vault_url, "veil", token=TOKEN)
    sealed = seal(kek, b"model key", record_aad("m/t/dek", 1))
    assert sealed.wrapped_key.startswith(b"vault:v1:")
    assert unseal(kek, sealed, record_aad("m/t/dek", 1)) == b"model key"
    assert TOKEN not in repr(kek)


def test_vault_errors_name_no_token(vault_url):
    kek = VaultTransitKek(vault_url, "veil", token="s.wrong")
    with pytest.raises(KekError) as info:
        seal(kek, b"x", b"aad")
    assert info.value.code == "kek.vault_status" and "s.wrong" not in str(info.value)
    with pytest.raises(KekError) as info:
        VaultTransitKek("http://127.0.0.1:9", "veil", token=TOKEN).wrap(b"k" * 32)
    assert info.value.code == "kek.vault_unreachable"


def test_keys_at_rest_are_encrypted(broker):
    value = b"\x42" * 32
    broker.admin.create_key("dev/at-rest/dek", value=value)
    rows = broker.sql("SELECT ciphertext, wrapped_key FROM resource_versions")
    assert rows and all(value not in bytes(ct) + bytes(wk) for ct, wk in rows)
    if broker.db_url.startswith("sqlite"):
        db_file = broker.db_url.removeprefix("sqlite:///")
        blob = b"".join(open(p, "rb").read() for p in (db_file, db_file + "-wal") if __import__("os").path.exists(p))
        assert value not in blob
