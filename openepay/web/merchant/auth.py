"""Who may see what in the portal: the session cookie, the merchant it belongs to, CSRF on every POST.

Every portal route but the sign-in steps takes ``signed_in`` as a dependency; the merchant a
page shows is always the session's (``me.user.merchant_pid``), never one from the request.
"""

from __future__ import annotations

from starlette.requests import Request

from openepay.admin.sessions import Current
from openepay.web.merchant.portal import portal_of
from openepay.web.signin.area import Area
from openepay.web.signin.guard import Refusal


class PortalRefusal(Refusal):
    """Refused in the portal: the same kinds as the console's, shown in the portal's layout."""


PORTAL = Area.named("merchant", refusal=PortalRefusal, totp_setup_label="merchant-totp-setup", site_of=portal_of)
PREFIX = PORTAL.prefix


async def signed_in(request: Request) -> Current:
    """The dependency of every portal page: a signed-in merchant user, and a POST's CSRF token."""
    current = await PORTAL.signed_in(request)
    await PORTAL.check_form(request, current.csrf_token)
    return current
