"""What every portal page reaches: the gateway, the portal's users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current
from openepay.config import Settings
from openepay.db.models import MerchantSession, MerchantUser
from openepay.gateway import Gateway
from openepay.portal.users import MerchantUsers
from openepay.web.admin.console import console_rules
from openepay.web.signin.site import Rules, Site, address_of, site_of

_STATE = "merchant_portal"


def portal_rules(settings: Settings) -> Rules:
    """The portal's own session length and lockout (``OPENEPAY_MERCHANT_*``), each the console's unless set."""
    console = console_rules(settings)
    return Rules(
        settings.merchant_session_hours or console.session_hours,
        settings.merchant_failures_per_user or console.failures_per_user,
        settings.merchant_failures_per_ip or console.failures_per_ip,
        settings.merchant_lock_minutes or console.lock_minutes,
    )


@dataclass
class Portal(Site):
    users: MerchantUsers

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Portal:
        return cls.on_gateway(gateway, portal_rules(gateway.settings), MerchantUsers, MerchantSession, MerchantUser)


def portal_of(request: Request) -> Portal:
    return site_of(request, _STATE, Portal.for_gateway)


def actor_of(request: Request, me: Current) -> Actor:
    """How the audit log names a merchant's own change: by its sign-in, apart from console users."""
    return Actor(f"merchant:{me.user.username}", address_of(request))
