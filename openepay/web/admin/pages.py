"""Rendering console pages: the signed-in area's page (``openepay.web.signin.pages``) with the user's role."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.web.admin.auth import CONSOLE
from openepay.web.signin.pages import render_page
from openepay.web.templating import templates


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
    """``name`` is a template under ``admin/``."""
    values = {"role": Role(me.user.role) if me else None, "Role": Role}
    return render_page(request, CONSOLE, name, context, me, status=status, values=values)
