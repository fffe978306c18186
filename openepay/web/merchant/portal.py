"""What every portal page reaches: the gateway, the portal's users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current
from openepay.db.models import MerchantSession, MerchantUser
from openepay.portal.users import MerchantUsers
from openepay.web.signin.site import Site


@dataclass
class Portal(Site):
    """The portal's users and sessions, under its own ``OPENEPAY_MERCHANT_*`` settings (each the console's
    unless set); the audit log names a merchant's own change by its sign-in, apart from console users."""

    settings_prefix = "merchant"
    accounts = MerchantUsers
    session_table = MerchantSession
    account_table = MerchantUser
    audit_prefix = "merchant:"

    users: MerchantUsers


def portal_of(request: Request) -> Portal:
    return Portal.of(request)


def actor_of(request: Request, me: Current) -> Actor:
    return portal_of(request).actor(request, me)
