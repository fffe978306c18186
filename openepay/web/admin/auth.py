"""Who may see and do what: the session cookie, the role each route needs, and CSRF on every POST.

Every console route takes ``needs(role)`` (or ``owes_second_factor`` on the sign-in steps) as
a dependency; ``tests/web/admin/test_roles.py`` reads these from the app's routes and proves each
one refuses the roles below it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from openepay.admin.roles import Role
from openepay.admin.sessions import Current
from openepay.web.admin.console import console_of
from openepay.web.signin.area import Area
from openepay.web.signin.guard import Refusal

CONSOLE = Area.named("admin", refusal=Refusal, totp_setup_label="totp-setup", site_of=console_of)
PREFIX = CONSOLE.prefix
owes_second_factor = CONSOLE.owes_second_factor


def needs(role: Role) -> Callable[[Request], Awaitable[Current]]:
    """The dependency of a route for signed-in users with at least ``role``."""

    async def signed_in(request: Request) -> Current:
        must_enroll = console_of(request).gateway.settings.admin_require_totp
        current = await CONSOLE.signed_in(request, must_enroll=must_enroll)
        # The role is checked before the form is read: a lower role learns nothing from its token.
        if not Role(current.user.role).may(role):
            raise Refusal("role", role)
        await CONSOLE.check_form(request, current.csrf_token)
        return current

    signed_in.role = role  # type: ignore[attr-defined]
    return signed_in
