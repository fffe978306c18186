"""What every console page reaches: the gateway, its console users and sessions, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from openepay.admin.audit import Actor
from openepay.admin.sessions import Current
from openepay.admin.users import AdminUsers
from openepay.db.models import AdminSession, AdminUser
from openepay.web.signin.site import Site


@dataclass
class Console(Site):
    """The console's users and sessions, under the ``OPENEPAY_ADMIN_*`` settings."""

    settings_prefix = "admin"
    accounts = AdminUsers
    session_table = AdminSession
    account_table = AdminUser

    users: AdminUsers


def console_of(request: Request) -> Console:
    return Console.of(request)


def actor_of(request: Request, me: Current) -> Actor:
    return console_of(request).actor(request, me)
