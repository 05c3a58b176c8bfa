"""Online collateral: Intel PCS (or a PCCS) and AMD KDS, with a cache and polite retries.

Intel PCS API v4, relative to a configurable base URL so a PCCS
works too (`https://pccs.local:8081` serves the same paths):
`/tdx/certification/v4/tcb?fmspc=`, `/tdx/certification/v4/qe/identity`,
`/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der`,
`/sgx/certification/v4/rootcacrl`; issuer chains come URL-encoded in the
`TCB-Info-Issuer-Chain`, `SGX-Enclave-Identity-Issuer-Chain` and
`SGX-PCK-CRL-Issuer-Chain` headers. AMD KDS paths: see `amd`.

The KDS rate-limits (HTTP 429 with Retry-After). Requests are retried with
tenacity: Retry-After is honoured, otherwise exponential backoff, with a bound
on attempts and on total time. Anything that still fails is a CollateralError
naming the item and the host, and pointing at offline bundles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Callable
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.serialization import Encoding
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential

from ..errors import AttestationError, CollateralError
from . import PckCa, SnpSigner, SnpTcbParts, TdxCollateral
from .amd import cert_chain_path, crl_path, endorsement_item, kds_product, vcek_path
from .bundle import tdx_fetch_hint
from .cache import CollateralCache, Fetched, utc_now
from .intel import crl_der, issuer_chain, split_pcs_body, tdx_collateral_from_pcs
from .manifest import MAX_ITEM_BYTES
from .windows import cert_window, crl_window, json_window, load_certs

__all__ = ["AmdKds", "CollateralCache", "IntelPcs", "OnlineCollateral", "RetryPolicy"]

PCS_BASE = "https://api.trustedservices.intel.com"
KDS_BASE = "https://kdsintf.amd.com"
_RETRY_STATUS = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Bounds on retrying rate-limited (429) or unavailable responses and network errors."""

    attempts: int = 5
    total_seconds: float = 60.0
    max_wait_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep


class _RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


class _BadResponse(Exception):
    """A final answer that is not the item: wrong status, or too large."""


class _Fetcher:
    """GET with caching, bounded retries and errors that name the item and host."""

    def __init__(self, base_url: str, client: httpx.Client | None, cache: CollateralCache | None,
                 retry: RetryPolicy, now: Callable[[], datetime]) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self._owned = client is None
        self.client = client or httpx.Client(timeout=30.0, follow_redirects=True)
        self.cache, self.retry, self.now = cache, retry, now

    def close(self) -> None:
        if self._owned:
            self.client.close()

    def get(self, path: str, *, item: str, hint: str, keep: tuple[str, ...] = (),
            expires: Callable[[Fetched], datetime]) -> Fetched:
        """The response for base_url + path; `expires` reads its next-update time (for the cache)."""
        url = self.base_url + path
        cached = self.cache.get(url) if self.cache else None
        if cached is not None:
            return cached
        response = self._request(url, item=item, hint=hint)
        fetched = Fetched(response[0], {name.lower(): response[1][name] for name in keep
                                        if name in response[1]})
        try:
            until = expires(fetched)
        except AttestationError as exc:
            raise CollateralError(item, f"{self.host} returned unusable data: {exc}", hint=hint) from None
        if self.cache:
            self.cache.put(url, fetched, until)
        return fetched

    def _request(self, url: str, *, item: str, hint: str) -> tuple[bytes, httpx.Headers]:
        policy = self.retry
        backoff = wait_exponential(multiplier=0.5, max=policy.max_wait_seconds)

        def wait(state) -> float:
            exc = state.outcome.exception()
            delay = getattr(exc, "retry_after", None)
            delay = backoff(state) if delay is None else min(delay, policy.max_wait_seconds)
            return max(0.0, min(delay, policy.total_seconds - state.seconds_since_start))

        retrying = Retrying(stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.total_seconds),
                            wait=wait, sleep=policy.sleep, reraise=True,
                            retry=retry_if_exception_type((_RetryableStatus, httpx.TransportError)))
        try:
            return retrying(self._once, url)
        except _RetryableStatus as exc:
            why = "rate-limits requests" if exc.status == 429 else f"is unavailable (HTTP {exc.status})"
            raise CollateralError(item, f"{self.host} {why}; gave up after {policy.attempts} attempts "
                                  f"or {policy.total_seconds:g} s", hint=hint) from None
        except _BadResponse as exc:
            raise CollateralError(item, f"{self.host} {exc}", hint=hint) from None
        except httpx.HTTPError as exc:
            raise CollateralError(item, f"cannot reach {self.host}: {type(exc).__name__}: {exc}",
                                  hint=hint) from None

    def _once(self, url: str) -> tuple[bytes, httpx.Headers]:
        with self.client.stream("GET", url) as response:
            if response.status_code in _RETRY_STATUS:
                raise _RetryableStatus(response.status_code,
                                       _retry_after(response.headers.get("retry-after"), self.now()))
            if response.status_code != 200:
                what = "has no such item" if response.status_code == 404 else "answered"
                raise _BadResponse(f"{what} (HTTP {response.status_code} for {urlsplit(url).path})")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ITEM_BYTES:
                    raise _BadResponse(f"sent more than {MAX_ITEM_BYTES} bytes")
            return bytes(body), response.headers


