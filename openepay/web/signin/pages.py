"""Rendering an area's pages (language, local times, the CSRF token, no caching) and its session cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openepay.admin.sessions import Current
from openepay.web.admin.i18n import choose_language, translator
from openepay.web.signin.area import Area
from openepay.web.signin.guard import CSRF_FIELD, Redirect, Refusal
from openepay.web.templating import templates

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def render_page(
    request: Request,
    area: Area,
    name: str,
    context: dict[str, Any],
    me: Current | None = None,
    *,
    status: int = 200,
    values: dict[str, Any] | None = None,
) -> Response:
    """``name`` is a template of the area's folder, or one with its folder (``admin/login.html``);
    ``values`` are what the area's own layout needs besides the common ones."""
    settings = area.site_of(request).gateway.settings
    zone = settings.zone
    lang = choose_language(request)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime(TIME_FORMAT) if moment else ""

    everything = {
        "t": translator(lang),
        "lang": lang,
        "me": me,
        "csrf_field": CSRF_FIELD,
        "csrf": me.csrf_token if me else "",
        "local": local,
        "zone_name": settings.timezone,
        "prefix": area.prefix,
        "here": request.url.path,
        **(values or {}),
        **context,
    }
    template = name if "/" in name else f"{area.templates}/{name}"
    response = templates.TemplateResponse(request, template, everything, status_code=status)
    response.headers["cache-control"] = "no-store"
    return response


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def set_session_cookie(request: Request, area: Area, response: Response, token: str) -> None:
    site = area.site_of(request)
    response.set_cookie(
        area.session_cookie,
        token,
        max_age=int(site.sessions.lifetime.total_seconds()),
        path=area.prefix,
        httponly=True,
        samesite="lax",
        secure=site.secure_cookies,
    )


def clear_session_cookie(request: Request, area: Area, response: Response) -> None:
    response.delete_cookie(
        area.session_cookie,
        path=area.prefix,
        httponly=True,
        samesite="lax",
        secure=area.site_of(request).secure_cookies,
    )


def refusal_page(render: Callable[..., Response]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The exception handler that answers an area's ``Refusal`` with its 403 (404, 400) page, in its ``render``."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        title = {404: "not_found", 400: "bad_input"}.get(exc.status, "forbidden")
        context = {"kind": exc.kind, "needed": str(exc.needed) if exc.needed else "", "title": title}
        return render(request, "admin/refused.html", context, status=exc.status)

    return refused


async def redirected(request: Request, exc: Exception) -> Response:
    """The exception handler of ``Redirect``, for every area."""
    assert isinstance(exc, Redirect)
    return see_other(exc.location)
