"""Validity windows of collateral items, read for manifests, caches and status listings.

These helpers only *read* dates (TCB info / QE identity issueDate and
nextUpdate, CRL thisUpdate and nextUpdate, certificate notBefore and
notAfter); they never decide whether an item may be used. Verifiers check
signatures and dates themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509

from ..errors import ParseError
from ..x509util import load_certificates, load_crl


@dataclass(frozen=True, slots=True)
class Window:
    """The instants an item says it is valid between (both inclusive)."""

    not_before: datetime
    not_after: datetime

    def contains(self, at: datetime) -> bool:
        return self.not_before <= at <= self.not_after


def parse_utc(text: str, *, structure: str = "collateral", field: str = "date") -> datetime:
    """ISO 8601 time as Intel and the bundle write it ("2025-06-19T10:16:03Z"), as aware UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        raise ParseError(structure, field, None, f"{text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ParseError(structure, field, None, f"{text!r} has no time zone")
    return value.astimezone(timezone.utc)


def format_utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_window(signed_json: bytes, *, structure: str = "Intel collateral") -> Window:
    """issueDate .. nextUpdate of a TCB info or QE identity object (its exact signed bytes)."""
    try:
        doc = json.loads(signed_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(structure, "JSON", None, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ParseError(structure, "JSON", None, "is not a JSON object")
    dates = []
    for name in ("issueDate", "nextUpdate"):
        if not isinstance(doc.get(name), str):
            raise ParseError(structure, name, None, "missing or not a string")
        dates.append(parse_utc(doc[name], structure=structure, field=name))
    return Window(dates[0], dates[1])


def crl_window(der: bytes, *, structure: str = "CRL") -> Window:
    """thisUpdate .. nextUpdate of a DER (or PEM) CRL; no nextUpdate means open-ended."""
    try:
        crl = load_crl(der)
    except ValueError as exc:
        raise ParseError(structure, "CRL", None, f"not a DER or PEM CRL ({exc})") from None
    end = crl.next_update_utc or datetime.max.replace(tzinfo=timezone.utc)
    return Window(crl.last_update_utc, end)


def load_certs(data: bytes, *, structure: str = "certificate") -> list[x509.Certificate]:
    """One DER certificate, or any number of PEM certificates."""
    try:
        return load_certificates(data)
    except ValueError as exc:
        raise ParseError(structure, "certificate", None, f"not a DER or PEM certificate ({exc})") from None


def cert_window(data: bytes, *, structure: str = "certificate") -> Window:
    """Where every certificate in `data` (DER, or a PEM chain) is valid at once."""
    certs = load_certs(data, structure=structure)
    return Window(max(c.not_valid_before_utc for c in certs),
                  min(c.not_valid_after_utc for c in certs))
