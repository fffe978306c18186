"""What every console page reaches: the gateway, its console users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current, Sessions
from openepay.admin.users import AdminUsers, LoginPolicy
from openepay.gateway import Gateway

_STATE = "admin_console"


@dataclass
class Console:
    gateway: Gateway
    users: AdminUsers
    sessions: Sessions
    # Cookies only over HTTPS when the gateway is reached over HTTPS (OPENEPAY_PUBLIC_URL says so).
    secure_cookies: bool

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Console:
        settings = gateway.settings
        lock = timedelta(minutes=settings.admin_lock_minutes)
        policy = LoginPolicy(settings.admin_failures_per_user, settings.admin_failures_per_ip, lock)
        return cls(
            gateway=gateway,
            users=AdminUsers(gateway.db, gateway.box, policy),
            sessions=Sessions(gateway.db, timedelta(hours=settings.admin_session_hours)),
            secure_cookies=(settings.public_url or "").startswith("https://"),
        )


def console_of(request: Request) -> Console:
    console = getattr(request.app.state, _STATE, None)
    if console is None:
        console = Console.for_gateway(request.app.state.gateway)
        setattr(request.app.state, _STATE, console)
    return console


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def actor_of(request: Request, me: Current) -> Actor:
    return Actor(me.user.username, address_of(request))
