"""Signing in (password, then TOTP when the user has it or the gateway requires it), out, and everywhere out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import totp
from openepay.admin.roles import Role
from openepay.admin.sessions import MUST_ENROLL, OWES_TOTP, SIGNED_IN, Current
from openepay.admin.users import SignIn
from openepay.db.types import storable
from openepay.secretbox import SecretBoxError
from openepay.web.admin.auth import CSRF_FIELD, PREFIX, Redirect, Refusal, needs, owes_second_factor
from openepay.web.admin.console import actor_of, address_of, console_of
from openepay.web.admin.i18n import LANG_COOKIE, LANGUAGES
from openepay.web.admin.pages import (
    clear_session_cookie,
    render,
    safe_next,
    see_other,
    set_session_cookie,
)
from openepay.web.templating import qr_svg

router = APIRouter()

# Before there is a session, the sign-in form is protected by a token in a cookie of its own
# that the form must repeat (a page elsewhere can post a form here but cannot read the cookie).
LOGIN_COOKIE = "openepay_admin_login"


def _login_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "error": error, "next": safe_next(request.query_params.get("next"))},
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, path=PREFIX, httponly=True, samesite="strict", secure=console_of(request).secure_cookies
    )
    return response


@router.get(PREFIX + "/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post(PREFIX + "/login")
async def login(request: Request) -> Response:
    form = await request.form()
    expected = request.cookies.get(LOGIN_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Refusal("csrf")
    username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not storable(username):
        return _login_page(request, error="wrong_login", status=401)
    console = console_of(request)
    outcome, user = await console.users.sign_in(username.strip(), password, address_of(request))
    if outcome is SignIn.LOCKED:
        return _login_page(request, error="locked_login", status=429)
    if user is None:
        return _login_page(request, error="wrong_login", status=401)
    if user.totp_sealed is not None:
        stage, then = OWES_TOTP, f"{PREFIX}/login/totp"
    elif console.gateway.settings.admin_require_totp:
        stage, then = MUST_ENROLL, f"{PREFIX}/totp/setup"
    else:
        stage, then = SIGNED_IN, safe_next(str(form.get("next") or ""))
    token = await console.sessions.start(user, stage, address_of(request))
    response = see_other(then)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.get(PREFIX + "/login/totp")
async def totp_form(request: Request, me: Current = Depends(owes_second_factor)) -> Response:
    if me.stage != OWES_TOTP:
        raise Redirect(PREFIX)
    return render(request, "totp.html", {"pending_csrf": me.csrf_token})


@router.post(PREFIX + "/login/totp")
async def totp_check(request: Request, me: Current = Depends(owes_second_factor)) -> Response:
    if me.stage != OWES_TOTP:
        raise Redirect(PREFIX)
    console = console_of(request)
    code = (await request.form()).get("code")
    user = await console.users.get(me.user.id)
    if user is None or not await console.users.second_factor(user, str(code or ""), address_of(request)):
        return render(request, "totp.html", {"pending_csrf": me.csrf_token, "error": "totp_wrong"}, status=401)
    response = see_other(PREFIX)
    set_session_cookie(request, response, await console.sessions.promote(me))
    return response


@router.get(PREFIX + "/totp/setup")
async def totp_setup_form(request: Request, me: Current = Depends(owes_second_factor)) -> Response:
    if me.stage == OWES_TOTP:
        raise Redirect(f"{PREFIX}/login/totp")
    return _setup_page(request, me, totp.new_secret())


def _setup_page(request: Request, me: Current, secret: str, *, error: str | None = None) -> Response:
    box = console_of(request).gateway.box
    uri = totp.provisioning_uri(secret, me.user.username)
    return render(
        request,
        "totp_setup.html",
        {
            "pending_csrf": me.csrf_token,
            "secret": secret,
            "sealed": box.seal(secret, f"totp-setup:{me.token_hash}"),
            "qr": qr_svg(uri),
            "error": error,
            "enrolling": me.stage == MUST_ENROLL,
        },
        me if me.stage == SIGNED_IN else None,
        status=401 if error else 200,
    )


@router.post(PREFIX + "/totp/setup")
async def totp_setup(request: Request, me: Current = Depends(owes_second_factor)) -> Response:
    if me.stage == OWES_TOTP:
        raise Redirect(f"{PREFIX}/login/totp")
    console = console_of(request)
    form = await request.form()
    try:
        secret = console.gateway.box.open(str(form.get("sealed") or ""), f"totp-setup:{me.token_hash}")
    except SecretBoxError:
        raise Refusal("csrf") from None
    if not await console.users.enable_totp(me.user, secret, str(form.get("code") or ""), actor_of(request, me)):
        return _setup_page(request, me, secret, error="totp_wrong")
    response = see_other(PREFIX)
    if me.stage == MUST_ENROLL:
        set_session_cookie(request, response, await console.sessions.promote(me))
    return response


@router.post(PREFIX + "/logout")
async def logout(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    await console_of(request).sessions.end(me.token_hash)
    response = see_other(f"{PREFIX}/login")
    clear_session_cookie(request, response)
    return response


@router.post(PREFIX + "/logout-everywhere")
async def logout_everywhere(request: Request, me: Current = Depends(needs(Role.VIEWER))) -> Response:
    await console_of(request).sessions.end_all(me.user.id)
    response = see_other(f"{PREFIX}/login")
    clear_session_cookie(request, response)
    return response


@router.get(PREFIX + "/lang")
async def switch_language(request: Request, to: str = "zh", next: str = PREFIX) -> Response:
    response = see_other(safe_next(next))
    if to in LANGUAGES:
        response.set_cookie(LANG_COOKIE, to, max_age=365 * 86400, path="/", samesite="lax")
    return response
