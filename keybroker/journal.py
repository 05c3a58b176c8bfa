"""Append to the attestation log inside the caller's transaction (invariant 5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .audit.checkpoint import NoteSigner
from .audit.entry import LogEntry, Reason as LogReason
from .audit.log import AuditLog
from .db.engine import utcnow
from .db.logstore import SqlLogStore
from .errors import Reason


def log_for(session: Session, signer: NoteSigner, origin: str, tenant: str | None = None) -> AuditLog:
    return AuditLog(SqlLogStore(session, tenant=tenant), signer, origin)


def reasons(items: tuple[Reason, ...]) -> tuple[LogReason, ...]:
    return tuple(LogReason(code=r.code, message=r.message, expected=r.expected, actual=r.actual) for r in items)


def append(session: Session, signer: NoteSigner, origin: str, *, tenant: str | None = None,
           evidence: bytes | None = None, claims: dict[str, Any] | None = None,
           why: tuple[Reason, ...] = (), **fields: Any) -> int:
    """Append one entry; the caller's commit makes it (and the state change beside it) durable."""
    fields.setdefault("time", utcnow())
    entry = LogEntry.record(evidence=evidence, claims=claims, tenant=tenant, reasons=reasons(why), **fields)
    seq, _ = log_for(session, signer, origin, tenant).append(entry)
    return seq
