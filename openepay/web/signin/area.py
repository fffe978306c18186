"""What tells the console and the portal apart where signing in works the same: the path everything is
under, the cookies, the site (tables and rules) and the refusal each answers with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request

from openepay.admin.sessions import MUST_ENROLL, OWES_TOTP, SIGNED_IN, Current
from openepay.web.signin.guard import Redirect, Refusal, check_form
from openepay.web.signin.site import Site


@dataclass(frozen=True)
class Area:
    prefix: str
    session_cookie: str
    # Before there is a session, the sign-in form is protected by a token in a cookie of its own
    # that the form must repeat (a page elsewhere can post a form here but cannot read the cookie).
    login_cookie: str
    # The folder of the area's templates; a name with a folder in it (``admin/login.html``) is taken as it is.
    templates: str
    refusal: type[Refusal]
    # What the TOTP setup form's sealed secret is bound to, with the session's token hash.
    totp_setup_label: str
    site_of: Callable[[Request], Site]

    @classmethod
    def named(
        cls, name: str, *, refusal: type[Refusal], totp_setup_label: str, site_of: Callable[[Request], Site]
    ) -> Area:
        """The area at ``/<name>``: its cookies ``openepay_<name>`` and ``openepay_<name>_login``, its
        templates in ``<name>/``."""
        return cls(f"/{name}", f"openepay_{name}", f"openepay_{name}_login", name, refusal, totp_setup_label, site_of)

    def safe_next(self, target: str | None) -> str:
        """Where to go after signing in: the area's own page or one below it, never another site."""
        if target and (target == self.prefix or target.startswith(self.prefix + "/")) and "\\" not in target:
            return target
        return self.prefix

    def login_redirect(self, request: Request) -> Redirect:
        wanted = request.url.path if request.method == "GET" else self.prefix
        return Redirect(f"{self.prefix}/login?next={quote(wanted)}")

    async def session(self, request: Request) -> Current | None:
        return await self.site_of(request).sessions.find(request.cookies.get(self.session_cookie))

    async def check_form(self, request: Request, expected: str) -> None:
        await check_form(request, expected, self.refusal)

    async def signed_in(self, request: Request, *, must_enroll: bool = False) -> Current:
        """The request's session, past every step of signing in: else a redirect to the step it owes
        (the password, the TOTP code, or setting TOTP up when it still ``must_enroll``). Its form is not read."""
        current = await self.session(request)
        if current is None:
            raise self.login_redirect(request)
        if current.stage == OWES_TOTP:
            raise Redirect(f"{self.prefix}/login/totp")
        if current.stage == MUST_ENROLL or (must_enroll and current.user.totp_sealed is None):
            raise Redirect(f"{self.prefix}/totp/setup")
        if current.stage != SIGNED_IN:
            raise self.login_redirect(request)
        return current

    async def owes_second_factor(self, request: Request) -> Current:
        """The dependency of the TOTP steps: a session past its password, in any stage."""
        current = await self.session(request)
        if current is None:
            raise self.login_redirect(request)
        await self.check_form(request, current.csrf_token)
        return current
