"""`create_app(settings)`: the broker's FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .denials import TooManyDenials
from .errors import BadRequest, BrokerError, PolicyDenied, problem
from .settings import BrokerSettings
from .state import BrokerState

log = logging.getLogger("veil.broker")
KBS_PREFIX = "/kbs/v0/"


class Problem(BaseModel):
    """An error body (errors.problem): RFC 7807 `type` and `detail`, the stable `code`, denial `reasons`."""

    type: str
    detail: str
    code: str
    reasons: list[dict] | None = None


def _documented(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses` for the error statuses a router can answer (errors.py's table)."""
    return {s: {"model": Problem, "description": DESCRIPTIONS[s]} for s in statuses}


DESCRIPTIONS = {400: "malformed request", 401: "unauthenticated, or attestation or policy denied",
                429: "too many denied KBS requests from this address (Retry-After says when to come back)",
                403: "forbidden (admin role or tenant; policy denial where configured)", 404: "no such thing",
                409: "conflict", 422: "invalid policy document or key material",
                503: "KEK provider or database unavailable"}


class _Timing:
    """Pure ASGI middleware: latency histogram by route template (no per-request allocation of bodies)."""

    def __init__(self, app, state_getter) -> None:
        self.app = app
        self.state_getter = state_getter

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", "unmatched")
            self.state_getter().metrics.latency.labels(label).observe(time.perf_counter() - start)


class _DenialGate:
    """Pure ASGI middleware: a KBS request from an address that has spent its denial budget gets 429 with
    Retry-After before routing, so before any work; nothing is logged (keybroker/denials.py)."""

    def __init__(self, app, state_getter) -> None:
        self.app = app
        self.state_getter = state_getter

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(KBS_PREFIX) and scope.get("client"):
            state = self.state_getter()
            try:
                await state.blocking(state.denials.check, scope["client"][0], local=state.local.denials)
            except TooManyDenials as exc:
                state.metrics.rate_limited.inc()
                status, body = problem(exc)
                _log_refused(exc.code, status, scope["method"], scope["path"], scope["client"][0])
                refusal = JSONResponse(body, status_code=status, headers={"Retry-After": str(exc.retry_after)})
                return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)


def _handlers(app: FastAPI, settings: BrokerSettings) -> None:
    @app.exception_handler(BrokerError)
    async def broker_error(request: Request, exc: BrokerError) -> JSONResponse:
        status = settings.policy_deny_status if isinstance(exc, PolicyDenied) else None
        status, body = problem(exc, status)
        _refused(request, exc.code, status)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        status, body = problem(BadRequest("request.invalid", f"{where}: {first.get('msg')}"))
        _refused(request, "request.invalid", status)
        return JSONResponse(body, status_code=status)


def _log_refused(code: str, status: int, method: str, path: str, client: str | None) -> None:
    log.info("request refused", extra={"code": code, "status": status, "method": method, "path": path,
                                       "client": client})


def _refused(request: Request, code: str, status: int) -> None:
    """Log an error answer (its code, not its message), and spend one unit of the client address's denial
    budget if it is a KBS client error (keybroker/denials.py)."""
    client = request.client.host if request.client else None
    _log_refused(code, status, request.method, request.url.path, client)
    if 400 <= status < 500 and request.url.path.startswith(KBS_PREFIX) and client is not None:
        request.app.state.broker.denials.spend(client)


def create_app(settings: BrokerSettings, state: BrokerState | None = None) -> FastAPI:
    from .admin.routes import router as admin_router
    from .kbs.routes import release_router, router as kbs_router
    from .ops import router as ops_router

    broker = state or BrokerState.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Blocking work (verification, database) runs in threads. More threads than a few per core only
        # queue on the GIL and lengthen every write transaction in flight: keep the pool small.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield
        broker.close()                            # queued writes commit before the process exits

    app = FastAPI(title="Veil key broker", version="0.1.0", lifespan=lifespan,
                  description="KBS attestation protocol, key release and attestation log.")
    app.state.broker = broker
    _handlers(app, settings)
    for router in (release_router, kbs_router):
        app.include_router(router, responses=_documented(400, 401, 403, 404, 429, 503))
    app.include_router(ops_router, responses=_documented(503))
    app.include_router(admin_router, responses=_documented(400, 401, 403, 404, 409, 422, 503))
    app.add_middleware(_DenialGate, state_getter=lambda: broker)
    app.add_middleware(_Timing, state_getter=lambda: broker)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings come from VEIL_BROKER_SETTINGS (no secrets in it)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(BrokerSettings.from_env())
