"""Merchants in the console: the list, one merchant, creation and key rotation (the key shown once),
disabling and enabling, merchant portal sign-ins (the password shown once), and resuming paused
notifications."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import merchant_actions
from openepay.admin.merchant_settings import delays_text, fingerprint
from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.admin.users import UserError
from openepay.core.merchants import MerchantCredentials, MerchantNotFound
from openepay.core.states import MerchantStatus
from openepay.db.types import storable
from openepay.portal.users import MerchantUsers
from openepay.web.admin.auth import PREFIX, Refusal, needs
from openepay.web.admin.console import actor_of, console_of
from openepay.web.admin.pages import render
from openepay.web.signin.pages import see_other

router = APIRouter()
NOTICES = {"resumed", "settings_saved"}
MAX_NAME = 100


@router.get(PREFIX + "/merchants")
async def merchant_list(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    views = await merchant_actions.merchants(console_of(request).gateway)
    return render(request, "merchants.html", {"views": views}, me)


@router.get(PREFIX + "/merchants/new")
async def merchant_form(request: Request, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return render(request, "merchant_new.html", {"error": None, "name": ""}, me)


def _key_page(request: Request, me: Current, credentials: MerchantCredentials, notice: str) -> Response:
    """The one page that shows a merchant's key: the answer to the POST that made it, never stored or cached."""
    return render(request, "merchant_key.html", {"credentials": credentials, "notice": notice}, me)


@router.post(PREFIX + "/merchants")
async def merchant_create(request: Request, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    form = await request.form()
    name = str(form.get("name") or "").strip()
    if not name or len(name) > MAX_NAME or not storable(name):
        return render(request, "merchant_new.html", {"error": "name_invalid", "name": name[:MAX_NAME]}, me, status=400)
    refund = form.get("allow_refund") == "on"
    credentials = await merchant_actions.create(console_of(request).gateway, name, refund, actor_of(request, me))
    return _key_page(request, me, credentials, "merchant_created")


async def _view(request: Request, pid: int) -> merchant_actions.MerchantView:
    view = await merchant_actions.merchant(console_of(request).gateway, pid)
    if view is None:
        raise Refusal("not_found", status=404)
    return view


def _portal_users(request: Request) -> MerchantUsers:
    console = console_of(request)
    return MerchantUsers(console.gateway.db, console.gateway.box, console.users.policy)


async def _merchant_page(
    request: Request, me: Current, pid: int, *, error: str | None = None, status: int = 200
) -> Response:
    view = await _view(request, pid)
    notice = request.query_params.get("notice")
    ids = view.merchant.channel_accounts
    context = {
        "v": view,
        "notice": notice if notice in NOTICES else None,
        "accounts": await console_of(request).gateway.accounts.names_of(ids) if ids is not None else None,
        "fingerprint": fingerprint(view.merchant.rsa_public_key) if view.merchant.rsa_public_key else None,
        "delays": delays_text(view.merchant.notify_retry_delays),
        "logins": await merchant_actions.portal_logins(_portal_users(request), pid),
        "error": error,
    }
    return render(request, "merchant.html", context, me, status=status)


@router.get(PREFIX + "/merchants/{pid}")
async def merchant_detail(request: Request, pid: int, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    return await _merchant_page(request, me, pid)


@router.post(PREFIX + "/merchants/{pid}/logins")
async def merchant_add_login(request: Request, pid: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    """A merchant portal sign-in; the answer is the one page that shows its one-time password."""
    await _view(request, pid)
    username = str((await request.form()).get("username") or "").strip()
    try:
        password = await merchant_actions.add_portal_login(_portal_users(request), pid, username, actor_of(request, me))
    except UserError as refused:
        return await _merchant_page(request, me, pid, error=str(refused), status=400)
    context = {"pid": pid, "username": username, "password": password}
    return render(request, "merchant_login.html", context, me)


async def _set_status(request: Request, pid: int, me: Current, status: MerchantStatus) -> Response:
    try:
        await merchant_actions.set_status(console_of(request).gateway, pid, status, actor_of(request, me))
    except MerchantNotFound:
        raise Refusal("not_found", status=404) from None
    return see_other(f"{PREFIX}/merchants/{pid}")


@router.post(PREFIX + "/merchants/{pid}/disable")
async def merchant_disable(request: Request, pid: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return await _set_status(request, pid, me, MerchantStatus.DISABLED)


@router.post(PREFIX + "/merchants/{pid}/enable")
async def merchant_enable(request: Request, pid: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    return await _set_status(request, pid, me, MerchantStatus.ACTIVE)


@router.post(PREFIX + "/merchants/{pid}/rotate-key")
async def merchant_rotate_key(request: Request, pid: int, me: Current = Depends(needs(Role.ADMINISTRATOR))) -> Response:
    try:
        credentials = await merchant_actions.rotate_key(console_of(request).gateway, pid, actor_of(request, me))
    except MerchantNotFound:
        raise Refusal("not_found", status=404) from None
    return _key_page(request, me, credentials, "key_rotated")


async def _set_login_disabled(request: Request, pid: int, user_id: int, me: Current, disabled: bool) -> Response:
    if await _portal_users(request).set_disabled(pid, user_id, disabled, actor_of(request, me)) is None:
        raise Refusal("not_found", status=404)
    return see_other(f"{PREFIX}/merchants/{pid}")


@router.post(PREFIX + "/merchants/{pid}/logins/{user_id}/disable")
async def merchant_login_disable(
    request: Request, pid: int, user_id: int, me: Current = Depends(needs(Role.ADMINISTRATOR))
) -> Response:
    """A portal sign-in stops working (a person who left the shop); its sessions end."""
    return await _set_login_disabled(request, pid, user_id, me, True)


@router.post(PREFIX + "/merchants/{pid}/logins/{user_id}/enable")
async def merchant_login_enable(
    request: Request, pid: int, user_id: int, me: Current = Depends(needs(Role.ADMINISTRATOR))
) -> Response:
    return await _set_login_disabled(request, pid, user_id, me, False)


@router.post(PREFIX + "/merchants/{pid}/resume")
async def merchant_resume(request: Request, pid: int, me: Current = Depends(needs(Role.OPERATOR))) -> Response:
    await _view(request, pid)
    await merchant_actions.resume_notifications(console_of(request).gateway, pid, actor_of(request, me))
    return see_other(f"{PREFIX}/merchants/{pid}?notice=resumed")
