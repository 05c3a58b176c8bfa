"""GET /kbs/v0/resource/<repo>/<type>/<tag>: policy decision, JWE to the TEE key, release logged.

The attestation is found by the session cookie or a Bearer token (the broker's
own EAR token). The resource's bound policy (newest version) is evaluated over
the attestation's claims at the server's clock. A release is committed together
with its log entry before the response leaves; every denial is logged too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from attestation.claims import Claims

from .. import journal
from ..db.batch import Batch
from ..db.engine import as_utc, utcnow
from ..db.prepared import Prepared, Row
from ..db.models import Attestation, KbsSession, PolicyVersion, Release, Resource, ResourceVersion
from ..errors import BadRequest, BrokerError, NotFound, PolicyDenied, Reason, Unauthenticated
from ..policy import failed_reasons
from ..resources.kek import Sealed, record_aad, unseal
from ..resources.paths import ResourcePath
from ..state import BrokerState
from ..tokens import ear
from . import jwe


@dataclass(frozen=True, slots=True)
class Caller:
    session_id: str | None
    bearer: str | None


@dataclass(frozen=True, slots=True)
class Denial:
    error: BrokerError
    session_id: str | None = None
    tee: str | None = None
    tenant: str | None = None
    claims: dict | None = None
    policy: Row | None = None             # the policy version row that decided


class Denied(Exception):
    def __init__(self, denial: Denial) -> None:
        self.denial = denial


_ATTESTATION = tuple(Attestation.__table__.columns)
_VERSION = (ResourceVersion.version, ResourceVersion.ciphertext, ResourceVersion.wrapped_key, ResourceVersion.kek_id)
# Compiled once, run on the driver's cursor (keybroker/db/prepared.py).
_BY_TOKEN = Prepared(select(*_ATTESTATION).where(Attestation.id == bindparam("jti")))
_BY_SESSION = Prepared(select(*_ATTESTATION).join(KbsSession, KbsSession.attestation_id == Attestation.id)
                       .where(KbsSession.id == bindparam("sid")))
_RESOURCE = Prepared(select(*Resource.__table__.columns).where(
    Resource.repo == bindparam("repo"), Resource.type == bindparam("type"), Resource.tag == bindparam("tag")))
_NEWEST_POLICY = Prepared(select(*PolicyVersion.__table__.columns)
                          .where(PolicyVersion.tenant == bindparam("tenant"), PolicyVersion.name == bindparam("name"))
                          .order_by(PolicyVersion.version.desc()).limit(1))
_NEWEST_VERSION = Prepared(select(*_VERSION).where(ResourceVersion.resource_id == bindparam("resource_id"))
                           .order_by(ResourceVersion.version.desc()).limit(1))


def attested(db: Connection | Session, state: BrokerState, caller: Caller) -> Row:
    """The caller's unexpired attestation (session cookie or Bearer token); Unauthenticated otherwise."""
    if caller.bearer is not None:
        payload = ear.verify(state.keys, caller.bearer, issuer=state.settings.issuer)
        row = _BY_TOKEN.first(db, {"jti": payload["jti"]})
    elif caller.session_id is not None:
        row = _BY_SESSION.first(db, {"sid": caller.session_id})
    else:
        raise Unauthenticated("kbs.no_session", "no kbs-session-id cookie or Bearer token: attest first")
    if row is None:
        raise Unauthenticated("kbs.not_attested", "this session or token has no successful attestation")
    if as_utc(row.expires_at) <= utcnow():
        raise Unauthenticated("kbs.attestation_expired", "the attestation has expired; attest again")
    return row


def _resource(db: Connection, path: ResourcePath) -> Row:
    row = _RESOURCE.first(db, {"repo": path.repo, "type": path.type, "tag": path.tag})
    if row is None:
        raise NotFound("resource.unknown", f"no resource {path}")
    return row


def _policy(db: Connection, res: Row) -> Row:
    if res.policy_name is None:
        raise PolicyDenied("policy.unbound", "no release policy is bound to this resource (default deny)")
    row = _NEWEST_POLICY.first(db, {"tenant": res.tenant, "name": res.policy_name})
    if row is None:
        raise PolicyDenied("policy.missing", f"the bound policy {res.policy_name!r} has no version (default deny)")
    return row


def _newest_version(db: Connection, res: Row) -> Row:
    row = _NEWEST_VERSION.first(db, {"resource_id": res.id})
    if row is None:
        raise NotFound("resource.no_version", f"resource {res.repo}/{res.type}/{res.tag} has no version")
    return row


