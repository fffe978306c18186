"""Who may see what in the portal: the session cookie, the merchant it belongs to, CSRF on every POST.

Every portal route but the sign-in steps takes ``signed_in`` as a dependency; the merchant a
page shows is always the session's (``me.user.merchant_pid``), never one from the request.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from openepay.admin.sessions import OWES_TOTP, SIGNED_IN, Current
from openepay.web.admin.auth import Redirect, Refusal, check_form
from openepay.web.merchant.portal import portal_of

PREFIX = "/merchant"
SESSION_COOKIE = "openepay_merchant"


class PortalRefusal(Refusal):
    """Refused in the portal: the same kinds as the console's, shown in the portal's layout."""


def login_redirect(request: Request) -> Redirect:
    wanted = request.url.path if request.method == "GET" else PREFIX
    return Redirect(f"{PREFIX}/login?next={quote(wanted)}")


async def _checked_form(request: Request, expected: str) -> None:
    try:
        await check_form(request, expected)
    except Refusal as refused:
        raise PortalRefusal(refused.kind, status=refused.status) from None


async def signed_in(request: Request) -> Current:
    """The dependency of every portal page: a signed-in merchant user, and a POST's CSRF token."""
    current = await portal_of(request).sessions.find(request.cookies.get(SESSION_COOKIE))
    if current is None:
        raise login_redirect(request)
    if current.stage == OWES_TOTP:
        raise Redirect(f"{PREFIX}/login/totp")
    if current.stage != SIGNED_IN:
        raise login_redirect(request)
    await _checked_form(request, current.csrf_token)
    return current


async def owes_second_factor(request: Request) -> Current:
    """The dependency of the TOTP steps: a session past its password, in any stage."""
    current = await portal_of(request).sessions.find(request.cookies.get(SESSION_COOKIE))
    if current is None:
        raise login_redirect(request)
    await _checked_form(request, current.csrf_token)
    return current
