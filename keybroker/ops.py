"""Operations endpoints: health, readiness, Prometheus metrics, JWKS at its well-known path."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from .deps import StateDep
from .errors import Unavailable
from .metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: StateDep) -> dict:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        raise Unavailable("db.unreachable", f"database unreachable: {type(exc).__name__}") from None
    return {"status": "ready", "emulated_anchors": state.anchors.has_emulated}


@router.get("/metrics")
def metrics(state: StateDep) -> Response:
    return Response(exposition(state.metrics), media_type=CONTENT_TYPE_LATEST)


@router.get("/.well-known/jwks.json")
def well_known_jwks(state: StateDep) -> dict:
    return state.keys.jwks
