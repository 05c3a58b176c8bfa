"""KBS routes: thin; the protocol lives in sessions, attest and release."""

from __future__ import annotations

import json
from datetime import timedelta

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import request_response

from ..db.engine import utcnow
from ..db.models import KbsSession
from ..deps import SESSION_COOKIE, CallerDep, StateDep, caller_of
from ..errors import BadRequest
from ..state import BrokerState
from . import calls, certs
from .attest import attest
from .messages import CertificateRequest, Challenge, KbsAttestation, KbsRequest, TokenResponse
from .release import release
from .sessions import new_session



class LeanRoute(APIRoute):
    """A route documented like any FastAPI route (OpenAPI from its signature and `response_model`) whose
    requests skip FastAPI's per-request layer (dependency solving, response-model serialisation): the endpoint
    takes the request and the path parameters and returns its Response itself. For the three requests of every
    release, where that layer cost more than the rest of the framework."""

    def __init__(self, path: str, endpoint, **kwargs) -> None:
        super().__init__(path, endpoint, **kwargs)

        async def handle(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        self.app = request_response(handle)       # Starlette's: exception handlers still apply


router = APIRouter(prefix="/kbs/v0", tags=["kbs"])      # the denial budget is checked before routing (app.py)
release_router = APIRouter(prefix="/kbs/v0", tags=["kbs"], route_class=LeanRoute)
# Evidence with eight GPUs (SPDM reports and certificate chains, base64 in JSON) is under 200 KiB; every
# denial keeps the body in the log, so the cap bounds what one denied request can add to it.
MAX_BODY = 512 << 10


def _json(body: dict) -> Response:
    """A JSON answer serialised here: the three release routes skip FastAPI's response-model pass (their
    `response_model` still documents them)."""
    return Response(orjson.dumps(body), media_type="application/json")


def _answer(body: dict, sid: str, ttl_s: int) -> Response:
    """The JSON answer with the session cookie."""
    response = _json(body)
    response.set_cookie(SESSION_COOKIE, sid, max_age=ttl_s, httponly=True, samesite="strict")
    return response


async def _read(request: Request, limit: int) -> bytes:
    """The body, refused (400) as soon as it passes `limit` bytes: never buffered whole first."""
    too_large = BadRequest("kbs.body_too_large", f"request body is larger than {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(request: Request, model):
    raw = await _read(request, MAX_BODY)
    try:
        return raw, model.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(p) for p in detail["loc"]) + ": " + detail["msg"] if detail else "not JSON"
        raise BadRequest("kbs.malformed", f"malformed {model.__name__}: {where}") from None


# The three requests of every release read the broker state and the caller from the request themselves (LeanRoute).
@release_router.post("/auth", response_model=Challenge, response_model_by_alias=True)
async def auth(request: Request) -> Response:
    """Start an RCAR session: a fresh single-use nonce and a session cookie."""
    state: BrokerState = request.app.state.broker
    _, req = await _body(request, KbsRequest)
    ttl = timedelta(seconds=state.settings.session_ttl_s)
    row, challenge = new_session(req, utcnow(), ttl)
    await state.group.write(lambda batch: batch.insert(KbsSession.__table__, **row))
    return _answer(challenge.model_dump(mode="json", by_alias=True), row["id"], state.settings.session_ttl_s)


@release_router.post("/attest", response_model=TokenResponse)
async def attest_route(request: Request) -> Response:
    """Submit evidence bound to the session nonce and the TEE key; returns the attestation token."""
    state: BrokerState = request.app.state.broker
    caller = caller_of(request)
    raw, msg = await _body(request, KbsAttestation)
    token = await attest(state, caller.session_id, msg, raw)
    return _answer({"token": token}, caller.session_id, state.settings.session_ttl_s)


@router.post("/call-audit", status_code=201)
async def call_audit(request: Request, state: StateDep, caller: CallerDep) -> dict:
    """Append a batch of the attested enclave's signed call-audit chain to the attestation log."""
    raw = await _read(request, calls.MAX_BATCH)
    return await run_in_threadpool(calls.ingest, state, caller, raw)


@router.post("/certificate")
async def certificate(request: Request, state: StateDep, caller: CallerDep) -> dict[str, str]:
    """A TLS certificate for the attested TEE key under the broker's enclave CA, if the named resource's
    release policy allows this attestation (docs/broker.md, "Broker-issued enclave certificates")."""
    _, body = await _body(request, CertificateRequest)
    return await run_in_threadpool(certs.issue, state, caller, body.model_dump(exclude_none=True))


@router.get("/enclave-ca", response_class=PlainTextResponse)
def enclave_ca(state: StateDep) -> str:
    """The broker's enclave CA certificate (PEM): the TLS root for clients that trust broker-issued certificates."""
    return certs.ca_pem(state)


@release_router.get("/resource/{repo}/{type_}/{tag}", response_model=dict[str, str])
async def resource(request: Request, repo: str, type_: str, tag: str) -> Response:
    """The resource as a JWE wrapped to the attested TEE key, if its policy allows."""
    return _json(await release(request.app.state.broker, caller_of(request), repo, type_, tag))


@router.get("/jwks")
def jwks(state: StateDep) -> dict:
    """Public keys of the attestation-token signer."""
    return state.keys.jwks
