"""Append to the attestation log inside the caller's transaction (invariant 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .audit.checkpoint import NoteSigner
from .audit.entry import LogEntry, PreparedEntry, Reason as LogReason
from .audit.log import AuditLog
from .db.engine import utcnow
from .db.logstore import SqlLogStore
from .errors import Reason


def log_for(session: Session, signer: NoteSigner, origin: str, tenant: str | None = None) -> AuditLog:
    return AuditLog(SqlLogStore(session, tenant=tenant), signer, origin)


def reasons(items: tuple[Reason, ...]) -> tuple[LogReason, ...]:
    return tuple(LogReason(code=r.code, message=r.message, expected=r.expected, actual=r.actual) for r in items)


@dataclass(frozen=True, slots=True)
class Pending:
    """An entry built and canonicalised, waiting for its seq (see `prepare`)."""

    entry: PreparedEntry
    tenant: str | None


def prepare(*, tenant: str | None = None, evidence: bytes | None = None, claims: dict[str, Any] | None = None,
            claims_jcs: bytes | None = None, why: tuple[Reason, ...] = (), **fields: Any) -> Pending:
    """Build an entry outside any transaction (digests, canonical form: the costly part). `claims_jcs`: the
    claims' RFC 8785 bytes, where the caller has them already."""
    fields.setdefault("time", utcnow())
    _, prepared = LogEntry.prepare_record(evidence=evidence, claims=claims, claims_jcs=claims_jcs, tenant=tenant,
                                          reasons=reasons(why), **fields)
    return Pending(prepared, tenant)


def append_pending(session: Session, signer: NoteSigner, origin: str, pending: Pending) -> int:
    """Append a prepared entry; the caller's commit makes it (and the state change beside it) durable."""
    seq, _ = log_for(session, signer, origin, pending.tenant).append(pending.entry)
    return seq


def append(session: Session, signer: NoteSigner, origin: str, **fields: Any) -> int:
    """Build and append one entry inside the caller's transaction (`prepare` + `append_pending`)."""
    return append_pending(session, signer, origin, prepare(**fields))
