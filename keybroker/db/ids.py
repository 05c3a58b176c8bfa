"""Identifiers for rows inserted on every release: sessions (the session cookie) and attestations (the token's
`jti`).

A random key puts each insert on a random leaf page of its B-tree index, and every group commit then rewrites
those whole pages into SQLite's WAL (or PostgreSQL's): several 4 KiB pages per release for rows of a few dozen
bytes. A key that starts with the time lands on the newest pages, which the commit writes anyway. The first 48
bits are Unix milliseconds, as in RFC 9562's UUIDv7; the other 80 are random, so a session id stays unguessable
(OWASP asks for at least 64 bits of entropy). 32 hex digits, the width of the columns that hold them.
"""

from __future__ import annotations

import secrets
import time


def time_ordered_id() -> str:
    """48 bits of Unix milliseconds, then 80 random bits, as 32 lowercase hex digits."""
    return (time.time_ns() // 1_000_000).to_bytes(6, "big").hex() + secrets.token_hex(10)
