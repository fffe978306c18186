"""The object every page of a signed-in area reaches: the gateway, the area's accounts and sessions,
built once per app from the area's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current, Sessions
from openepay.admin.signin_settings import SignInSettings
from openepay.admin.users import Accounts
from openepay.gateway import Gateway


@dataclass
class Site:
    """An area's site; each area names below what its own is made of."""

    # The settings' prefix (``admin`` reads ``admin_session_hours``...); the site is kept as app.state.<prefix>_site.
    settings_prefix: ClassVar[str]
    # The accounts' class, and the tables of the sessions and of the accounts.
    accounts: ClassVar[type[Accounts]]
    session_table: ClassVar[type[Any]]
    account_table: ClassVar[type[Any]]
    # How the audit log names a user of this area: this before the username.
    audit_prefix: ClassVar[str] = ""

    gateway: Gateway
    users: Accounts
    sessions: Sessions
    # Cookies only over HTTPS when the gateway is reached over HTTPS (OPENEPAY_PUBLIC_URL says so).
    secure_cookies: bool

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Self:
        signin = SignInSettings.of(gateway.settings, cls.settings_prefix)
        return cls(
            gateway=gateway,
            users=cls.accounts(gateway.db, gateway.box, signin.policy),
            sessions=Sessions(gateway.db, signin.lifetime, cls.session_table, cls.account_table),
            secure_cookies=(gateway.settings.public_url or "").startswith("https://"),
        )

    @classmethod
    def of(cls, request: Request) -> Self:
        """The app's one site of this kind, built from its gateway at the first request that needs it."""
        state = f"{cls.settings_prefix}_site"
        site = getattr(request.app.state, state, None)
        if site is None:
            site = cls.for_gateway(request.app.state.gateway)
            setattr(request.app.state, state, site)
        return site

    def actor(self, request: Request, me: Current) -> Actor:
        """Who the audit log says made a change: the signed-in user, from the request's address."""
        return Actor(f"{self.audit_prefix}{me.user.username}", address_of(request))


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
