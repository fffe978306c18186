"""Who may see and do what: the session cookie, the role each route needs, and CSRF on every POST.

Every console route takes ``needs(role)`` (or ``owes_second_factor`` on the sign-in steps) as
a dependency; ``tests/web/admin/test_roles.py`` reads these from the app's routes and proves each
one refuses the roles below it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request

from openepay.admin.roles import Role
from openepay.admin.sessions import MUST_ENROLL, OWES_TOTP, SIGNED_IN, Current
from openepay.db.types import storable
from openepay.web.admin.console import console_of

PREFIX = "/admin"
SESSION_COOKIE = "openepay_admin"
CSRF_FIELD = "csrf"
# The one form field that may carry a file (a picture of a receive code); every other field is text.
UPLOAD_FIELD = "image"


class Refusal(Exception):
    """Answered with the console's 403 (or 404, 400) page: ``kind`` is "role", "csrf", "not_found" or "input"."""

    def __init__(self, kind: str, needed: Role | None = None, status: int = 403) -> None:
        super().__init__(kind)
        self.kind = kind
        self.needed = needed
        self.status = status


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def login_redirect(request: Request) -> Redirect:
    wanted = request.url.path if request.method == "GET" else PREFIX
    return Redirect(f"{PREFIX}/login?next={quote(wanted)}")


async def check_form(request: Request, expected: str) -> None:
    """A POST must carry the CSRF token ``expected``, and only text both databases can store
    (besides a file in ``UPLOAD_FIELD``, which its page reads itself)."""
    if request.method != "POST":
        return
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Refusal("csrf")
    if not all(
        (name == UPLOAD_FIELD and isinstance(value, UploadFile)) or (isinstance(value, str) and storable(value))
        for name, value in form.multi_items()
    ):
        raise Refusal("input", status=400)


async def _session(request: Request) -> Current | None:
    return await console_of(request).sessions.find(request.cookies.get(SESSION_COOKIE))


def needs(role: Role) -> Callable[[Request], Awaitable[Current]]:
    """The dependency of a route for signed-in users with at least ``role``."""

    async def signed_in(request: Request) -> Current:
        current = await _session(request)
        if current is None:
            raise login_redirect(request)
        if current.stage == OWES_TOTP:
            raise Redirect(f"{PREFIX}/login/totp")
        must_enroll = console_of(request).gateway.settings.admin_require_totp and current.user.totp_sealed is None
        if current.stage == MUST_ENROLL or must_enroll:
            raise Redirect(f"{PREFIX}/totp/setup")
        if current.stage != SIGNED_IN:
            raise login_redirect(request)
        # The role is checked before the form is read: a lower role learns nothing from its token.
        if not Role(current.user.role).may(role):
            raise Refusal("role", role)
        await check_form(request, current.csrf_token)
        return current

    signed_in.role = role  # type: ignore[attr-defined]
    return signed_in


async def owes_second_factor(request: Request) -> Current:
    """The dependency of the TOTP steps: a session past its password, in any stage."""
    current = await _session(request)
    if current is None:
        raise login_redirect(request)
    await check_form(request, current.csrf_token)
    return current
