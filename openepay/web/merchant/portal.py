"""What every portal page reaches: the gateway, the portal's users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current
from openepay.admin.signin_settings import SignInSettings
from openepay.db.models import MerchantSession, MerchantUser
from openepay.gateway import Gateway
from openepay.portal.users import MerchantUsers
from openepay.web.signin.site import Site, address_of, site_of

_STATE = "merchant_portal"


@dataclass
class Portal(Site):
    users: MerchantUsers

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Portal:
        """The portal's own session length and lockout (``OPENEPAY_MERCHANT_*``), each the console's unless set."""
        return cls.on_gateway(
            gateway, SignInSettings.of(gateway.settings, "merchant"), MerchantUsers, MerchantSession, MerchantUser
        )


def portal_of(request: Request) -> Portal:
    return site_of(request, _STATE, Portal.for_gateway)


def actor_of(request: Request, me: Current) -> Actor:
    """How the audit log names a merchant's own change: by its sign-in, apart from console users."""
    return Actor(f"merchant:{me.user.username}", address_of(request))
