"""A tenant's admin keys: list them, register one, remove one (never the tenant's last operator).

An admin key manages its own tenant only. A request may name the tenant it means (`tenant`); naming another
one is refused, and the refusal is a denial in the attestation log like any missing role. The operator role
is the one that registers and removes admin keys, so removing the last key that holds it would leave the
tenant with nobody able to manage its admins: that is refused.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select

from ..db.engine import as_utc
from ..db.models import AdminKey
from ..errors import Conflict, Forbidden, NotFound
from ..state import BrokerState
from .auth import Principal, log_refusal
from .keys import register
from .service import log_action

MANAGER_ROLE = "operator"


def check_tenant(request: Request, who: Principal, tenant: str | None) -> None:
    """Refuse (403, logged) a request that names a tenant other than the caller's."""
    if tenant is not None and tenant != who.tenant:
        exc = Forbidden("admin.tenant", f"your admin key manages tenant {who.tenant!r}, not {tenant!r}")
        log_refusal(request, exc, who)
        raise exc


def describe(key: AdminKey) -> dict:
    return {"kid": key.kid, "name": key.name, "tenant": key.tenant, "roles": key.roles.split(),
            "created_at": as_utc(key.created_at).isoformat(), "disabled": key.disabled}


def list_admins(state: BrokerState, who: Principal) -> list[dict]:
    with state.reads() as db:
        rows = db.execute(select(AdminKey).where(AdminKey.tenant == who.tenant)
                          .order_by(AdminKey.created_at, AdminKey.kid)).scalars().all()
    return [describe(row) for row in rows]


def add_admin(state: BrokerState, who: Principal, name: str, roles: list[str], jwk: dict) -> dict:
    with state.writes() as db:
        kid = register(db, name=name, tenant=who.tenant, roles=roles, jwk=jwk)
        log_action(db, state, who, "admin.register", resource=f"admin/{kid}", decision="allow")
        return describe(db.get(AdminKey, kid))


def _managers_left(db, tenant: str, without: str) -> int:
    """How many other enabled keys of `tenant` hold the manager role. The tenant's rows stay locked until the
    removal commits (PostgreSQL), so that two removals at once cannot both see the other's key left."""
    rows = db.execute(select(AdminKey.roles).where(AdminKey.tenant == tenant, AdminKey.kid != without,
                                                   AdminKey.disabled.is_(False)).with_for_update()).scalars().all()
    return sum(MANAGER_ROLE in roles.split() for roles in rows)


def remove_admin(state: BrokerState, who: Principal, kid: str) -> dict:
    """Delete admin key `kid` of the caller's tenant; refused (409) if no other key could manage admins."""
    with state.writes() as db:
        key = db.get(AdminKey, kid, with_for_update=True)
        if key is None or key.tenant != who.tenant:
            raise NotFound("admin.unknown", f"no admin key {kid} in tenant {who.tenant!r}")
        if MANAGER_ROLE in key.roles.split() and not _managers_left(db, who.tenant, kid):
            raise Conflict("admin.last_operator",
                           f"{key.name} ({kid}) is the last admin key of tenant {who.tenant!r} with the "
                           f"{MANAGER_ROLE} role; add another {MANAGER_ROLE} before removing it")
        removed = describe(key)
        db.delete(key)
        log_action(db, state, who, "admin.remove", resource=f"admin/{kid}", decision="allow")
    return removed
