"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request

from openepay.db.readiness import unready_reason
from openepay.web.deps import gateway_of

router = APIRouter()


@router.route("/healthz", methods=["GET"])
async def healthz(request: Request) -> JSONResponse:
    """The process is up and serving requests; ``pid`` says which of ``serve --workers`` answered.

    A plain Starlette route, as the load balancer probes it many times a second: FastAPI's
    parameter resolution and answer validation would be most of its cost, for nothing to read or
    check. It answers ``HEAD`` as well, which some probes send.
    """
    return JSONResponse({"status": "ok", "pid": os.getpid()})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database answers within a second, takes a write, and has disk space left."""
    gateway = gateway_of(request)
    reason = await unready_reason(gateway.db, min_free_bytes=gateway.settings.ready_min_free_mb * 1024 * 1024)
    if reason is not None:
        return JSONResponse({"status": "unavailable", "database": reason}, status_code=503)
    return JSONResponse({"status": "ready", "database": "ok"})
