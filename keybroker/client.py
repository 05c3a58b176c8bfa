"""The guest side of the KBS protocol: auth → evidence bound to nonce and ephemeral key → attest →
resource → decrypt with the ephemeral private key (which never leaves this process).

    client = KbsClient("https://broker:8443", EmulatedAttester(vendor, "tdx"))
    dek = client.get_resource("models/llama/dek")

With `gpus=` (an attester of the VM's GPUs: NvmlGpuAttester, EmulatedGpuAttester)
the evidence is composite: each GPU answers a nonce derived from the broker's
nonce and the ephemeral key, and the CPU report data covers the GPU evidence.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
from joserfc.jwk import ECKey

from attestation.attesters.base import Attester
from attestation.binding import report_data
from attestation.composite import cpu_report_data, gpu_nonce
from attestation.evidence import Evidence

from .kbs import jwe
from .transport import client as _client
from .transport import request

PROTOCOL_VERSION = "0.4.0"


class KbsError(Exception):
    """The broker refused: HTTP status, error code and the structured reasons it gave."""

    def __init__(self, status: int, body: dict) -> None:
        self.status = status
        self.code = body.get("code", "")
        self.detail = body.get("detail", "")
        self.reasons = body.get("reasons", [])
        super().__init__(f"HTTP {status} {self.code}: {self.detail}")


def ephemeral_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def tee_pubkey(key: ECKey) -> dict[str, str]:
    pub = key.as_dict(private=False)
    return {"kty": "EC", "crv": pub["crv"], "alg": "ECDH-ES+A256KW", "x": pub["x"], "y": pub["y"]}


def request_body(tee: str) -> dict[str, Any]:
    return {"version": PROTOCOL_VERSION, "tee": tee,
            "extra-params": {"supported-hash-algorithms": ["sha384", "sha512", "sha256"]}}


def evidence_json(evidence: Evidence) -> dict[str, Any]:
    if evidence.tee == "tdx":
        return {"quote": base64.b64encode(evidence.report).decode(), "cc_eventlog": None}
    return {"attestation_report": base64.b64encode(evidence.report).decode(),
            "cert_chain": [base64.b64encode(c).decode() for c in evidence.certificates] or None}


def attestation_body(nonce: str, pubkey: dict, evidence: Evidence, additional: str = "") -> dict[str, Any]:
    return {"runtime-data": {"nonce": nonce, "tee-pubkey": pubkey},
            "tee-evidence": {"primary_evidence": evidence_json(evidence), "additional_evidence": additional}}


def hash_alg(challenge: dict) -> str:
    extra = challenge.get("extra-params")
    return extra.get("selected-hash-algorithm", "sha384") if isinstance(extra, dict) else "sha384"


class KbsClient:
    def __init__(self, base_url: str, attester: Attester, *, gpus: Any | None = None,
                 http: httpx.Client | None = None, key: ECKey | None = None) -> None:
        """`key`: the TEE key to attest with (default: a fresh ephemeral one). A public-only key can attest
        (e.g. the enclave's TLS key, for shipping its call audit) but cannot unwrap released resources."""
        self.http = http or _client(base_url)
        self.attester = attester
        self.gpus = gpus
        self.key = key or ephemeral_key()
        self.token: str | None = None

    def _check(self, resp: httpx.Response) -> dict:
        if resp.status_code not in (200, 201):
            try:
                body = resp.json()
            except ValueError:
                body = {"detail": resp.text[:200]}
            raise KbsError(resp.status_code, body)
        return resp.json()

    def auth(self) -> dict:
        return self._check(request(self.http, "POST", "/kbs/v0/auth", json=request_body(self.attester.tee)))

    def attest(self) -> str:
        challenge = self.auth()
        nonce, pubkey, alg = challenge["nonce"], tee_pubkey(self.key), hash_alg(challenge)
        additional = ""
        if self.gpus is not None:
            gpu_evidence = self.gpus.collect(gpu_nonce(nonce, pubkey, hash_alg=alg))
            additional, data = cpu_report_data(gpu_evidence, nonce, pubkey, hash_alg=alg)
        else:
            data = report_data(nonce, pubkey, hash_alg=alg)
        evidence = self.attester.collect(data)
        body = attestation_body(nonce, pubkey, evidence, additional)
        self.token = self._check(request(self.http, "POST", "/kbs/v0/attest", json=body))["token"]
        return self.token

    def get_resource(self, path: str, *, bearer: bool = False) -> bytes:
        """Fetch and decrypt `repo/type/tag`, attesting first if this client has not yet."""
        if self.token is None:
            self.attest()
        headers = {"Authorization": f"Bearer {self.token}"} if bearer else {}
        response = self._check(request(self.http, "GET", f"/kbs/v0/resource/{path}", headers=headers))
        return jwe.unwrap(response, self.key)

    def ship_calls(self, batch: dict) -> dict:
        """Append a call-audit batch (keybroker.audit.calls) signed by this client's attested key."""
        if self.token is None:
            self.attest()
        try:
            return self._check(request(self.http, "POST", "/kbs/v0/call-audit", json=batch))
        except KbsError as exc:
            if exc.code not in ("kbs.attestation_expired", "kbs.not_attested"):
                raise
        self.attest()                                  # the attestation expired: once more, freshly attested
        return self._check(request(self.http, "POST", "/kbs/v0/call-audit", json=batch))

    def request_certificate(self, resource: str, names: list[str] | None = None) -> dict:
        """A TLS certificate for this client's attested key from the broker's enclave CA (keybroker.kbs.certs)."""
        if self.token is None:
            self.attest()
        body = {"resource": resource} | ({"names": names} if names else {})
        return self._check(request(self.http, "POST", "/kbs/v0/certificate", json=body))
