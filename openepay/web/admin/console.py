"""What every console page reaches: the gateway, its console users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current
from openepay.admin.users import AdminUsers
from openepay.config import Settings
from openepay.db.models import AdminSession, AdminUser
from openepay.gateway import Gateway
from openepay.web.signin.site import Rules, Site, address_of, site_of

_STATE = "admin_console"


def console_rules(settings: Settings) -> Rules:
    return Rules(
        settings.admin_session_hours,
        settings.admin_failures_per_user,
        settings.admin_failures_per_ip,
        settings.admin_lock_minutes,
    )


@dataclass
class Console(Site):
    users: AdminUsers

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Console:
        return cls.on_gateway(gateway, console_rules(gateway.settings), AdminUsers, AdminSession, AdminUser)


def console_of(request: Request) -> Console:
    return site_of(request, _STATE, Console.for_gateway)


def actor_of(request: Request, me: Current) -> Actor:
    return Actor(me.user.username, address_of(request))
