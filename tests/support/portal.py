"""The merchant portal as a merchant uses it over HTTP: sign-ins made as ``openepay merchant login``
makes them, and the console's browser-like client pointed at ``/merchant``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from openepay.admin import totp
from openepay.admin.audit import Actor
from openepay.gateway import Gateway
from openepay.web.merchant.portal import Portal
from tests.support.admin import PASSWORD, ConsoleClient


@dataclass
class PortalUser:
    pid: int
    username: str
    password: str
    totp_secret: str | None = None


async def make_portal_user(gateway: Gateway, pid: int, username: str, *, with_totp: bool = False) -> PortalUser:
    users = Portal.for_gateway(gateway).users
    user = await users.create(pid, username, PASSWORD, Actor("test"))
    secret = None
    if with_totp:
        secret = totp.new_secret()
        assert await users.enable_totp(user, secret, totp.code_at(secret, time.time() - 30), Actor("test"))
    return PortalUser(pid, username, PASSWORD, secret)


class PortalClient(ConsoleClient):
    """A cookie-keeping client that signs in to the portal and sends each form's CSRF token back."""

    async def submit_login(self, username: str, password: str) -> httpx.Response:
        await self.get("/merchant/login")
        return await self.post("/merchant/login", {"username": username, "password": password})

    async def sign_in(self, user, *, code_at: float | None = None) -> httpx.Response:  # type: ignore[no-untyped-def, override]
        """Password, then the TOTP code when the user has one; returns the order list."""
        answer = await self.submit_login(user.username, user.password)
        assert answer.status_code == 303, answer.text
        if user.totp_secret is not None:
            assert answer.headers["location"] == "/merchant/login/totp"
            await self.get("/merchant/login/totp")
            code = totp.code_at(user.totp_secret, time.time() if code_at is None else code_at)
            answer = await self.post("/merchant/login/totp", {"code": code})
            assert answer.status_code == 303, answer.text
        orders = await self.get("/merchant")
        assert orders.status_code == 200, orders.text
        return orders
