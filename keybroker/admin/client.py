"""A small admin client: signs a fresh single-use token per call with the admin's key file."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from ..client import KbsError
from ..transport import client as _client
from ..transport import request
from .keys import load_private, token


def _tenant(tenant: str | None) -> dict:
    return {"tenant": tenant} if tenant is not None else {}


class AdminClient:
    def __init__(self, base_url: str, key_file: Path, *, audience: str = "veil-broker-admin",
                 http: httpx.Client | None = None) -> None:
        self.http = http or _client(base_url)
        self._key = load_private(key_file)
        self.audience = audience

    def __repr__(self) -> str:
        return f"AdminClient({str(self.http.base_url)!r})"

    def call(self, method: str, path: str, **kwargs) -> dict | list | None:
        headers = {"Authorization": f"Bearer {token(self._key, audience=self.audience)}"}
        resp = request(self.http, method, f"/admin/v1{path}", headers=headers, **kwargs)
        if resp.status_code >= 300:
            try:
                body = resp.json()
            except ValueError:
                body = {"detail": resp.text[:200]}
            raise KbsError(resp.status_code, body)
        return resp.json() if resp.content else None

    def create_key(self, path: str, *, value: bytes | None = None, size: int = 32, policy: str | None = None):
        body = {"size": size, "policy": policy}
        if value is not None:
            body["value_b64"] = base64.b64encode(value).decode()
        return self.call("POST", f"/keys/{path}", json=body)

    def rotate_key(self, path: str, *, value: bytes | None = None, size: int = 32):
        body = {"size": size} | ({"value_b64": base64.b64encode(value).decode()} if value is not None else {})
        return self.call("POST", f"/keys/{path}/versions", json=body)

    def bind(self, path: str, policy: str | None):
        return self.call("PUT", f"/keys/{path}/policy", json={"policy": policy})

    def list_keys(self):
        return self.call("GET", "/keys")

    def delete_key(self, path: str):
        return self.call("DELETE", f"/keys/{path}")

    def push_policy(self, name: str, text: str, references: str | None = None):
        body = {"text": text} | ({"references": references} if references is not None else {})
        return self.call("POST", f"/policies/{name}", json=body)

    def list_policies(self):
        return self.call("GET", "/policies")

    def get_policy(self, name: str, version: int | None = None):
        """A policy's text and digest: version `version`, or the newest."""
        return self.call("GET", f"/policies/{name}" + (f"/{version}" if version is not None else ""))

    def add_admin(self, name: str, roles: list[str], public_jwk: dict, *, tenant: str | None = None):
        body = {"name": name, "roles": roles, "public_jwk": public_jwk}
        return self.call("POST", "/admins", json=body | ({"tenant": tenant} if tenant is not None else {}))

    def list_admins(self, *, tenant: str | None = None):
        return self.call("GET", "/admins", params=_tenant(tenant))

    def remove_admin(self, kid: str, *, tenant: str | None = None):
        return self.call("DELETE", f"/admins/{kid}", params=_tenant(tenant))

    def export(self):
        return self.call("GET", "/audit/export")
