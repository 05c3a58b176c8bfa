"""The claims of this process's latest attestations, for the releases that follow them.

A guest attests and asks for its resource on one keep-alive connection, so the release usually runs in the
process that verified the evidence a moment before. There, the attestation's claims are already a `Claims`
object with their RFC 8785 bytes (made for the attestation's log entry): the release takes them from here
instead of parsing and validating the stored JSON and canonicalising it again. An attestation row is never
changed once written, so a remembered entry cannot go stale; a miss (another worker or replica, a Bearer
token, an entry pushed out) reads the row as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from attestation.claims import Claims

MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class AttestedClaims:
    claims: Claims
    document: dict[str, Any]          # claims.model_dump(mode="json"): what the log entries record
    jcs: bytes                        # canonical_json(document)


class RecentClaims:
    """Attestation id → its claims, the newest `max_entries` attestations of this process."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._items: OrderedDict[str, AttestedClaims] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()       # PostgreSQL brokers decide on pool threads

    def put(self, attestation_id: str, item: AttestedClaims) -> None:
        with self._lock:
            self._items[attestation_id] = item
            if len(self._items) > self._max:
                self._items.popitem(last=False)

    def get(self, attestation_id: str) -> AttestedClaims | None:
        return self._items.get(attestation_id)

    def __len__(self) -> int:
        return len(self._items)
