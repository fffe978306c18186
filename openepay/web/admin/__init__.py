"""The operator console at ``/admin``: server-rendered pages, role-checked, CSRF-protected.

``install`` is the one place the app mounts it (``openepay.app``).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openepay.web.admin import (
    audit_log,
    channel_forms,
    channels,
    dashboard,
    login,
    merchant_edit,
    merchant_tools,
    merchants,
    orders,
    qrpool,
    review,
    users,
)
from openepay.web.admin.auth import Redirect, Refusal
from openepay.web.admin.pages import render, see_other

router = APIRouter(include_in_schema=False)
for _pages in (
    login.router,
    dashboard.router,
    orders.router,
    merchants.router,
    channel_forms.router,
    merchant_edit.router,
    merchant_tools.router,
    channels.router,
    review.router,
    qrpool.router,
    users.router,
    audit_log.router,
):
    router.include_router(_pages)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    title = {404: "not_found", 400: "bad_input"}.get(exc.status, "forbidden")
    context = {"kind": exc.kind, "needed": str(exc.needed) if exc.needed else "", "title": title}
    return render(request, "refused.html", context, status=exc.status)


async def _redirected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Redirect)
    return see_other(exc.location)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_exception_handler(Refusal, _refused)
    app.add_exception_handler(Redirect, _redirected)
