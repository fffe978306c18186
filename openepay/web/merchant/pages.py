"""Rendering portal pages: the console's language and time rules, the portal's layout and cookie."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.sessions import Current
from openepay.web.admin.auth import CSRF_FIELD
from openepay.web.admin.i18n import choose_language, translator
from openepay.web.admin.pages import TIME_FORMAT
from openepay.web.merchant.auth import PREFIX, SESSION_COOKIE
from openepay.web.merchant.portal import portal_of
from openepay.web.templating import templates

LAYOUT = "merchant/base.html"


def render(
    request: Request, name: str, context: dict[str, Any], me: Current | None = None, *, status: int = 200
) -> Response:
    """``name`` is a template under ``merchant/``, or one the console shares (``admin/login.html``)."""
    settings = portal_of(request).gateway.settings
    zone = settings.zone
    lang = choose_language(request)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime(TIME_FORMAT) if moment else ""

    values = {
        "t": translator(lang),
        "lang": lang,
        "me": me,
        "layout": LAYOUT,
        "csrf_field": CSRF_FIELD,
        "csrf": me.csrf_token if me else "",
        "local": local,
        "zone_name": settings.timezone,
        "prefix": PREFIX,
        "here": request.url.path,
        "signup": settings.merchant_signup,
        **context,
    }
    template = name if "/" in name else f"merchant/{name}"
    response = templates.TemplateResponse(request, template, values, status_code=status)
    response.headers["cache-control"] = "no-store"
    return response


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    portal = portal_of(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(portal.sessions.lifetime.total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=portal.secure_cookies,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=portal_of(request).secure_cookies
    )


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a portal path only, never another site."""
    if target and (target == PREFIX or target.startswith(PREFIX + "/")) and "\\" not in target:
        return target
    return PREFIX
