"""The merchant portal as a merchant uses it over HTTP: sign-ins made as ``openepay merchant login``
makes them, and a browser-like client that signs in at ``/merchant``."""

from __future__ import annotations

from dataclasses import dataclass

from openepay.admin.audit import Actor
from openepay.gateway import Gateway
from openepay.web.merchant.portal import Portal
from tests.support.signin import PASSWORD, SignInClient, set_up_totp


@dataclass
class PortalUser:
    pid: int
    username: str
    password: str
    totp_secret: str | None = None


async def make_portal_user(gateway: Gateway, pid: int, username: str, *, with_totp: bool = False) -> PortalUser:
    users = Portal.for_gateway(gateway).users
    user = await users.create(pid, username, PASSWORD, Actor("test"))
    return PortalUser(pid, username, PASSWORD, await set_up_totp(users, user) if with_totp else None)


class PortalClient(SignInClient):
    """The portal (``/merchant``) as a browser signs in to it; ``sign_in`` returns the order list."""

    prefix = "/merchant"
