"""The web application: dialect endpoints, cashier, channel pages and callbacks, health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from openepay import logs
from openepay.channels.base import HOST_STATE, PAGES_STATE
from openepay.config import Settings
from openepay.gateway import Gateway
from openepay.protocols.epay import merchant_api as epay_api
from openepay.protocols.epay import routes as epay_routes
from openepay.protocols.epay_v2 import routes as epay_v2_routes
from openepay.protocols.pay_mapi import routes as pay_mapi_routes
from openepay.protocols.payfor import routes as payfor_routes
from openepay.protocols.vmq import routes as vmq_routes
from openepay.web import admin, callbacks, demo_shop, health, merchant
from openepay.web.cashier import routes as cashier_routes
from openepay.web.dispatch import add_routes, index_paths
from openepay.web.middleware import (
    ObserveRequests,
    PublicOrigin,
    ReadablePath,
    RequestBody,
    SecurityHeaders,
)
from openepay.web.templating import templates

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app of one web process; the notification worker runs in processes of its own."""
    settings = settings or Settings()
    gateway = Gateway.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A wrong OPENEPAY_SECRET_KEY stops the start here, before any request is answered.
        try:
            await gateway.prove_secret_key()
        except BaseException:
            await gateway.aclose()
            raise
        stop = asyncio.Event()
        lockout_task = asyncio.create_task(gateway.gate.lockout.run(stop))
        merchants_task = asyncio.create_task(gateway.merchants.cache.run(stop))
        try:
            yield
        finally:
            stop.set()
            await lockout_task
            await merchants_task
            await gateway.aclose()
            logs.report_held_back()

    # FastAPI's own OpenTelemetry looks up the tracer, meter and logger providers on every request
    # (and traces every request when one is configured); the gateway has its own metrics and log.
    app = FastAPI(
        title="OpenEpay",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.gateway = gateway
    # What channel routes reach instead of importing the gateway or the web layer.
    setattr(app.state, HOST_STATE, gateway)
    setattr(app.state, PAGES_STATE, templates)
    # The last added runs first: paths are made readable before the log sees them, and the log
    # sees what the body limits answer.
    app.add_middleware(RequestBody, timeout=settings.http_body_timeout)
    app.add_middleware(ObserveRequests, metrics=gateway.metrics, access_log=settings.access_log)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ReadablePath)
    if settings.public_url:
        app.add_middleware(PublicOrigin, public_url=settings.public_url)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")

    for router in (
        epay_routes.router,
        epay_api.router,
        pay_mapi_routes.router,
        payfor_routes.router,
        epay_v2_routes.router,
        vmq_routes.router,
        cashier_routes.router,
        callbacks.router,
        health.router,
    ):
        add_routes(app, router)
    for channel in gateway.channels.all():
        channel_router = channel.router()
        if channel_router is not None:
            add_routes(app, channel_router)
    if settings.sandbox:
        add_routes(app, demo_shop.router)
    # The operator console (/admin): its routes and its refusal and redirect pages.
    admin.install(app)
    # The merchant portal (/merchant).
    merchant.install(app)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        return templates.TemplateResponse(
            request,
            "message.html",
            {"title": "OpenEpay", "message": "支付网关运行中 / The payment gateway is running.", "tone": "success"},
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        await gateway.metrics.refresh(gateway.db)
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    index_paths(app.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return Response("bad request", status_code=400, media_type="text/plain")

    return app
