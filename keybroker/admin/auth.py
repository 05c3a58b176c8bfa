"""Admin authentication: a JWT signed by a registered admin key (ES256), short-lived, single-use.

Header `kid` names the admin key; claims `aud` (the broker's admin audience),
`iat`, `exp` (at most admin_token_max_ttl_s after iat) and `jti`, which is
recorded and refused a second time. The broker stores public keys only.
Every refused admin call (no or bad token, missing role) is a denial in the
attestation log, naming the route and, once authenticated, the actor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated

import jwt
from fastapi import Depends, Request
from joserfc.jwk import ECKey
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from .. import journal
from ..db.engine import utcnow
from ..db.models import AdminKey, UsedJti
from ..deps import get_state
from ..errors import BrokerError, Forbidden, Reason, Unauthenticated
from ..state import BrokerState

ROLES = ("policy-admin", "key-admin", "auditor", "operator")


@dataclass(frozen=True, slots=True)
class Principal:
    kid: str
    name: str
    tenant: str
    roles: frozenset[str]

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.kid})"


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() != "bearer " or not auth[7:].strip():
        raise Unauthenticated("admin.no_token", "admin API needs `Authorization: Bearer <admin JWT>`")
    return auth[7:].strip()


def _claims(state: BrokerState, token: str, key: AdminKey) -> dict:
    public = ECKey.import_key(json.loads(key.public_jwk)).get_op_key("verify")
    try:
        claims = jwt.decode(token, public, algorithms=["ES256"], audience=state.settings.admin_audience,
                            options={"require": ["aud", "exp", "iat", "jti"]}, leeway=5)
    except jwt.PyJWTError as exc:
        raise Unauthenticated("admin.token_invalid", f"admin token rejected: {type(exc).__name__}") from None
    if not isinstance(claims["iat"], int) or claims["exp"] - claims["iat"] > state.settings.admin_token_max_ttl_s:
        raise Unauthenticated("admin.token_lifetime", f"admin tokens may live at most "
                                                      f"{state.settings.admin_token_max_ttl_s} s")
    return claims


def _record_jti(state: BrokerState, jti: str, exp: int) -> None:
    now = utcnow()
    try:
        with state.writes() as db:
            db.execute(delete(UsedJti).where(UsedJti.expires_at < now))
            db.add(UsedJti(jti=jti[:128], expires_at=datetime.fromtimestamp(exp, timezone.utc)))
    except IntegrityError:
        raise Unauthenticated("admin.token_replayed", "this admin token (jti) was already used") from None


def log_refusal(request: Request, exc: BrokerError, who: Principal | None = None) -> None:
    """Append the refused admin call (route template, not the raw path) as a denial."""
    state = get_state(request)
    route = getattr(request.scope.get("route"), "path", "?")
    with state.writes() as db:
        journal.append(db, state.log_signer, state.settings.log_origin, tenant=who.tenant if who else None,
                       kind="denial", decision="deny", actor=who.actor if who else None,
                       action=f"admin {request.method} {route}", why=(Reason(exc.code, exc.message),))
    state.metrics.denials.labels("admin", exc.code).inc()


def _authenticate(request: Request) -> Principal:
    state = get_state(request)
    token = _bearer(request)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise Unauthenticated("admin.token_invalid", "admin token is not a JWT") from None
    with state.reads() as db:
        key = db.get(AdminKey, kid) if isinstance(kid, str) else None
    if key is None or key.disabled:
        raise Unauthenticated("admin.unknown_key", "admin token is not signed by a registered admin key")
    claims = _claims(state, token, key)
    _record_jti(state, str(claims["jti"]), int(claims["exp"]))
    return Principal(key.kid, key.name, key.tenant, frozenset(key.roles.split()))


def authenticate(request: Request) -> Principal:
    try:
        return _authenticate(request)
    except Unauthenticated as exc:
        log_refusal(request, exc)
        raise


def require_role(*roles: str):
    def check(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.roles.intersection(roles):
            exc = Forbidden("admin.role", f"this action needs one of the roles {', '.join(roles)}")
            log_refusal(request, exc, principal)
            raise exc
        return principal
    return check


KeyAdmin = Annotated[Principal, Depends(require_role("key-admin"))]
PolicyAdmin = Annotated[Principal, Depends(require_role("policy-admin"))]
Operator = Annotated[Principal, Depends(require_role("operator"))]
KeyReader = Annotated[Principal, Depends(require_role("key-admin", "auditor"))]
PolicyReader = Annotated[Principal, Depends(require_role("policy-admin", "auditor"))]
Auditor = Annotated[Principal, Depends(require_role("auditor"))]
AdminReader = Annotated[Principal, Depends(require_role("operator", "auditor"))]
