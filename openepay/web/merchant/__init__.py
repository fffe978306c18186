"""The merchant portal at ``/merchant``: a merchant's own orders, credentials, integration help and tools.

Built on the console's foundations (passwords, sessions, CSRF, lockout, TOTP, language);
``install`` is the one place the app mounts it (``openepay.app``).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from openepay.web.dispatch import add_routes
from openepay.web.merchant import credentials, integration, login, orders, tools
from openepay.web.merchant.auth import PortalRefusal
from openepay.web.merchant.pages import render
from openepay.web.signin.pages import refusal_page

router = APIRouter(include_in_schema=False)
for _pages in (login.router, orders.router, credentials.router, integration.router, tools.router):
    add_routes(router, _pages)


def install(app: FastAPI) -> None:
    """The portal's routes and its refusal page (redirects are the console's handler)."""
    add_routes(app, router)
    app.add_exception_handler(PortalRefusal, refusal_page(render))
