"""On-disk cache of collateral responses that honours the collateral's own next update.

Intel and AMD say in the collateral itself how long it stays current: TCB info
and QE identity carry `nextUpdate`, CRLs `nextUpdate`, VCEKs and chains
`notAfter`. The caller works that instant out from the response and hands it
to `put`; `get` serves the entry while `now() < expires` and treats it as
absent afterwards, so the next call fetches a fresh copy. HTTP cache headers
are not used: they do not know about the collateral's own dates.

Entries are JSON files named by the SHA-256 of the URL, written atomically
(temporary file + os.replace). An unreadable or corrupt entry is a miss.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..errors import AttestationError
from ..fsutil import atomic_write
from .windows import format_utc, parse_utc

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock. Logic takes a `now` callable instead of calling this itself."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response body and the headers kept from it (lower-case names, e.g. an issuer chain)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class CollateralCache:
    """Responses by URL, each kept until the collateral's own next-update time."""

    def __init__(self, directory: str | os.PathLike[str], *, now: Clock = utc_now) -> None:
        self.directory = Path(directory)
        self.now = now

    def _file(self, url: str) -> Path:
        return self.directory / (hashlib.sha256(url.encode()).hexdigest() + ".json")

    def get(self, url: str) -> Fetched | None:
        """The cached response for `url` if it is still current, else None."""
        try:
            entry = json.loads(self._file(url).read_bytes())
            if entry["url"] != url or not self.now() < parse_utc(entry["expires"]):
                return None
            return Fetched(base64.b64decode(entry["body"], validate=True), dict(entry["headers"]))
        except (OSError, ValueError, KeyError, TypeError, AttestationError):
            return None     # missing, corrupt or mangled: a miss

    def put(self, url: str, fetched: Fetched, expires: datetime) -> None:
        """Store a response until `expires`; one already past its next update is not stored."""
        if not self.now() < expires:
            return
        entry = {"url": url, "expires": format_utc(expires), "headers": fetched.headers,
                 "body": base64.b64encode(fetched.body).decode()}
        atomic_write(self._file(url), json.dumps(entry).encode(), 0o600)
