"""POST /kbs/v0/call-audit: an attested enclave ships its per-call audit chain into the attestation log.

The enclave attests with the key that signs its call records as the KBS
`tee-pubkey` (its attested TLS key), then posts batches of the chain
(keybroker.audit.calls) with the session cookie or the attestation token. The
broker accepts a batch only if it is signed by that attested key, every link
and signature verifies, and it continues the chain exactly where the previous
batch of the same key ended (the first batch starts at genesis). Each accepted
batch becomes one log entry of kind "calls"; a batch already appended is
acknowledged again (retries are safe); anything else is a logged denial.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from .. import journal
from ..audit.calls import GENESIS, Batch, BatchOutOfOrder, BatchRejected, check_batch, jwk_thumbprint
from ..db.engine import utcnow
from ..db.models import Attestation, CallAuditHead
from ..errors import BadRequest, BrokerError, Conflict, Reason, Unauthenticated
from ..state import BrokerState
from .release import Caller, attested

MAX_BATCH = 8 << 20          # bytes of JSON per request (about 20,000 call records)


def ingest(state: BrokerState, caller: Caller, raw: bytes) -> dict:
    """Check and append one batch; the acknowledgement names its log entry."""
    att: Attestation | None = None
    try:
        with state.reads() as db:
            att = attested(db, state, caller)
        batch, head = _check(state, att, _parse(raw))
        if head is not None and batch is None:                       # the last batch again: a retry
            return {"log_seq": head.log_seq, "next_seq": head.next_seq, "duplicate": True}
        return _append(state, att, batch, head)
    except BrokerError as exc:
        _log_refusal(state, att, exc)
        raise


def _parse(raw: bytes) -> dict:
    if len(raw) > MAX_BATCH:
        raise BadRequest("calls.too_large", f"a call-audit batch is at most {MAX_BATCH} bytes; ship smaller batches")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BadRequest("calls.malformed", "the call-audit batch is not JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("calls.malformed", "the call-audit batch must be a JSON object")
    return doc


def _check(state: BrokerState, att: Attestation, doc: dict) -> tuple[Batch | None, CallAuditHead | None]:
    """(checked batch, current head); (None, head) when the batch is exactly the last one appended."""
    try:
        key_id = jwk_thumbprint(doc.get("tee_pubkey_jwk") or {})
        attested_key = jwk_thumbprint(json.loads(att.tee_pubkey_json))
    except BatchRejected as exc:
        raise BadRequest("calls.malformed", str(exc)) from None
    if key_id != attested_key:
        raise Unauthenticated("calls.key_not_attested", "the batch is signed by a key other than the one this "
                              "attestation bound; attest with the call-audit signing key as tee-pubkey")
    with state.reads() as db:
        head = db.get(CallAuditHead, key_id)
    if head is not None and doc.get("head_hash") == head.head_hash and doc.get("last_seq") == head.next_seq - 1:
        return None, head
    try:
        batch = check_batch(doc, prev_hash=head.head_hash if head else GENESIS.hex(),
                            first_seq=head.next_seq if head else 0)
    except BatchOutOfOrder as exc:
        raise Conflict("calls.out_of_order", str(exc)) from None
    except BatchRejected as exc:
        raise BadRequest("calls.invalid", str(exc)) from None
    return batch, head


def _append(state: BrokerState, att: Attestation, batch: Batch, seen: CallAuditHead | None) -> dict:
    now = utcnow()
    pending = journal.prepare(kind="calls", time=now, session_id=att.session_id, tee=att.tee,
                              action="call-audit", calls=batch.document)
    try:
        with state.writes() as db:
            head = db.get(CallAuditHead, batch.key_id, with_for_update=True)
            if (head.next_seq if head else 0) != (seen.next_seq if seen else 0):
                raise Conflict("calls.out_of_order", "another batch of this chain was appended meanwhile; "
                                                     "ship from the broker's current head")
            seq = journal.append_pending(db, state.log_signer, state.settings.log_origin, pending)
            _save_head(db, head, batch, seq, att.id, now)
    except IntegrityError:                                           # a concurrent first batch of this key
        raise Conflict("calls.out_of_order", "another batch of this chain was appended meanwhile") from None
    state.metrics.call_batches.inc()
    return {"log_seq": seq, "next_seq": batch.last_seq + 1, "duplicate": False}


def _save_head(db, head: CallAuditHead | None, batch: Batch, log_seq: int, attestation_id: str,
               now: datetime) -> None:
    if head is None:
        head = CallAuditHead(key_id=batch.key_id)
        db.add(head)
    head.next_seq, head.head_hash, head.log_seq = batch.last_seq + 1, batch.head_hash, log_seq
    head.attestation_id, head.updated_at = attestation_id, now


def _log_refusal(state: BrokerState, att: Attestation | None, exc: BrokerError) -> None:
    why = exc.reasons or (Reason(exc.code, exc.message),)
    pending = journal.prepare(kind="denial", decision="deny", session_id=att.session_id if att else None,
                              tee=att.tee if att else None, why=why, action="call-audit")
    with state.writes() as db:
        journal.append_pending(db, state.log_signer, state.settings.log_origin, pending)
    state.metrics.denials.labels("call-audit", exc.code).inc()
