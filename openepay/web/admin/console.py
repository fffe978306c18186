"""What every console page reaches: the gateway, its console users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current
from openepay.admin.signin_settings import SignInSettings
from openepay.admin.users import AdminUsers
from openepay.db.models import AdminSession, AdminUser
from openepay.gateway import Gateway
from openepay.web.signin.site import Site, address_of, site_of

_STATE = "admin_console"


@dataclass
class Console(Site):
    users: AdminUsers

    @classmethod
    def for_gateway(cls, gateway: Gateway) -> Console:
        return cls.on_gateway(
            gateway, SignInSettings.of(gateway.settings, "admin"), AdminUsers, AdminSession, AdminUser
        )


def console_of(request: Request) -> Console:
    return site_of(request, _STATE, Console.for_gateway)


def actor_of(request: Request, me: Current) -> Actor:
    return Actor(me.user.username, address_of(request))
