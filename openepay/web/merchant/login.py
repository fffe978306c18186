"""Signing in to the portal (password, then TOTP when the user set it up), out, everywhere out: the shared
steps (``openepay.web.signin.routes``) on the portal's area; and signing up, which is the portal's own."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin.audit import Actor
from openepay.admin.passwords import WeakPassword
from openepay.admin.users import UserError
from openepay.db.types import storable
from openepay.web.dispatch import add_routes
from openepay.web.merchant.auth import PORTAL, PREFIX, PortalRefusal, signed_in
from openepay.web.merchant.pages import render
from openepay.web.merchant.portal import actor_of, portal_of
from openepay.web.signin.pages import see_other
from openepay.web.signin.routes import SignInFlow
from openepay.web.signin.site import address_of

FLOW = SignInFlow(area=PORTAL, render=render, signed_in=signed_in, actor_of=actor_of, notices=frozenset({"signed_up"}))
router = APIRouter()
add_routes(router, FLOW.router())

# Where every sign-up that passed its checks lands, whether or not its address was free: the answer
# must not tell anyone which addresses already have a sign-in.
SIGNED_UP = f"{PREFIX}/login?notice=signed_up"


def _signup_page(
    request: Request, *, error: str | None = None, typed: dict[str, str] | None = None, status: int | None = None
) -> Response:
    if not portal_of(request).gateway.settings.merchant_signup:
        raise PortalRefusal("not_found", status=404)
    context = {"error": error, "typed": typed or {}}
    return FLOW.with_login_token(request, "signup.html", context, status or (400 if error else 200))


@router.get(PREFIX + "/signup")
async def signup_form(request: Request) -> Response:
    return _signup_page(request)


@router.post(PREFIX + "/signup")
async def signup(request: Request) -> Response:
    """A new merchant, disabled until an operator enables it, and the sign-in that applied for it."""
    portal = portal_of(request)
    if not portal.gateway.settings.merchant_signup:
        raise PortalRefusal("not_found", status=404)
    form = await FLOW.login_form(request)
    if await portal.users.signup_locked(address_of(request)):
        return _signup_page(request, error="locked_login", status=429)
    await portal.users.note_signup(address_of(request))
    typed = {name: str(form.get(name) or "").strip() for name in ("shop_name", "username")}
    password = str(form.get("password") or "")
    if not all(storable(value) for value in (*typed.values(), password)):
        return _signup_page(request, error="bad_input_help", typed={})
    actor = Actor(f"signup:{typed['username']}"[:64], address_of(request))
    try:
        await portal.users.sign_up(portal.gateway.merchants, typed["shop_name"], typed["username"], password, actor)
    except (UserError, WeakPassword) as refused:
        return _signup_page(request, error=str(refused), typed=typed)
    return see_other(SIGNED_UP)