def _offline_hint(host: str, fetch_args: str) -> str:
    return (f"if this machine cannot reach {host}, run `veil attest collateral fetch {fetch_args} "
            "--out DIR` on a connected machine and pass --collateral DIR")


class IntelPcs:
    """Intel PCS v4 or a PCCS (same paths under another base URL)."""

    def __init__(self, base_url: str = PCS_BASE, client: httpx.Client | None = None,
                 cache: CollateralCache | None = None, *, update: str | None = None,
                 retry: RetryPolicy = RetryPolicy(), now: Callable[[], datetime] = utc_now) -> None:
        self._http = _Fetcher(base_url, client, cache, retry, now)
        self._update = f"update={update}" if update else ""     # PCS "standard" / "early"

    def close(self) -> None:
        self._http.close()

    def _hint(self, fmspc: str) -> str:
        return _offline_hint(self._http.host, f"--fmspc {fmspc}")

    def _signed(self, path: str, key: str, header: str, item: str, hint: str) -> tuple[bytes, bytes]:
        def expires(f: Fetched) -> datetime:
            return json_window(split_pcs_body(f.body, key, structure=item)[0], structure=item).not_after
        got = self._http.get(path, item=item, hint=hint, keep=(header, "SGX-" + header), expires=expires)
        chain = got.headers.get(header.lower()) or got.headers.get("sgx-" + header.lower())
        if not chain:
            raise CollateralError(item, f"{self._http.host} sent no {header} header", hint=hint)
        return got.body, issuer_chain(chain)

    def tcb_info(self, fmspc: str) -> tuple[bytes, bytes]:
        """(PCS body, PEM issuer chain) of the TDX TCB info for an FMSPC."""
        fmspc = _check_fmspc(fmspc)
        query = f"fmspc={fmspc}" + (f"&{self._update}" if self._update else "")
        return self._signed(f"/tdx/certification/v4/tcb?{query}", "tcbInfo", "TCB-Info-Issuer-Chain",
                            f"TDX TCB info for FMSPC {fmspc}", self._hint(fmspc))

    def qe_identity(self, fmspc: str = "FMSPC") -> tuple[bytes, bytes]:
        """(PCS body, PEM issuer chain) of the TD QE identity."""
        query = f"?{self._update}" if self._update else ""
        return self._signed(f"/tdx/certification/v4/qe/identity{query}", "enclaveIdentity",
                            "SGX-Enclave-Identity-Issuer-Chain", "TDX QE identity", self._hint(fmspc))

    def pck_crl(self, ca: PckCa, fmspc: str = "FMSPC") -> tuple[bytes, bytes]:
        """(DER CRL, PEM issuer chain) of the PCK Platform or Processor CA."""
        if ca not in ("platform", "processor"):
            raise CollateralError(f"Intel PCK CRL ({ca} CA)", "CA must be 'platform' or 'processor'")
        item = f"Intel PCK CRL ({ca} CA)"
        got = self._http.get(f"/sgx/certification/v4/pckcrl?ca={ca}&encoding=der", item=item,
                             hint=self._hint(fmspc), keep=("SGX-PCK-CRL-Issuer-Chain",),
                             expires=lambda f: crl_window(crl_der(f.body)).not_after)
        chain = got.headers.get("sgx-pck-crl-issuer-chain")
        if not chain:
            raise CollateralError(item, f"{self._http.host} sent no SGX-PCK-CRL-Issuer-Chain header",
                                  hint=self._hint(fmspc))
        return crl_der(got.body), issuer_chain(chain)

    def root_ca_crl(self, fmspc: str = "FMSPC") -> bytes:
        """DER CRL of the Intel SGX Root CA."""
        got = self._http.get("/sgx/certification/v4/rootcacrl", item="Intel SGX root CA CRL",
                             hint=self._hint(fmspc),
                             expires=lambda f: crl_window(crl_der(f.body)).not_after)
        return crl_der(got.body)

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        fmspc = _check_fmspc(fmspc)
        tcb_body, tcb_chain = self.tcb_info(fmspc)
        qe_body, qe_chain = self.qe_identity(fmspc)
        crl, crl_chain = self.pck_crl(ca, fmspc)
        return tdx_collateral_from_pcs(tcb_body, qe_body, tcb_chain, qe_chain, crl, crl_chain,
                                       self.root_ca_crl(fmspc))


