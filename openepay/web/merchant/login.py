"""Signing in to the portal (password, then TOTP when the user set it up), out, everywhere out, and signing up."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import totp
from openepay.admin.audit import Actor
from openepay.admin.passwords import WeakPassword
from openepay.admin.sessions import OWES_TOTP, SIGNED_IN, Current
from openepay.admin.users import SignIn, UserError
from openepay.db.types import storable
from openepay.secretbox import SecretBoxError
from openepay.web.admin.auth import CSRF_FIELD, Redirect
from openepay.web.admin.console import address_of
from openepay.web.admin.i18n import LANG_COOKIE, LANGUAGES
from openepay.web.admin.pages import see_other
from openepay.web.merchant.auth import PREFIX, PortalRefusal, owes_second_factor, signed_in
from openepay.web.merchant.pages import clear_session_cookie, render, safe_next, set_session_cookie
from openepay.web.merchant.portal import actor_of, portal_of
from openepay.web.templating import qr_svg

router = APIRouter()

# As in the console: before there is a session, forms carry a token from a cookie of their own.
LOGIN_COOKIE = "openepay_merchant_login"


def _with_login_token(request: Request, name: str, context: dict[str, object], status: int) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, name, {"login_csrf": token, **context}, status=status)
    response.set_cookie(
        LOGIN_COOKIE, token, path=PREFIX, httponly=True, samesite="strict", secure=portal_of(request).secure_cookies
    )
    return response


def _login_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    context = {"error": error, "next": safe_next(request.query_params.get("next"))}
    return _with_login_token(request, "admin/login.html", context, status)


async def _login_form(request: Request) -> dict[str, object]:
    """The form of a sign-in or sign-up POST, once its token matches the cookie's."""
    form = await request.form()
    expected = request.cookies.get(LOGIN_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PortalRefusal("csrf")
    return dict(form)


@router.get(PREFIX + "/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post(PREFIX + "/login")
async def login(request: Request) -> Response:
    form = await _login_form(request)
    username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not storable(username):
        return _login_page(request, error="wrong_login", status=401)
    portal = portal_of(request)
    outcome, user = await portal.users.sign_in(username.strip(), password, address_of(request))
    if outcome is SignIn.LOCKED:
        return _login_page(request, error="locked_login", status=429)
    if user is None:
        return _login_page(request, error="wrong_login", status=401)
    if user.totp_sealed is not None:
        stage, then = OWES_TOTP, f"{PREFIX}/login/totp"
    else:
        stage, then = SIGNED_IN, safe_next(str(form.get("next") or ""))
    token = await portal.sessions.start(user, stage, address_of(request))
    response = see_other(then)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.get(PREFIX + "/login/totp")
async def totp_form(request: Request, me: Current = Depends(owes_second_factor)) -> Response:
    if me.stage != OWES_TOTP:
        raise Redirect(PREFIX)
    return render(request, "admin/totp.html", {"pending_csrf": me.csrf_token})


@router.post(PREFIX + "/login/totp")
async def totp_check(request: Request, me: Current = Depends(owes_second_factor)) -> Response:
    if me.stage != OWES_TOTP:
        raise Redirect(PREFIX)
    portal = portal_of(request)
    code = (await request.form()).get("code")
    user = await portal.users.get(me.user.id)
    if user is None or not await portal.users.second_factor(user, str(code or ""), address_of(request)):
        context = {"pending_csrf": me.csrf_token, "error": "totp_wrong"}
        return render(request, "admin/totp.html", context, status=401)
    response = see_other(PREFIX)
    set_session_cookie(request, response, await portal.sessions.promote(me))
    return response


def _setup_page(request: Request, me: Current, secret: str, *, error: str | None = None) -> Response:
    sealed = portal_of(request).gateway.box.seal(secret, f"merchant-totp-setup:{me.token_hash}")
    context = {
        "pending_csrf": me.csrf_token,
        "secret": secret,
        "sealed": sealed,
        "qr": qr_svg(totp.provisioning_uri(secret, me.user.username)),
        "error": error,
        "enrolling": False,
    }
    return render(request, "admin/totp_setup.html", context, me, status=401 if error else 200)


@router.get(PREFIX + "/totp/setup")
async def totp_setup_form(request: Request, me: Current = Depends(signed_in)) -> Response:
    return _setup_page(request, me, totp.new_secret())


@router.post(PREFIX + "/totp/setup")
async def totp_setup(request: Request, me: Current = Depends(signed_in)) -> Response:
    portal = portal_of(request)
    form = await request.form()
    try:
        secret = portal.gateway.box.open(str(form.get("sealed") or ""), f"merchant-totp-setup:{me.token_hash}")
    except SecretBoxError:
        raise PortalRefusal("csrf") from None
    if not await portal.users.enable_totp(me.user, secret, str(form.get("code") or ""), actor_of(request, me)):
        return _setup_page(request, me, secret, error="totp_wrong")
    return see_other(PREFIX)


@router.post(PREFIX + "/logout")
async def logout(request: Request, me: Current = Depends(signed_in)) -> Response:
    await portal_of(request).sessions.end(me.token_hash)
    response = see_other(f"{PREFIX}/login")
    clear_session_cookie(request, response)
    return response


@router.post(PREFIX + "/logout-everywhere")
async def logout_everywhere(request: Request, me: Current = Depends(signed_in)) -> Response:
    await portal_of(request).sessions.end_all(me.user.id)
    response = see_other(f"{PREFIX}/login")
    clear_session_cookie(request, response)
    return response


@router.get(PREFIX + "/lang")
async def switch_language(request: Request, to: str = "zh", next: str = PREFIX) -> Response:
    response = see_other(safe_next(next))
    if to in LANGUAGES:
        response.set_cookie(LANG_COOKIE, to, max_age=365 * 86400, path="/", samesite="lax")
    return response


def _signup_page(
    request: Request, *, error: str | None = None, typed: dict[str, str] | None = None, status: int | None = None
) -> Response:
    if not portal_of(request).gateway.settings.merchant_signup:
        raise PortalRefusal("not_found", status=404)
    context = {"error": error, "typed": typed or {}}
    return _with_login_token(request, "signup.html", context, status or (400 if error else 200))


@router.get(PREFIX + "/signup")
async def signup_form(request: Request) -> Response:
    return _signup_page(request)


@router.post(PREFIX + "/signup")
async def signup(request: Request) -> Response:
    """A new merchant, disabled until an operator enables it, and the sign-in that applied for it."""
    portal = portal_of(request)
    if not portal.gateway.settings.merchant_signup:
        raise PortalRefusal("not_found", status=404)
    form = await _login_form(request)
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
    return see_other(f"{PREFIX}/login?next={PREFIX}")
