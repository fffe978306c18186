"""The sign-in steps of an area: password, then TOTP when the user has it (or must set it up),
out, everywhere out, and the language switch. ``SignInFlow.router`` makes one area's routes."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from openepay.admin import totp
from openepay.admin.audit import Actor
from openepay.admin.sessions import MUST_ENROLL, OWES_TOTP, SIGNED_IN, Current
from openepay.admin.users import SignIn
from openepay.config import Settings
from openepay.db.types import storable
from openepay.secretbox import SecretBoxError
from openepay.web.admin.i18n import LANG_COOKIE, LANGUAGES
from openepay.web.signin.area import Area
from openepay.web.signin.guard import CSRF_FIELD, Redirect, same_token
from openepay.web.signin.pages import clear_session_cookie, see_other, set_session_cookie
from openepay.web.signin.site import address_of
from openepay.web.templating import qr_svg


def totp_optional(settings: Settings) -> bool:
    """No one must set up TOTP (anyone may)."""
    return False


@dataclass(frozen=True)
class SignInFlow:
    area: Area
    # The area's ``render(request, name, context, me=None, *, status=200)``.
    render: Callable[..., Response]
    # The dependency of a signed-in page (signing out needs one).
    signed_in: Callable[[Request], Awaitable[Current]]
    actor_of: Callable[[Request, Current], Actor]
    # Whether every user must set up TOTP before anything else.
    requires_totp: Callable[[Settings], bool] = totp_optional
    # What the sign-in page may say above its form when sent there with ``?notice=<key>`` (a catalogue key).
    notices: frozenset[str] = frozenset()

    def with_login_token(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        """A page whose form works before there is a session: it repeats the token of the login cookie."""
        token = request.cookies.get(self.area.login_cookie) or secrets.token_urlsafe(32)
        response = self.render(request, name, {"login_csrf": token, **context}, status=status)
        response.set_cookie(
            self.area.login_cookie,
            token,
            path=self.area.prefix,
            httponly=True,
            samesite="strict",
            secure=self.area.site_of(request).secure_cookies,
        )
        return response

    async def login_form(self, request: Request) -> dict[str, Any]:
        """The form of a sign-in (or sign-up) POST, once its token matches the login cookie's."""
        form = await request.form()
        if not same_token(form.get(CSRF_FIELD), request.cookies.get(self.area.login_cookie, "")):
            raise self.area.refusal("csrf")
        return dict(form)

    def login_page(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        notice = request.query_params.get("notice")
        context = {
            "error": error,
            "notice": notice if notice in self.notices else None,
            "next": self.area.safe_next(request.query_params.get("next")),
        }
        return self.with_login_token(request, "admin/login.html", context, status)

    def _setup_page(self, request: Request, me: Current, secret: str, *, error: str | None = None) -> Response:
        sealed = self.area.site_of(request).gateway.box.seal(secret, f"{self.area.totp_setup_label}:{me.token_hash}")
        context = {
            "pending_csrf": me.csrf_token,
            "secret": secret,
            "sealed": sealed,
            "qr": qr_svg(totp.provisioning_uri(secret, me.user.username)),
            "error": error,
            "enrolling": me.stage == MUST_ENROLL,
        }
        shown_as = me if me.stage == SIGNED_IN else None
        return self.render(request, "admin/totp_setup.html", context, shown_as, status=401 if error else 200)

    def router(self) -> APIRouter:
        area, render = self.area, self.render
        prefix = area.prefix
        router = APIRouter()

        @router.get(prefix + "/login")
        async def login_form(request: Request) -> Response:
            return self.login_page(request)

        @router.post(prefix + "/login")
        async def login(request: Request) -> Response:
            form = await self.login_form(request)
            username, password = form.get("username"), form.get("password")
            if not isinstance(username, str) or not isinstance(password, str) or not storable(username):
                return self.login_page(request, error="wrong_login", status=401)
            site = area.site_of(request)
            outcome, user = await site.users.sign_in(username.strip(), password, address_of(request))
            if outcome is SignIn.LOCKED:
                return self.login_page(request, error="locked_login", status=429)
            if user is None:
                return self.login_page(request, error="wrong_login", status=401)
            if user.totp_sealed is not None:
                stage, then = OWES_TOTP, f"{prefix}/login/totp"
            elif self.requires_totp(site.gateway.settings):
                stage, then = MUST_ENROLL, f"{prefix}/totp/setup"
            else:
                stage, then = SIGNED_IN, area.safe_next(str(form.get("next") or ""))
            token = await site.sessions.start(user, stage, address_of(request))
            response = see_other(then)
            set_session_cookie(request, area, response, token)
            response.delete_cookie(area.login_cookie, path=prefix)
            return response

        @router.get(prefix + "/login/totp")
        async def totp_form(request: Request, me: Current = Depends(area.owes_second_factor)) -> Response:
            if me.stage != OWES_TOTP:
                raise Redirect(prefix)
            return render(request, "admin/totp.html", {"pending_csrf": me.csrf_token})

        @router.post(prefix + "/login/totp")
        async def totp_check(request: Request, me: Current = Depends(area.owes_second_factor)) -> Response:
            if me.stage != OWES_TOTP:
                raise Redirect(prefix)
            site = area.site_of(request)
            code = (await request.form()).get("code")
            user = await site.users.get(me.user.id)
            if user is None or not await site.users.second_factor(user, str(code or ""), address_of(request)):
                context = {"pending_csrf": me.csrf_token, "error": "totp_wrong"}
                return render(request, "admin/totp.html", context, status=401)
            response = see_other(prefix)
            set_session_cookie(request, area, response, await site.sessions.promote(me))
            return response

        @router.get(prefix + "/totp/setup")
        async def totp_setup_form(request: Request, me: Current = Depends(area.owes_second_factor)) -> Response:
            if me.stage == OWES_TOTP:
                raise Redirect(f"{prefix}/login/totp")
            return self._setup_page(request, me, totp.new_secret())

        @router.post(prefix + "/totp/setup")
        async def totp_setup(request: Request, me: Current = Depends(area.owes_second_factor)) -> Response:
            if me.stage == OWES_TOTP:
                raise Redirect(f"{prefix}/login/totp")
            site = area.site_of(request)
            form = await request.form()
            try:
                secret = site.gateway.box.open(
                    str(form.get("sealed") or ""), f"{area.totp_setup_label}:{me.token_hash}"
                )
            except SecretBoxError:
                raise area.refusal("csrf") from None
            if not await site.users.enable_totp(
                me.user, secret, str(form.get("code") or ""), self.actor_of(request, me)
            ):
                return self._setup_page(request, me, secret, error="totp_wrong")
            response = see_other(prefix)
            if me.stage == MUST_ENROLL:
                set_session_cookie(request, area, response, await site.sessions.promote(me))
            return response

        @router.post(prefix + "/logout")
        async def logout(request: Request, me: Current = Depends(self.signed_in)) -> Response:
            await area.site_of(request).sessions.end(me.token_hash)
            response = see_other(f"{prefix}/login")
            clear_session_cookie(request, area, response)
            return response

        @router.post(prefix + "/logout-everywhere")
        async def logout_everywhere(request: Request, me: Current = Depends(self.signed_in)) -> Response:
            await area.site_of(request).sessions.end_all(me.user.id)
            response = see_other(f"{prefix}/login")
            clear_session_cookie(request, area, response)
            return response

        @router.get(prefix + "/lang")
        async def switch_language(request: Request, to: str = "zh", next: str = prefix) -> Response:
            response = see_other(area.safe_next(next))
            if to in LANGUAGES:
                response.set_cookie(LANG_COOKIE, to, max_age=365 * 86400, path="/", samesite="lax")
            return response

        return router
