"""The object every page of a signed-in area reaches: the gateway, the area's accounts and sessions,
built once per app from the area's rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from starlette.requests import Request

from openepay.admin.sessions import Sessions
from openepay.admin.signin_settings import SignInSettings
from openepay.admin.users import Accounts
from openepay.gateway import Gateway


@dataclass
class Site:
    gateway: Gateway
    users: Accounts
    sessions: Sessions
    # Cookies only over HTTPS when the gateway is reached over HTTPS (OPENEPAY_PUBLIC_URL says so).
    secure_cookies: bool

    @classmethod
    def on_gateway(
        cls, gateway: Gateway, signin: SignInSettings, users: type[Accounts], sessions: type[Any], accounts: type[Any]
    ) -> Self:
        """The site whose accounts are ``users`` (on their tables), its sessions in ``sessions``, under ``signin``."""
        return cls(
            gateway=gateway,
            users=users(gateway.db, gateway.box, signin.policy),
            sessions=Sessions(gateway.db, signin.lifetime, sessions, accounts),
            secure_cookies=(gateway.settings.public_url or "").startswith("https://"),
        )


SiteT = TypeVar("SiteT", bound=Site)


def site_of(request: Request, state: str, build: Callable[[Gateway], SiteT]) -> SiteT:
    """The app's one ``state`` site, built from its gateway at the first request that needs it."""
    site: Any = getattr(request.app.state, state, None)
    if site is None:
        site = build(request.app.state.gateway)
        setattr(request.app.state, state, site)
    return site


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
