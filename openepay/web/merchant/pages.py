"""Rendering portal pages: the signed-in area's page (``openepay.web.signin.pages``) in the portal's layout."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.sessions import Current
from openepay.web.merchant.auth import PORTAL
from openepay.web.signin.pages import render_page

LAYOUT = "merchant/base.html"


def render(
    request: Request, name: str, context: dict[str, Any], me: Current | None = None, *, status: int = 200
) -> Response:
    """``name`` is a template under ``merchant/``, or one the console shares (``admin/login.html``)."""
    values = {"layout": LAYOUT, "signup": PORTAL.site_of(request).gateway.settings.merchant_signup}
    return render_page(request, PORTAL, name, context, me, status=status, values=values)
