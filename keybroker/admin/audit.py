"""The auditor's export: leaf hashes of the whole log, the entries this tenant may see, the latest
signed checkpoint and the log's public key, so `veil audit` can verify offline."""

from __future__ import annotations

from sqlalchemy import or_, select

from ..audit.log import AuditLog
from ..db.logstore import SqlLogStore
from ..db.models import LogRecord
from ..state import BrokerState
from .auth import Principal


def checkpoint(state: BrokerState) -> str:
    """A fresh signed checkpoint if the log grew since the last one; the latest otherwise."""
    with state.writes() as db:
        store = SqlLogStore(db)
        latest = store.latest_checkpoint()
        size = store.size()
        if latest is not None and int(latest.split("\n", 2)[1]) == size:
            return latest
        return AuditLog(store, state.log_signer, state.settings.log_origin).checkpoint()


def export(state: BrokerState, who: Principal) -> dict:
    note = checkpoint(state)
    size = int(note.split("\n", 2)[1])
    with state.reads() as db:
        hashes = SqlLogStore(db).leaf_hashes(0, size)
        rows = db.execute(select(LogRecord.seq, LogRecord.entry)
                          .where(LogRecord.seq < size, or_(LogRecord.tenant == who.tenant, LogRecord.tenant.is_(None)))
                          .order_by(LogRecord.seq)).all()
    return {"origin": state.settings.log_origin, "size": size, "checkpoint": note,
            "log_key": state.log_signer.verifier.key_string(), "tenant": who.tenant,
            "leaf_hashes": [h.hex() for h in hashes],
            "entries": [{"seq": seq, "entry": entry.decode()} for seq, entry in rows]}
