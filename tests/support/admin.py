"""The operator console as a person uses it over HTTP: users made as ``openepay admin create`` makes them,
a browser-like client that signs in and sends each form's CSRF token back."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import httpx
from fastapi.routing import APIRoute

from openepay.admin import totp
from openepay.admin.audit import Actor
from openepay.admin.roles import Role
from openepay.app import create_app
from openepay.db.models import AdminUser
from openepay.gateway import Gateway
from openepay.web.admin.console import Console

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ConsoleUser:
    username: str
    password: str
    role: Role
    totp_secret: str | None = None


async def make_user(
    gateway: Gateway, username: str, role: Role, *, with_totp: bool = False, password: str = PASSWORD
) -> ConsoleUser:
    console = Console.for_gateway(gateway)
    user = await console.users.create(username, password, role, Actor("test"))
    secret = None
    if with_totp:
        secret = totp.new_secret()
        # Set up with the previous step's code, so that the current one is free for signing in.
        assert await console.users.enable_totp(user, secret, totp.code_at(secret, time.time() - 30), Actor("test"))
    return ConsoleUser(username, password, role, secret)


async def stored_user(gateway: Gateway, username: str) -> AdminUser | None:
    return next((user for user in await Console.for_gateway(gateway).users.list() if user.username == username), None)


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, f"no CSRF field on {page.url}"
    return found.group(1)


class ConsoleClient:
    """An httpx client with a cookie jar, as a browser keeps one."""

    def __init__(self, base_url: str, *, address: str | None = None) -> None:
        """``address``: the client's address as a trusted proxy in front would report it (X-Forwarded-For)."""
        headers = {"x-forwarded-for": address} if address else {}
        self.http = httpx.AsyncClient(base_url=base_url, timeout=15, headers=headers)
        self.csrf = ""

    async def __aenter__(self) -> ConsoleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        page = await self.http.get(path, **kwargs)  # type: ignore[arg-type]
        found = _CSRF.search(page.text)
        if found:
            self.csrf = found.group(1)
        return page

    async def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf)
        return await self.http.post(path, data=form)

    async def upload(self, path: str, data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> httpx.Response:
        """A multipart form with files, as a browser sends ``enctype="multipart/form-data"``."""
        return await self.http.post(path, data={"csrf": self.csrf, **data}, files=files)

    async def submit_login(self, username: str, password: str) -> httpx.Response:
        await self.get("/admin/login")
        return await self.post("/admin/login", {"username": username, "password": password})

    async def sign_in(self, user: ConsoleUser, *, code_at: float | None = None) -> httpx.Response:
        """Password, then the TOTP code when the user has one; returns the dashboard."""
        answer = await self.submit_login(user.username, user.password)
        assert answer.status_code == 303, answer.text
        if user.totp_secret is not None:
            assert answer.headers["location"] == "/admin/login/totp"
            await self.get("/admin/login/totp")
            code = totp.code_at(user.totp_secret, time.time() if code_at is None else code_at)
            answer = await self.post("/admin/login/totp", {"code": code})
            assert answer.status_code == 303, answer.text
        dashboard = await self.get("/admin")
        assert dashboard.status_code == 200, dashboard.text
        return dashboard


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
