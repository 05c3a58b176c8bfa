"""NVIDIA's online services: the RIM service and the OCSP responder, cached and retried.

RIM service: `GET <base>/v1/rim/<id>` → JSON {"rim": base64(swidtag XML)}
(NVIDIA nvtrust local GPU verifier, RIM service). Cached until the signer certificate's notAfter.
OCSP: RFC 6960 POST of a DER request (SHA-384 certificate ID) to
`https://ocsp.ndis.nvidia.com/`; cached until the response's nextUpdate.
Both are `NvidiaCollateral`; failures are CollateralError with an offline hint.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Callable

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from ..errors import CollateralError
from .cache import CollateralCache, Fetched, utc_now
from .nvidia import NoCpuCollateral, describe_cert, ocsp_hint, rim_hint, split_rim_id
from .online import RetryPolicy, _Fetcher

RIM_BASE = "https://rim.attestation.nvidia.com"
OCSP_URL = "https://ocsp.ndis.nvidia.com/"


class NvidiaRimService(NoCpuCollateral):
    """RIMs from NVIDIA's RIM service (or a mirror with the same paths)."""

    def __init__(self, base_url: str = RIM_BASE, client: httpx.Client | None = None,
                 cache: CollateralCache | None = None, *, retry: RetryPolicy = RetryPolicy(),
                 now: Callable[[], datetime] = utc_now) -> None:
        self._http = _Fetcher(base_url, client, cache, retry, now)

    def close(self) -> None:
        self._http.close()

    def nvidia_rim(self, rim_id: str) -> bytes:
        split_rim_id(rim_id)
        item = f"NVIDIA RIM {rim_id}"
        got = self._http.get(f"/v1/rim/{rim_id}", item=item, hint=rim_hint(rim_id), expires=_rim_expiry)
        return _rim_xml(got.body, item)

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        raise CollateralError(f"NVIDIA OCSP response for '{describe_cert(cert)}'",
                              "the RIM service does not answer OCSP", hint=ocsp_hint(describe_cert(cert)))


def _rim_xml(body: bytes, item: str) -> bytes:
    try:
        return base64.b64decode(json.loads(body)["rim"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise CollateralError(item, "the RIM service answered without a base64 'rim' member") from None


def _rim_expiry(fetched: Fetched) -> datetime:
    from ..nvidia.rim import signer_window
    window = signer_window(_rim_xml(fetched.body, "NVIDIA RIM"))
    if window is None:
        raise CollateralError("NVIDIA RIM", "carries no readable signer certificate")
    return window[1]


class NvidiaOcsp(NoCpuCollateral):
    """NVIDIA's OCSP responder (POST, bounded retries, cached until nextUpdate)."""

    def __init__(self, url: str = OCSP_URL, client: httpx.Client | None = None,
                 cache: CollateralCache | None = None, *, retry: RetryPolicy = RetryPolicy(),
                 now: Callable[[], datetime] = utc_now) -> None:
        self.url, self.cache, self.retry, self.now = url, cache, retry, now
        self._owned = client is None
        self.client = client or httpx.Client(timeout=30.0)

    def close(self) -> None:
        if self._owned:
            self.client.close()

    def nvidia_rim(self, rim_id: str) -> bytes:
        raise CollateralError(f"NVIDIA RIM {rim_id}", "the OCSP responder does not serve RIMs",
                              hint=rim_hint(rim_id))

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA384()).build()
        body = request.public_bytes(Encoding.DER)
        key = f"{self.url}#{base64.urlsafe_b64encode(body).decode()}"
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            return cached.body
        item = f"NVIDIA OCSP response for '{describe_cert(cert)}'"
        der = self._post(body, item)
        if self.cache:
            response = ocsp.load_der_ocsp_response(der)
            if response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL and response.next_update_utc:
                self.cache.put(key, Fetched(der), response.next_update_utc)
        return der

    def _post(self, body: bytes, item: str) -> bytes:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
        retrying = Retrying(stop=stop_after_attempt(self.retry.attempts), reraise=True, sleep=self.retry.sleep,
                            wait=wait_exponential(multiplier=0.5, max=self.retry.max_wait_seconds),
                            retry=retry_if_exception_type(httpx.TransportError))
        try:
            response = retrying(self.client.post, self.url, content=body,
                                headers={"Content-Type": "application/ocsp-request"})
        except httpx.HTTPError as exc:
            raise CollateralError(item, f"cannot reach {self.url}: {type(exc).__name__}",
                                  hint=ocsp_hint(item)) from None
        if response.status_code != 200:
            raise CollateralError(item, f"{self.url} answered HTTP {response.status_code}", hint=ocsp_hint(item))
        return response.content