class Allowed(NamedTuple):
    attestation: Row
    resource: Row
    policy: Row
    sealed: Row                   # the newest sealed version
    claims: dict                  # the attestation's claims document, as its log entries record it
    claims_jcs: bytes | None      # its RFC 8785 bytes, where this process made them at the attestation


def decide(state: BrokerState, caller: Caller, path: ResourcePath) -> Allowed:
    """What an allowed request is released from; Denied otherwise. One read transaction: what the policy is
    evaluated over and what is released are one snapshot."""
    ctx: dict = {}
    try:
        with state.read() as db:
            att = attested(db, state, caller)
            recent = state.recent_claims.get(att.id)
            ctx.update(session_id=att.session_id, tee=att.tee,
                       claims=recent.document if recent else orjson.loads(att.claims_json))
            res = _resource(db, path)
            ctx["tenant"] = res.tenant
            pol = _policy(db, res)
            ctx["policy"] = pol
            sealed = _newest_version(db, res)
        compiled = state.policies.get(pol.digest, pol.text, f"{pol.name}@{pol.version}", pol.references)
        claims = recent.claims if recent else Claims.model_validate(ctx["claims"])
        decision = state.policies.engine.evaluate(compiled, claims, at=utcnow(), resource=str(path))
    except BrokerError as exc:
        raise Denied(Denial(exc, **ctx)) from None
    if not decision.allowed:
        why = failed_reasons(decision) or (Reason("policy.deny", "the policy denied this request"),)
        raise Denied(Denial(PolicyDenied(why[0].code, why[0].message, why), **ctx))
    return Allowed(att, res, pol, sealed, ctx["claims"], recent.jcs if recent else None)


def _denial_write(path: ResourcePath, d: Denial, action: str) -> Callable[[Batch], int]:
    e = d.error
    why = e.reasons or (Reason(e.code, e.message),)
    pending = journal.prepare(tenant=d.tenant, kind="denial", decision="deny", session_id=d.session_id, tee=d.tee,
                              claims=d.claims, why=why, resource=str(path), action=action,
                              policy_id=d.policy.name if d.policy else None,
                              policy_version=d.policy.version if d.policy else None,
                              policy_digest=d.policy.digest if d.policy else None)
    return lambda batch: batch.append_log(pending)


def log_denial(state: BrokerState, path: ResourcePath, d: Denial, action: str = "release") -> None:
    """Log a denial, blocking this thread until it commits."""
    state.group.run(_denial_write(path, d, action))
    state.metrics.denials.labels(action, d.error.code).inc()


def resource_path(repo: str, type_: str, tag: str) -> ResourcePath:
    try:
        return ResourcePath.of(repo, type_, tag)
    except BadRequest as exc:
        raise NotFound(exc.code, exc.message) from None      # Trustee: InvalidRequestPath is 404


async def release(state: BrokerState, caller: Caller, repo: str, type_: str, tag: str) -> dict[str, str]:
    path = resource_path(repo, type_, tag)
    try:
        att, res, pol, sealed, claims, claims_jcs = await state.blocking(decide, state, caller, path,
                                                                         local=state.local.db)
    except Denied as exc:
        await state.group.write(_denial_write(path, exc.denial, "release"))
        state.metrics.denials.labels("release", exc.denial.error.code).inc()
        raise exc.denial.error from None
    version = sealed.version
    value = await state.blocking(unseal, state.kek, Sealed(sealed.ciphertext, sealed.wrapped_key, sealed.kek_id),
                                 record_aad(str(path), version), local=state.local.kek)
    response = jwe.wrap(orjson.loads(att.tee_pubkey_json), value)
    del value
    now = utcnow()
    pending = journal.prepare(tenant=res.tenant, kind="release", decision="allow", time=now,
                              session_id=att.session_id, tee=att.tee, claims=claims, claims_jcs=claims_jcs,
                              resource=str(path), action="release", policy_id=pol.name,
                              policy_version=pol.version, policy_digest=pol.digest)
    row = dict(attestation_id=att.id, tenant=res.tenant, resource=str(path), version=version,
               policy=f"{pol.name}@{pol.version}", policy_digest=pol.digest, created_at=now)
    await state.group.write(lambda batch: batch.insert(Release.__table__, **row, log_seq=batch.append_log(pending)))
    state.metrics.releases.inc()
    return response
