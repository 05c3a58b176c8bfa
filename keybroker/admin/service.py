"""Admin actions, each in one transaction with its own log entry (kind "admin")."""

from __future__ import annotations

import base64
import binascii

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import journal
from ..db.engine import as_utc, utcnow
from ..db.models import PolicyVersion
from ..errors import BadRequest, NotFound
from ..resources import store
from ..resources.paths import ResourcePath, check_name
from ..state import BrokerState
from .auth import Principal


def log_action(db: Session, state: BrokerState, who: Principal, action: str, **fields) -> None:
    journal.append(db, state.log_signer, state.settings.log_origin, tenant=who.tenant, kind="admin",
                   actor=who.actor, action=action, **fields)
    state.metrics.admin.labels(action).inc()


def decode_value(value_b64: str | None) -> bytes | None:
    if value_b64 is None:
        return None
    try:
        return base64.b64decode(value_b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("resource.value", "value_b64 is not standard base64") from None


def _check_policy(db: Session, tenant: str, name: str | None) -> None:
    if name is None:
        return
    check_name("policy", name)
    found = db.execute(select(PolicyVersion.id).where(PolicyVersion.tenant == tenant,
                                                      PolicyVersion.name == name).limit(1)).first()
    if found is None:
        raise NotFound("policy.unknown", f"no policy {name!r} in tenant {tenant!r}; push it first")


def create_key(state: BrokerState, who: Principal, path: ResourcePath, value: bytes | None, size: int,
               policy: str | None) -> int:
    plain = store.new_value(value, size)
    with state.writes() as db:
        _check_policy(db, who.tenant, policy)
        version = store.create(db, state.kek, who.tenant, path, plain, policy=policy)
        log_action(db, state, who, "key.import" if value is not None else "key.generate", resource=str(path),
             policy_id=policy, decision="allow")
    return version


def rotate_key(state: BrokerState, who: Principal, path: ResourcePath, value: bytes | None, size: int) -> int:
    plain = store.new_value(value, size)
    with state.writes() as db:
        version = store.rotate(db, state.kek, who.tenant, path, plain)
        log_action(db, state, who, "key.rotate", resource=str(path), decision="allow")
    return version


def bind(state: BrokerState, who: Principal, path: ResourcePath, policy: str | None) -> None:
    with state.writes() as db:
        _check_policy(db, who.tenant, policy)
        store.bind_policy(db, who.tenant, path, policy)
        log_action(db, state, who, "key.bind_policy", resource=str(path), policy_id=policy, decision="allow")


def delete_key(state: BrokerState, who: Principal, path: ResourcePath) -> tuple[int, ...]:
    """Delete a key and all its versions; the versions deleted."""
    with state.writes() as db:
        versions = store.remove(db, who.tenant, path)
        log_action(db, state, who, "key.delete", resource=str(path), decision="allow")
    return versions


def push_policy(state: BrokerState, who: Principal, name: str, text: str,
                references: str | None = None) -> PolicyVersion:
    check_name("policy", name)
    compiled = state.policies.engine.compile(text, source=name, references=references)
    if getattr(compiled, "name", name) != name:
        raise BadRequest("policy.name", f"document metadata.name is {compiled.name!r}, pushed as {name!r}")
    with state.writes() as db:
        latest = db.execute(select(PolicyVersion.version).where(PolicyVersion.tenant == who.tenant,
                                                                PolicyVersion.name == name)
                            .order_by(PolicyVersion.version.desc()).limit(1)).scalar_one_or_none()
        row = PolicyVersion(tenant=who.tenant, name=name, version=(latest or 0) + 1, text=text,
                            references=references, digest=compiled.digest, created_at=utcnow())
        db.add(row)
        db.flush()
        log_action(db, state, who, "policy.push", policy_id=name, policy_version=row.version,
             policy_digest=row.digest, decision="allow")
    return row


def list_policies(state: BrokerState, who: Principal) -> list[dict]:
    with state.reads() as db:
        rows = db.execute(select(PolicyVersion).where(PolicyVersion.tenant == who.tenant)
                          .order_by(PolicyVersion.name, PolicyVersion.version)).scalars().all()
    return [{"name": r.name, "version": r.version, "digest": r.digest, "created_at": as_utc(r.created_at).isoformat()}
            for r in rows]


def get_policy(state: BrokerState, who: Principal, name: str, version: int | None) -> PolicyVersion:
    """Version `version` of a policy of the caller's tenant, or its newest when `version` is None."""
    query = select(PolicyVersion).where(PolicyVersion.tenant == who.tenant, PolicyVersion.name == name)
    query = (query.where(PolicyVersion.version == version) if version is not None
             else query.order_by(PolicyVersion.version.desc()).limit(1))
    with state.reads() as db:
        row = db.execute(query).scalar_one_or_none()
    if row is None:
        which = f"{name}@{version}" if version is not None else repr(name)
        raise NotFound("policy.unknown", f"no policy {which} in tenant {who.tenant!r}")
    return row
