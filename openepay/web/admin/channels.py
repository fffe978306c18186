"""Channel accounts in the console: their settings (secrets only named, never shown), routing rules,
health, and enabling or disabling one (administrators); adding and editing are in ``channel_forms``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import audit
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.core.channel_accounts import AccountError
from openepay.db.types import utcnow
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render
from openepay.web.signin.pages import see_other

router = APIRouter()
NOTICES = {"account_added", "account_saved"}


@router.get(PREFIX + "/channels")
async def channel_accounts(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    records = await console_of(request).gateway.accounts.records()
    notice = request.query_params.get("notice")
    context = {"records": records, "now": utcnow(), "notice": notice if notice in NOTICES else None}
    return render(request, "channels.html", context, me)


async def _set_enabled(request: Request, me: Current, name: str, enabled: bool) -> Response:
    gateway = console_of(request).gateway
    try:
        before = await gateway.accounts.record(name)
        await gateway.accounts.set_enabled(name, enabled)
    except AccountError:
        raise Refusal("not_found", status=404) from None
    await audit.record(
        gateway.db,
        actor_of(request, me),
        f"channel.{'enable' if enabled else 'disable'}",
        f"account:{name}",
        before={"enabled": before.enabled},
        after={"enabled": enabled},
    )
    return see_other(f"{PREFIX}/channels")


@router.post(PREFIX + "/channels/{name}/disable")
async def channel_disable(request: Request, name: str, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return await _set_enabled(request, me, name, False)


@router.post(PREFIX + "/channels/{name}/enable")
async def channel_enable(request: Request, name: str, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return await _set_enabled(request, me, name, True)
