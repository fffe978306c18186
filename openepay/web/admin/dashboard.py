"""The console's first page: takings, notifications, and the personal-code phones that went silent."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import dashboard, qrpool_actions
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.web.admin.auth import PREFIX, needs
from openepay.web.admin.console import console_of
from openepay.web.admin.pages import render

router = APIRouter()


@router.get(PREFIX)
async def overview(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    gateway = console_of(request).gateway
    figures = await dashboard.load(gateway.db, gateway.settings.zone)
    # Shown only where personal codes are in use: an account whose phones are all silent takes no orders.
    phones = [view for view in await qrpool_actions.phones(gateway) if view.device.enabled]
    offline = [view for view in phones if not view.online]
    return render(request, "dashboard.html", {"d": figures, "has_phones": bool(phones), "offline": offline}, me)
