"""FastAPI dependencies: the broker state, the KBS caller, request bodies read once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .kbs.release import Caller
from .state import BrokerState

SESSION_COOKIE = "kbs-session-id"


def get_state(request: Request) -> BrokerState:
    return request.app.state.broker


async def _state(request: Request) -> BrokerState:
    # async: FastAPI runs a plain-def dependency on a pool thread, a hand-off per request for nothing
    return get_state(request)


def caller_of(request: Request) -> Caller:
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    return Caller(session_id=request.cookies.get(SESSION_COOKIE), bearer=bearer or None)


async def _caller(request: Request) -> Caller:
    return caller_of(request)


StateDep = Annotated[BrokerState, Depends(_state)]
CallerDep = Annotated[Caller, Depends(_caller)]
