"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request

from openepay.db.readiness import unready_reason
from openepay.web.deps import gateway_of

router = APIRouter()


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up and serving requests; ``pid`` says which of ``serve --workers`` answered."""
    return JSONResponse({"status": "ok", "pid": os.getpid()})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers within a second, takes a write, and has disk space left."""
    gateway = gateway_of(request)
    reason = await unready_reason(gateway.db, min_free_bytes=gateway.settings.ready_min_free_mb * 1024 * 1024)
    if reason is not None:
        return JSONResponse({"status": "unavailable", "database": reason}, status_code=503)
    return JSONResponse({"status": "ready", "database": "ok"})