def _check_fmspc(fmspc: str) -> str:
    fmspc = fmspc.strip().lower()
    if len(fmspc) != 12 or any(ch not in "0123456789abcdef" for ch in fmspc):
        raise CollateralError(f"TDX TCB info for FMSPC {fmspc!r}", "an FMSPC is 6 bytes of hex",
                              hint=tdx_fetch_hint("<12 hex digits>"))
    return fmspc


class AmdKds:
    """AMD's Key Distribution Service: VCEKs, certificate chains and CRLs."""

    def __init__(self, base_url: str = KDS_BASE, client: httpx.Client | None = None,
                 cache: CollateralCache | None = None, *, retry: RetryPolicy = RetryPolicy(),
                 now: Callable[[], datetime] = utc_now) -> None:
        self._http = _Fetcher(base_url, client, cache, retry, now)

    def close(self) -> None:
        self._http.close()

    def _hint(self, product: str) -> str:
        return _offline_hint(self._http.host, f"--snp-product {kds_product(product)}")

    def vcek(self, product: str, chip_id: bytes, tcb: SnpTcbParts) -> bytes:
        """DER VCEK for a chip (CHIP_ID from the report) at its reported TCB."""
        item = endorsement_item(product, "vcek", chip_id, tcb)
        got = self._http.get(vcek_path(product, chip_id, tcb), item=item, hint=self._hint(product),
                             expires=lambda f: cert_window(f.body).not_after)
        return load_certs(got.body)[0].public_bytes(Encoding.DER)

    def cert_chain(self, product: str, signer: SnpSigner = "vcek") -> bytes:
        """PEM: ASK (or ASVK) then ARK."""
        item = f"AMD {kds_product(product)} {signer.upper()} certificate chain"
        return self._http.get(cert_chain_path(product, signer), item=item, hint=self._hint(product),
                              expires=lambda f: cert_window(f.body).not_after).body

    def crl(self, product: str, signer: SnpSigner = "vcek") -> bytes:
        """DER CRL of the VCEK or VLEK hierarchy, signed by the ARK."""
        item = f"CRL for the AMD {kds_product(product)} {signer.upper()} hierarchy"
        return self._http.get(crl_path(product, signer), item=item, hint=self._hint(product),
                              expires=lambda f: crl_window(f.body).not_after).body


class OnlineCollateral:
    """CollateralSource backed by Intel PCS/PCCS and AMD KDS. Close it (or use `with`) when done."""

    def __init__(self, pcs: IntelPcs | None = None, kds: AmdKds | None = None) -> None:
        self.pcs, self.kds = pcs, kds

    def __enter__(self) -> "OnlineCollateral":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for service in (self.pcs, self.kds):
            if service is not None:
                service.close()

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        if self.pcs is None:
            raise CollateralError(f"TDX collateral for FMSPC {fmspc}", "no Intel PCS or PCCS is configured",
                                  hint=tdx_fetch_hint(fmspc))
        return self.pcs.tdx(fmspc, ca)

    def snp_endorsement(self, product: str, signer: SnpSigner, chip_id: bytes,
                        tcb: SnpTcbParts) -> bytes:
        item = endorsement_item(product, signer, chip_id if signer == "vcek" else None, tcb)
        if signer == "vlek":
            raise CollateralError(item, "VLEKs cannot be fetched from the AMD KDS; the cloud provider "
                                  "provisions them and they come from the host's certificate table",
                                  hint="pass the VLEK with --certs (extended report or configfs-tsm auxblob)")
        return self._kds(item, product).vcek(product, chip_id, tcb)

    def snp_crl(self, product: str, signer: SnpSigner) -> bytes:
        return self._kds(f"CRL for the AMD {product} {signer.upper()} hierarchy", product).crl(product, signer)

    def snp_cert_chain(self, product: str, signer: SnpSigner) -> bytes:
        item = f"AMD {product} {signer.upper()} certificate chain"
        return self._kds(item, product).cert_chain(product, signer)

    def _kds(self, item: str, product: str) -> AmdKds:
        if self.kds is None:
            raise CollateralError(item, "no AMD KDS is configured",
                                  hint=f"pass an offline bundle with --collateral ({product})")
        return self.kds

