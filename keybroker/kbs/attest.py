"""POST /kbs/v0/attest: verify evidence and its binding, consume the nonce, log, issue a token.

Verification runs outside any transaction; the nonce is consumed, the
attestation stored and the log entry appended in one transaction afterwards
(a group commit, keybroker/db/batch.py).
Every outcome, allow or deny, is in the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn

import orjson
from sqlalchemy import bindparam, select

from attestation.binding import check_report_data
from attestation.claims import Claims
from attestation.composite import CompositeEvidence, verify_composite
from attestation.errors import ParseError, VerificationError
from attestation.jcs import canonical_json
from attestation.verify import verify

from .. import journal
from ..db.batch import Batch
from ..db.engine import utcnow
from ..db.ids import time_ordered_id
from ..db.models import Attestation, KbsSession
from ..db.prepared import Prepared, Row
from ..errors import AttestationDenied, Reason, Unauthenticated
from ..state import BrokerState
from ..tokens import ear
from .evidence import EvidenceRejected, check_tee_pubkey, decode
from .messages import KbsAttestation
from .recent import AttestedClaims
from .sessions import consume, unusable


_SESSION = Prepared(select(*KbsSession.__table__.columns).where(KbsSession.id == bindparam("sid")))


async def _deny(state: BrokerState, sid: str | None, tee: str | None, raw: bytes, why: Reason,
                claims: Claims | None = None, exc_type: type = AttestationDenied) -> NoReturn:
    """Burn the nonce (if any), log the denial, raise."""
    now = utcnow()
    pending = journal.prepare(kind="denial", decision="deny", time=now, session_id=sid, tee=tee, evidence=raw,
                              claims=claims.model_dump(mode="json") if claims else None, why=(why,),
                              action="attest", verification_time=now)

    def write(batch: Batch) -> None:
        if sid is not None:
            consume(batch.conn, sid, now)         # a no-op for an unknown or already consumed session
        batch.append_log(pending)

    await state.group.write(write)
    state.metrics.attestations.labels("deny").inc()
    state.metrics.denials.labels("attest", why.code).inc()
    raise exc_type(why.code, why.message, (why,))


def _session(state: BrokerState, sid: str) -> Row | None:
    with state.read() as db:
        return _SESSION.first(db, {"sid": sid})


def _verify(state: BrokerState, row: Row, msg: KbsAttestation) -> Claims:
    """Claims of evidence that verified and binds this session's nonce and the TEE key; else EvidenceRejected."""
    rd = msg.runtime_data
    check_tee_pubkey(rd.tee_pubkey)
    submitted = decode(row.tee, msg.tee_evidence)
    opts = state.verify_options(utcnow())
    try:
        if submitted.additional_evidence:        # CPU + GPUs: the CPU report data covers the GPU evidence
            composite = CompositeEvidence(submitted.evidence, submitted.additional_evidence, row.hash_alg)
            result = verify_composite(composite, opts, nonce=rd.nonce, tee_pubkey=rd.tee_pubkey)
        else:
            result = verify(submitted.evidence, opts)
    except ParseError as exc:
        raise EvidenceRejected(Reason(exc.code, exc.message)) from None
    if not result.verified:
        f = result.errors[0]
        raise EvidenceRejected(Reason(f.code, f.message, f.expected, f.actual))
    if not submitted.additional_evidence:        # verify_composite has checked the binding already
        try:
            check_report_data(result.claims.report_data, rd.nonce, rd.tee_pubkey, hash_alg=row.hash_alg)
        except VerificationError as exc:
            raise EvidenceRejected(Reason(exc.check, exc.detail, exc.expected, exc.actual)) from None
    return result.claims


async def attest(state: BrokerState, sid: str | None, msg: KbsAttestation, raw: bytes) -> str:
    if sid is None:
        await _deny(state, None, None, raw, Reason("kbs.no_session", "no kbs-session-id cookie: call /kbs/v0/auth "
                                                   "first"), exc_type=Unauthenticated)
    row = await state.blocking(_session, state, sid, local=state.local.db)
    why = unusable(row, msg.runtime_data.nonce, utcnow())
    if why is not None:
        await _deny(state, sid, row.tee if row else None, raw, why)
    try:
        claims = await state.blocking(_verify, state, row, msg, local=state.local.collateral)
    except EvidenceRejected as exc:
        await _deny(state, sid, row.tee, raw, exc.reason)
    token, attested, write = _record(state, row, msg, raw, claims)
    if not await state.group.write(write):
        await _deny(state, sid, row.tee, raw, Reason("kbs.nonce_consumed", "this session's nonce was already used "
                                                     "(replay)", expected="unused nonce", actual="consumed"), claims)
    state.recent_claims.put(*attested)
    state.metrics.attestations.labels("allow").inc()
    return token


def _record(state: BrokerState, row: Row, msg: KbsAttestation, raw: bytes,
            claims: Claims) -> tuple[str, tuple[str, AttestedClaims], Callable[[Batch], bool]]:
    """The attestation token, the attestation's id and claims (for `state.recent_claims` once written), and the
    write that consumes the nonce and records the attestation (False: the nonce was consumed meanwhile, a
    replay)."""
    now = utcnow()
    att_id = time_ordered_id()
    runtime = {"nonce": msg.runtime_data.nonce, "tee-pubkey": msg.runtime_data.tee_pubkey}
    ttl = timedelta(seconds=state.settings.token_ttl_s)
    claims_doc = claims.model_dump(mode="json")
    claims_jcs = canonical_json(claims_doc)
    token = ear.issue(state.keys, issuer=state.settings.issuer, jti=att_id, claims=claims,
                      runtime_data=runtime, now=now, ttl=ttl, document=claims_doc)
    pending = journal.prepare(kind="attestation", decision="allow", time=now, session_id=row.id, tee=row.tee,
                              evidence=raw, claims=claims_doc, claims_jcs=claims_jcs, action="attest",
                              verification_time=claims.verified_at)
    attestation = dict(id=att_id, session_id=row.id, tee=row.tee, claims_json=claims_jcs.decode(),
                       tee_pubkey_json=orjson.dumps(msg.runtime_data.tee_pubkey).decode(),
                       evidence_digest=hashlib.sha256(raw).hexdigest(), created_at=now, expires_at=now + ttl)

    def write(batch: Batch) -> bool:
        if not consume(batch.conn, row.id, now, attestation_id=att_id):
            return False
        batch.insert(Attestation.__table__, **attestation, log_seq=batch.append_log(pending))
        return True

    return token, (att_id, AttestedClaims(claims, claims_doc, claims_jcs)), write
