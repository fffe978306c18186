"""Rendering console pages: the language, the operator's time zone, the CSRF token, the cookies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.web.admin.auth import CSRF_FIELD, PREFIX, SESSION_COOKIE
from openepay.web.admin.console import console_of
from openepay.web.admin.i18n import choose_language, translator
from openepay.web.templating import templates

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def duration(seconds: int | None) -> str:
    """How long, in the two largest units that matter: ``42s``, ``5m 03s``, ``2h 10m``, ``3d 4h``."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


templates.env.filters["duration"] = duration


def render(
    request: Request, name: str, context: dict[str, Any], me: Current | None = None, *, status: int = 200
) -> Response:
    console = console_of(request)
    zone = console.gateway.settings.zone
    lang = choose_language(request)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime(TIME_FORMAT) if moment else ""

    values = {
        "t": translator(lang),
        "lang": lang,
        "me": me,
        "role": Role(me.user.role) if me else None,
        "Role": Role,
        "csrf_field": CSRF_FIELD,
        "csrf": me.csrf_token if me else "",
        "local": local,
        "zone_name": console.gateway.settings.timezone,
        "prefix": PREFIX,
        "here": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(request, f"admin/{name}", values, status_code=status)
    response.headers["cache-control"] = "no-store"
    return response


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    console = console_of(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(console.sessions.lifetime.total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=console.secure_cookies,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=console_of(request).secure_cookies
    )


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if target and target.startswith(f"{PREFIX}") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX
