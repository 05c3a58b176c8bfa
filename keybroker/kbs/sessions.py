"""RCAR sessions in the database: a challenge nonce per session, single-use, expiring.

Consumption is one conditional UPDATE (`… WHERE consumed = false AND
expires_at > now`): of any number of concurrent attempts on any number of
replicas, exactly one sees a row count of 1.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..db.engine import as_utc
from ..db.ids import time_ordered_id
from ..db.models import KbsSession
from ..db.prepared import Prepared
from ..errors import BadRequest, Reason
from .messages import PROTOCOL_VERSIONS, SUPPORTED_TEES, Challenge, KbsRequest

DEFAULT_HASH = "sha384"


def select_hash(extra_params: Any) -> tuple[str, Any]:
    """The report-data hash and the Challenge's extra-params (§2.2): SHA-384 unless the client can't."""
    if not isinstance(extra_params, dict):
        return DEFAULT_HASH, ""
    supported = extra_params.get("supported-hash-algorithms") or [DEFAULT_HASH]
    if not isinstance(supported, list):
        raise BadRequest("kbs.extra_params", "supported-hash-algorithms must be a list")
    for alg in (DEFAULT_HASH, "sha512", "sha256"):
        if alg in supported:
            return alg, {"selected-hash-algorithm": alg}
    raise BadRequest("kbs.hash_algorithm", f"none of {supported!r} is supported; offer sha384, sha512 or sha256")


def new_session(req: KbsRequest, now: datetime, ttl: timedelta) -> tuple[dict[str, Any], Challenge]:
    """A session row (to insert) and its Challenge; BadRequest for a version, TEE or hash we don't speak."""
    if req.version not in PROTOCOL_VERSIONS:
        raise BadRequest("kbs.version", f"protocol version {req.version!r} is not supported; "
                                        f"expected one of {', '.join(PROTOCOL_VERSIONS)}")
    if req.tee not in SUPPORTED_TEES:
        raise BadRequest("kbs.tee", f"TEE {req.tee!r} is not supported; expected one of {', '.join(SUPPORTED_TEES)}")
    hash_alg, extra = select_hash(req.extra_params)
    row = dict(id=time_ordered_id(), nonce=base64.b64encode(secrets.token_bytes(32)).decode(), tee=req.tee,
               hash_alg=hash_alg, created_at=now, expires_at=now + ttl, consumed=False, attestation_id=None)
    return row, Challenge(nonce=row["nonce"], extra_params=extra)


_FRESH = (KbsSession.id == bindparam("sid"), KbsSession.consumed.is_(False), KbsSession.expires_at > bindparam("now"))
_CONSUMED = update(KbsSession).where(*_FRESH).values(consumed=True)
_CONSUME = Prepared(_CONSUMED)
_CONSUME_FOR = Prepared(_CONSUMED.values(attestation_id=bindparam("attestation_id")))


def consume(db: Session | Connection, session_id: str, now: datetime, *, attestation_id: str | None = None) -> bool:
    """Mark the session's nonce used (recording the attestation it produced, if any); True only for
    the one caller that did so while it was fresh."""
    if attestation_id is None:
        return _CONSUME.rowcount(db, {"sid": session_id, "now": now}) == 1
    return _CONSUME_FOR.rowcount(db, {"sid": session_id, "now": now, "attestation_id": attestation_id}) == 1


def unusable(row: Any, nonce: str, now: datetime) -> Reason | None:
    """Why a session cannot take this attestation, or None."""
    if row is None:
        return Reason("kbs.unknown_session", "no such session: call /kbs/v0/auth first")
    if row.consumed:
        return Reason("kbs.nonce_consumed", "this session's nonce was already used (replay)",
                      expected="unused nonce", actual="consumed")
    if as_utc(row.expires_at) <= now:
        return Reason("kbs.nonce_expired", "the session's nonce has expired; start again with /kbs/v0/auth",
                      expected=f"before {as_utc(row.expires_at).isoformat()}", actual=now.isoformat())
    if not secrets.compare_digest(row.nonce.encode(), nonce.encode()):
        return Reason("kbs.nonce_mismatch", "runtime-data nonce is not this session's challenge")
    return None
