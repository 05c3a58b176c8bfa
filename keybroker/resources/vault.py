"""A KEK held by HashiCorp Vault's transit secrets engine (plain httpx; two endpoints).

Contract used (Vault HTTP API, transit engine):

    POST {url}/v1/{mount}/encrypt/{key}   {"plaintext": base64}   → {"data": {"ciphertext": "vault:v1:…"}}
    POST {url}/v1/{mount}/decrypt/{key}   {"ciphertext": "vault:…"} → {"data": {"plaintext": base64}}

with `X-Vault-Token` (from VAULT_TOKEN) and, for Vault Enterprise namespaces,
`X-Vault-Namespace`. The token is never logged or put in an error message.
"""

from __future__ import annotations

import base64
import os

import httpx

from .kek import KekError


class VaultTransitKek:
    def __init__(self, url: str, key: str, *, mount: str = "transit", namespace: str | None = None,
                 token: str | None = None, client: httpx.Client | None = None) -> None:
        token = token or os.environ.get("VAULT_TOKEN")
        if not token:
            raise KekError("kek.vault_token", "VAULT_TOKEN is not set; the Vault transit KEK needs a token")
        headers = {"X-Vault-Token": token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        self._client = client or httpx.Client(timeout=10.0)
        self._headers = headers
        self._base = f"{url.rstrip('/')}/v1/{mount}"
        self._key = key
        self.key_id = f"vault:{url.rstrip('/')}/{mount}/{key}"

    def __repr__(self) -> str:
        return f"VaultTransitKek({self.key_id!r})"

    def _post(self, op: str, body: dict) -> dict:
        url = f"{self._base}/{op}/{self._key}"
        try:
            resp = self._client.post(url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise KekError("kek.vault_unreachable", f"Vault at {self._base} unreachable: "
                                                    f"{type(exc).__name__}") from None
        if resp.status_code != 200:
            raise KekError("kek.vault_status", f"Vault transit {op} answered HTTP {resp.status_code}")
        try:
            return resp.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise KekError("kek.vault_response", f"Vault transit {op} returned no data") from None

    def wrap(self, data_key: bytes) -> bytes:
        data = self._post("encrypt", {"plaintext": base64.b64encode(data_key).decode()})
        return str(data["ciphertext"]).encode()

    def unwrap(self, wrapped: bytes) -> bytes:
        data = self._post("decrypt", {"ciphertext": wrapped.decode()})
        try:
            return base64.b64decode(data["plaintext"], validate=True)
        except (KeyError, ValueError):
            raise KekError("kek.vault_response", "Vault transit decrypt returned no plaintext") from None
