"""Portal sign-ins: made by the operator with ``openepay merchant login`` (a password made up and shown
once, or read from standard input), or by signing up when the gateway allows it (the merchant
then waits, disabled, for an operator)."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from openepay.admin.audit import CLI
from openepay.admin.users import UserError
from openepay.core.merchants import MerchantNotFound
from openepay.core.states import MerchantStatus
from openepay.db.models import AuditEntry, Merchant
from openepay.web.merchant.portal import Portal
from tests.support.cli import openepay
from tests.support.gateways import own_server
from tests.support.locks import no_inserts_until_waiting
from tests.support.portal import PortalClient, PortalUser, make_portal_user
from tests.support.signin import PASSWORD


async def test_the_operator_gives_a_merchant_a_sign_in_with_a_password_shown_once(server, gateway, merchant):
    made = await openepay(server.settings.database_url, "merchant", "login", str(merchant.pid), "--email", "a@shop.cn")
    assert made.returncode == 0, made.stderr
    password = re.search(r"password \(shown this once\): (\S+)", made.stdout).group(1)
    assert len(password) >= 10
    async with PortalClient(server.url) as browser:
        orders = await browser.sign_in(PortalUser(merchant.pid, "a@shop.cn", password))
        assert f"pid {merchant.pid}" in orders.text

    weak = await openepay(
        server.settings.database_url,
        "merchant",
        "login",
        str(merchant.pid),
        "--email",
        "c@shop.cn",
        "--password-stdin",
        input_text="short\n",
    )
    assert weak.returncode != 0 and "at least 10" in weak.stderr


async def test_a_sign_in_belongs_to_a_merchant_that_exists_and_its_name_is_taken_once(gateway, merchant):
    users = Portal.for_gateway(gateway).users
    await users.create(merchant.pid, "a@shop.cn", PASSWORD, CLI)
    with pytest.raises(UserError, match="already"):
        await users.create(merchant.pid, "a@shop.cn", PASSWORD, CLI)
    with pytest.raises(MerchantNotFound):
        await users.create(99999, "d@shop.cn", PASSWORD, CLI)
    with pytest.raises(UserError, match="letters"):
        await users.create(merchant.pid, "no spaces please", PASSWORD, CLI)
    assert [user.username for user in await users.of_merchant(merchant.pid)] == ["a@shop.cn"]


async def test_signing_up_is_off_unless_the_gateway_allows_it(server):
    async with PortalClient(server.url) as browser:
        assert (await browser.get("/merchant/signup")).status_code == 404
        assert 'id="to-signup"' not in (await browser.get("/merchant/login")).text


async def test_a_merchant_that_signs_up_starts_disabled_until_an_operator_enables_it(database_url, gateway):
    with own_server(database_url, merchant_signup=True) as thread:
        async with PortalClient(thread.url) as browser:
            login = await browser.get("/merchant/login")
            assert 'id="to-signup"' in login.text
            await browser.get("/merchant/signup")
            weak = await browser.post(
                "/merchant/signup", {"shop_name": "小店", "username": "new@shop.cn", "password": "short"}
            )
            assert weak.status_code == 400 and 'id="error"' in weak.text
            assert await gateway.merchants.list() == []
            done = await browser.post(
                "/merchant/signup", {"shop_name": "小店", "username": "new@shop.cn", "password": "a long password"}
            )
            assert done.status_code == 303
            [merchant] = await gateway.merchants.list()
            assert merchant.name == "小店" and merchant.status == MerchantStatus.DISABLED
            await browser.sign_in(PortalUser(merchant.pid, "new@shop.cn", "a long password"))
            page = await browser.get("/merchant/credentials")
            assert 'id="awaiting-review"' in page.text
        # Sign-ups from one address are limited like wrong passwords for one name.
        async with PortalClient(thread.url, address="198.51.100.9") as spammer:
            await spammer.get("/merchant/signup")
            limit = gateway.settings.admin_failures_per_user
            answers = [
                await spammer.post(
                    "/merchant/signup",
                    {"shop_name": f"店{n}", "username": f"s{n}@spam.cn", "password": "a long password"},
                )
                for n in range(limit + 1)
            ]
            assert [answer.status_code for answer in answers] == [303] * limit + [429]
            assert len(await gateway.merchants.list()) == 1 + limit


async def _sign_up(url: str, username: str) -> tuple[int, str, str]:
    """What a new browser is answered when it signs up as ``username``: the status, where it is sent,
    and what the page it lands on says."""
    async with PortalClient(url) as browser:
        await browser.get("/merchant/signup")
        answer = await browser.post(
            "/merchant/signup", {"shop_name": "小店", "username": username, "password": "a long password"}
        )
        location = answer.headers.get("location", "")
        landing = (await browser.get(location)).text if location else answer.text
        notice = re.search(r'id="notice">([^<]*)<', landing)
        return answer.status_code, location, notice.group(1) if notice else ""


async def test_signing_up_with_a_taken_address_is_answered_as_a_free_one_and_makes_nothing(
    database_url, gateway, merchant
):
    owner = await make_portal_user(gateway, merchant.pid, "taken@shop.cn")
    with own_server(database_url, merchant_signup=True) as thread:
        taken = await _sign_up(thread.url, "taken@shop.cn")
        free = await _sign_up(thread.url, "free@shop.cn")
        assert taken == free
        assert free[0] == 303 and "如果该邮箱可以注册" in free[2]
        # Only the free address made a merchant; the taken one's owner keeps its sign-in and password.
        [made] = [listed for listed in await gateway.merchants.list() if listed.pid != merchant.pid]
        assert made.name == "小店"
        async with PortalClient(thread.url) as browser:
            assert (await browser.submit_login("taken@shop.cn", "a long password")).status_code == 401
            orders = await browser.sign_in(owner)
            assert f"pid {merchant.pid}" in orders.text


async def test_two_simultaneous_sign_ups_with_one_new_address_make_one_merchant_and_are_answered_alike(
    database_url, gateway
):
    with own_server(database_url, merchant_signup=True) as thread:
        first, second = await asyncio.gather(
            *await no_inserts_until_waiting(
                gateway, Merchant.__table__, (_sign_up(thread.url, "twice@shop.cn") for _ in range(2))
            )
        )
        assert first == second
        assert first[0] == 303 and "如果该邮箱可以注册" in first[2]
        # One merchant, with its sign-in and one sign-up in the audit log: nothing half made.
        [made] = await gateway.merchants.list()
        assert [user.username for user in await Portal.for_gateway(gateway).users.of_merchant(made.pid)] == [
            "twice@shop.cn"
        ]
        async with gateway.db.session() as session:
            sign_ups = (
                await session.scalars(select(AuditEntry.target).where(AuditEntry.action == "merchant.sign_up"))
            ).all()
        assert sign_ups == [f"merchant:{made.pid}"]
