"""The operator console at ``/admin``: server-rendered pages, role-checked, CSRF-protected.

``install`` is the one place the app mounts it (``openepay.app``).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

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
from openepay.web.admin.pages import render
from openepay.web.dispatch import add_routes
from openepay.web.signin.guard import Redirect, Refusal
from openepay.web.signin.pages import redirected, refusal_page

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
    add_routes(router, _pages)


def install(app: FastAPI) -> None:
    add_routes(app, router)
    app.add_exception_handler(Refusal, refusal_page(render))
    app.add_exception_handler(Redirect, redirected)
