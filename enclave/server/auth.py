"""Client authentication (bearer JWTs checked against a JWKS) and a per-call audit record.

Public without a token: the attestation service (a client attests the server
before it trusts it with anything, a token included), gRPC health and
reflection. Every other method — Generate, Embed, GetTokenizer … — needs
`authorization: Bearer <JWT>` signed by a key of the configured JWKS, with the
configured audience (and issuer, when set), unexpired.

A client sends the same token with every call, so a token that verified is
remembered (bounded, `cache_size`) with its subject and `exp`: a later call
with the same token skips the signature check (about 0.5 ms of the event
loop's time per call) but is still refused once `exp` has passed. Only a
token that verified completely is remembered; any other is checked in full
every time. The JWKS is fixed for the object's lifetime, so nothing a cached
entry relied on can change under it.

The audit record is one entry per call: method, principal (the token's `sub`),
status. Never the prompt, the completion or the token.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc
import jwt

ENGINE_PREFIX = "/vllm.grpc.engine.VllmEngine/"   # calls metered into the per-call audit chain
PUBLIC_PREFIXES = ("/veil.attestation.v1.Attestation/", "/grpc.health.v1.Health/", "/grpc.reflection.")
ALGORITHMS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
logger = logging.getLogger("veil.enclave.audit")


@dataclass(frozen=True, slots=True, kw_only=True)
class BearerAuth:
    """Accept JWTs signed by a key of `jwks` for `audience` (and `issuer`, when given)."""

    jwks: dict[str, Any]
    audience: str
    issuer: str | None = None
    leeway: dt.timedelta = dt.timedelta(seconds=30)
    cache_size: int = 1024
    _keys: jwt.PyJWKSet = field(init=False, repr=False)
    _verified: dict[str, tuple[str, float]] = field(init=False, repr=False, compare=False)   # token → (sub, exp)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cache_size < 0:
            raise ValueError(f"cache_size must be 0 (no cache) or more, got {self.cache_size}")
        object.__setattr__(self, "_keys", jwt.PyJWKSet.from_dict(self.jwks))
        object.__setattr__(self, "_verified", {})
        object.__setattr__(self, "_lock", threading.Lock())

    def principal(self, token: str) -> str:
        """The token's subject; raise jwt.InvalidTokenError for anything not acceptable."""
        with self._lock:
            hit = self._verified.get(token)
        if hit is not None:
            subject, expires = hit
            if expires > time.time() - self.leeway.total_seconds():    # pyjwt's own exp rule
                return subject
            with self._lock:
                self._verified.pop(token, None)
        subject, expires = self._verify(token)               # an expired token raises ExpiredSignatureError here
        if self.cache_size:
            with self._lock:
                if len(self._verified) >= self.cache_size:
                    del self._verified[next(iter(self._verified))]    # the oldest entry
                self._verified[token] = (subject, expires)
        return subject

    def _verify(self, token: str) -> tuple[str, float]:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        candidates = [k for k in self._keys.keys if kid is None or k.key_id == kid]
        if not candidates:
            raise jwt.InvalidTokenError("signed by a key that is not in the JWKS")
        options = {"require": ["exp", "aud", "sub"] + (["iss"] if self.issuer else [])}
        last: Exception = jwt.InvalidTokenError("no key")
        for key in candidates:
            try:
                claims = jwt.decode(token, key=key, algorithms=list(ALGORITHMS), audience=self.audience,
                                    issuer=self.issuer, leeway=self.leeway, options=options)
                return str(claims["sub"]), float(claims["exp"])
            except jwt.InvalidSignatureError as exc:
                last = exc
        raise last


@dataclass(frozen=True, slots=True)
class AuditEntry:
    method: str
    principal: str | None
    outcome: str             # "allowed", "unauthenticated", or "public"


def _bearer(metadata) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            return value[7:].strip()
    return None


def _reject(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def abort_unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def abort_stream(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    kwargs = dict(request_deserializer=handler.request_deserializer,
                  response_serializer=handler.response_serializer)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kwargs)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(abort_stream, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(abort_unary, **kwargs)
    return grpc.unary_unary_rpc_method_handler(abort_unary, **kwargs)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks bearer tokens (when `auth` is set) and records every call in `audit`."""

    def __init__(self, auth: BearerAuth | None, *, record: Callable[[AuditEntry], None] | None = None,
                 calls: Any = None) -> None:
        self._auth = auth
        self.audit: list[AuditEntry] = []
        self._record = record
        self._calls = calls          # enclave.callaudit.CallAuditChain: one signed record per VllmEngine call

    def _log(self, entry: AuditEntry) -> None:
        self.audit.append(entry)
        if len(self.audit) > 10_000:
            del self.audit[:5_000]
        logger.info("call %s principal=%s outcome=%s", entry.method, entry.principal, entry.outcome)
        if self._record:
            self._record(entry)

    def _metered(self, handler, method: str, principal: str | None):
        if self._calls is None or handler is None or not method.startswith(ENGINE_PREFIX):
            return handler
        return self._calls.wrap(handler, method, principal)

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            self._log(AuditEntry(method, None, "public"))
            return handler
        if self._auth is None:
            self._log(AuditEntry(method, None, "allowed"))
            return self._metered(handler, method, None)
        token = _bearer(handler_call_details.invocation_metadata)
        if token is None:
            self._log(AuditEntry(method, None, "unauthenticated"))
            return self._metered(_reject(handler, "a bearer token is required (authorization: Bearer <JWT>)"),
                                 method, None)
        try:
            principal = self._auth.principal(token)
        except jwt.InvalidTokenError as exc:
            self._log(AuditEntry(method, None, "unauthenticated"))
            return self._metered(_reject(handler, f"bearer token rejected: {exc}"), method, None)
        self._log(AuditEntry(method, principal, "allowed"))
        return self._metered(handler, method, principal)
