"""Signing in as a person does over HTTP, to the console or to the portal: a browser-like client that keeps
its cookies and sends each form's CSRF token back, and TOTP set up the way a user's app would."""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar

import httpx

from openepay.admin import totp
from openepay.admin.audit import Actor
from openepay.admin.users import Accounts

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def set_up_totp(users: Accounts, user: Any) -> str:
    """A new TOTP secret set up for ``user``, with the previous step's code, so that the current one is
    free for signing in."""
    secret = totp.new_secret()
    assert await users.enable_totp(user, secret, totp.code_at(secret, time.time() - 30), Actor("test"))
    return secret


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, f"no CSRF field on {page.url}"
    return found.group(1)


class SignInClient:
    """An httpx client with a cookie jar, as a browser keeps one, for the area at ``prefix``."""

    prefix: ClassVar[str]

    def __init__(self, base_url: str, *, address: str | None = None) -> None:
        """``address``: the client's address as a trusted proxy in front would report it (X-Forwarded-For)."""
        headers = {"x-forwarded-for": address} if address else {}
        self.http = httpx.AsyncClient(base_url=base_url, timeout=15, headers=headers)
        self.csrf = ""

    async def __aenter__(self) -> SignInClient:
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

    async def submit_login(self, username: str, password: str, **more: str) -> httpx.Response:
        """The sign-in form sent with ``username`` and ``password`` (and ``more`` fields, such as ``next``)."""
        await self.get(f"{self.prefix}/login")
        return await self.post(f"{self.prefix}/login", {"username": username, "password": password, **more})

    async def sign_in(self, user: Any, *, code_at: float | None = None) -> httpx.Response:
        """Password, then the TOTP code when the user has one; returns the area's first page."""
        answer = await self.submit_login(user.username, user.password)
        assert answer.status_code == 303, answer.text
        if user.totp_secret is not None:
            assert answer.headers["location"] == f"{self.prefix}/login/totp"
            await self.get(f"{self.prefix}/login/totp")
            code = totp.code_at(user.totp_secret, time.time() if code_at is None else code_at)
            answer = await self.post(f"{self.prefix}/login/totp", {"code": code})
            assert answer.status_code == 303, answer.text
        first = await self.get(self.prefix)
        assert first.status_code == 200, first.text
        return first


async def where_next_leads(client: type[SignInClient], url: str, user: Any, targets: list[str]) -> dict[str, str]:
    """Where each of ``targets``, given as ``next``, sends a fresh browser: after signing in as ``user``
    (keyed by the target) and after switching the language (keyed ``lang <target>``)."""
    where = {}
    for wanted in targets:
        async with client(url) as browser:
            answer = await browser.submit_login(user.username, user.password, next=wanted)
            where[wanted] = answer.headers["location"]
        async with client(url) as browser:
            switched = await browser.get(f"{client.prefix}/lang", params={"next": wanted})
            where[f"lang {wanted}"] = switched.headers["location"]
    return where
