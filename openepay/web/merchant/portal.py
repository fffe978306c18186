"""What every portal page reaches: the gateway, the portal's users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current, Sessions
from openepay.admin.users import LoginPolicy
from openepay.db.models import MerchantSession, MerchantUser
from openepay.gateway import Gateway
from openepay.portal.users import MerchantUsers
from openepay.web.admin.console import address_of

_STATE = "merchant_portal"


@dataclass
class Portal:
    gateway: Gateway
    users: MerchantUsers
    sessions: Sessions
    secure_cookies: bool

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Portal:
        """The console's session length and lockout, on the portal's own tables."""
        settings = gateway.settings
        lock = timedelta(minutes=settings.admin_lock_minutes)
        policy = LoginPolicy(settings.admin_failures_per_user, settings.admin_failures_per_ip, lock)
        lifetime = timedelta(hours=settings.admin_session_hours)
        return cls(
            gateway=gateway,
            users=MerchantUsers(gateway.db, gateway.box, policy),
            sessions=Sessions(gateway.db, lifetime, MerchantSession, MerchantUser),
            secure_cookies=(settings.public_url or "").startswith("https://"),
        )


def portal_of(request: Request) -> Portal:
    portal = getattr(request.app.state, _STATE, None)
    if portal is None:
        portal = Portal.for_gateway(request.app.state.gateway)
        setattr(request.app.state, _STATE, portal)
    return portal


def actor_of(request: Request, me: Current) -> Actor:
    """How the audit log names a merchant's own change: by its sign-in, apart from console users."""
    return Actor(f"merchant:{me.user.username}", address_of(request))
