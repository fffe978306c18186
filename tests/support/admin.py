"""The operator console as a person uses it over HTTP: users made as ``openepay admin create`` makes them,
a browser-like client that signs in and sends each form's CSRF token back."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi.routing import APIRoute

from openepay.admin.audit import Actor
from openepay.admin.roles import Role
from openepay.app import create_app
from openepay.db.models import AdminUser
from openepay.gateway import Gateway
from openepay.web.admin.console import Console
from tests.support.signin import PASSWORD, SignInClient, set_up_totp


@dataclass
class ConsoleUser:
    username: str
    password: str
    role: Role
    totp_secret: str | None = None


async def make_user(
    gateway: Gateway, username: str, role: Role, *, with_totp: bool = False, password: str = PASSWORD
) -> ConsoleUser:
    users = Console.for_gateway(gateway).users
    user = await users.create(username, password, role, Actor("test"))
    return ConsoleUser(username, password, role, await set_up_totp(users, user) if with_totp else None)


async def stored_user(gateway: Gateway, username: str) -> AdminUser | None:
    return next((user for user in await Console.for_gateway(gateway).users.list() if user.username == username), None)


class ConsoleClient(SignInClient):
    """The console (``/admin``) as a browser signs in to it; ``sign_in`` returns the dashboard."""

    prefix = "/admin"

    async def upload(self, path: str, data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> httpx.Response:
        """A multipart form with files, as a browser sends ``enctype="multipart/form-data"``."""
        return await self.http.post(path, data={"csrf": self.csrf, **data}, files=files)


def _declared_role(route: APIRoute) -> Role | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        role = getattr(dependency.call, "role", None)
        if role is not None:
            return role
        pending.extend(dependency.dependencies)
    return None


def _api_routes(routes) -> list[APIRoute]:  # type: ignore[no-untyped-def]
    """Every route, also inside included routers (FastAPI keeps those whole, as ``original_router``)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found.extend(_api_routes(included.routes))
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def routes_under(settings, prefix: str) -> list[tuple[str, str, APIRoute]]:  # type: ignore[no-untyped-def]
    """Every (method, path, route) of the app at ``prefix`` or below it."""
    found = []
    for route in _api_routes(create_app(settings).routes):
        if route.path == prefix or route.path.startswith(prefix + "/"):
            for method in sorted(route.methods - {"HEAD"}):
                found.append((method, route.path, route))
    return found


def console_routes(settings) -> list[tuple[str, str, Role | None]]:  # type: ignore[no-untyped-def]
    return [(method, path, _declared_role(route)) for method, path, route in routes_under(settings, "/admin")]


def fill(template: str, **values: str) -> str:
    """A route's path with its parameters (``{pid}``) given."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template
