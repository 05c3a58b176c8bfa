"""Turn httpx's transport failures into BrokerUnreachable, with what failed, why and what to do."""

from __future__ import annotations

from typing import Any

import httpx

from .errors import BrokerUnreachable


def _reason(exc: httpx.HTTPError) -> tuple[str, str]:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.UnsupportedProtocol):
        return text, "use an http:// or https:// URL"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: {text}", "check that the broker is running and reachable, or retry"
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper() or "TLS" in text.upper():
        return f"TLS failed: {text}", "check the broker's certificate and the CA you trust"
    return text, "check the URL and that the broker is running"


def client(base_url: str, *, timeout: float = 30.0, **kwargs: Any) -> httpx.Client:
    try:
        return httpx.Client(base_url=base_url, timeout=timeout, **kwargs)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise BrokerUnreachable(f"invalid broker URL {base_url!r}", str(exc),
                                "give a URL like https://broker:8443") from None


def request(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """http.request, with transport errors raised as BrokerUnreachable (never the request body)."""
    try:
        return http.request(method, url, **kwargs)
    except httpx.InvalidURL as exc:
        raise BrokerUnreachable(f"invalid broker URL {str(http.base_url)!r}", str(exc),
                                "give a URL like https://broker:8443") from None
    except httpx.TransportError as exc:
        why, hint = _reason(exc)
        raise BrokerUnreachable(f"cannot reach the broker at {str(http.base_url)}", why, hint) from None
