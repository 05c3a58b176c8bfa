"""Attestation-log entries as auditors read them back (LogEntry.from_canonical / export.parse_entries).

`from_canonical` documents ValueError (pydantic's ValidationError is one);
parse_entries maps that to None and must never raise.
"""

from __future__ import annotations

from keybroker.audit.entry import LogEntry, entry_leaf_hash
from keybroker.audit.export import parse_entries


def test_one_input(data: bytes) -> None:
    try:
        entry = LogEntry.from_canonical(data)
    except ValueError:
        entry = None
    if entry is not None:
        entry_leaf_hash(entry)
        entry.evidence()
    parse_entries(data.split(b"\n"))
