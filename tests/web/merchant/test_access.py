"""Who sees what in the merchant portal: only the session's merchant, only with a session, only with CSRF."""

from __future__ import annotations

import re

import httpx

from openepay.admin.roles import Role
from tests.support.admin import ConsoleClient, make_user
from tests.support.gateways import own_server
from tests.support.orders import sandbox_order
from tests.support.portal import PortalClient, make_portal_user
from tests.support.signin import where_next_leads


async def test_without_a_session_every_page_sends_to_the_sign_in_and_posts_do_nothing(server, gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid, "A-1")
    async with PortalClient(server.url) as anonymous:
        for path in (
            "/merchant",
            f"/merchant/orders/{order.trade_no}",
            "/merchant/credentials",
            "/merchant/integration",
        ):
            answer = await anonymous.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == f"/merchant/login?next={path}"
        rotated = await anonymous.post("/merchant/credentials/rotate-key")
        assert rotated.status_code == 303 and rotated.headers["location"].startswith("/merchant/login")
    assert gateway.merchants.key_of(await gateway.merchants.get(merchant.pid)) == merchant.key


async def test_a_merchant_sees_its_own_orders_and_another_merchants_order_is_not_found(server, gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    mine = await sandbox_order(gateway, merchant.pid, "MINE-1", amount_fen=1230, money="12.30")
    theirs = await sandbox_order(gateway, other.pid, "THEIRS-1")
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    async with PortalClient(server.url) as browser:
        listed = await browser.sign_in(user)
        assert mine.trade_no in listed.text and "¥12.30" in listed.text
        assert theirs.trade_no not in listed.text
        # A merchant filter in the address changes nothing: the session says whose orders these are.
        forced = await browser.get(f"/merchant?merchant={other.pid}")
        assert theirs.trade_no not in forced.text and mine.trade_no in forced.text
        assert (await browser.get(f"/merchant/orders/{mine.trade_no}")).status_code == 200
        refused = await browser.get(f"/merchant/orders/{theirs.trade_no}")
        assert refused.status_code == 404 and 'data-refusal="not_found"' in refused.text
        resend = await browser.post(f"/merchant/orders/{theirs.trade_no}/resend")
        assert resend.status_code == 404
        assert (await browser.get("/merchant/orders/NOPE")).status_code == 404


async def test_a_post_without_the_sessions_csrf_token_is_refused(server, gateway, merchant):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    async with PortalClient(server.url) as browser:
        await browser.sign_in(user)
        for path in ("/merchant/credentials/rotate-key", "/merchant/logout-everywhere"):
            refused = await browser.post(path, csrf=False)
            assert refused.status_code == 403 and 'data-refusal="csrf"' in refused.text, path
            wrong = await browser.post(path, {"csrf": "not-the-token"})
            assert wrong.status_code == 403, path
        assert (await browser.get("/merchant")).status_code == 200
    assert gateway.merchants.key_of(await gateway.merchants.get(merchant.pid)) == merchant.key
    async with PortalClient(server.url) as login:
        assert (
            await login.post("/merchant/login", {"username": user.username, "password": user.password})
        ).status_code == 403


async def test_portal_and_console_sessions_do_not_open_each_other(server, gateway, merchant):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    user = await make_portal_user(gateway, merchant.pid, "ada")
    async with PortalClient(server.url) as shop, ConsoleClient(server.url) as console:
        await shop.sign_in(user)
        await console.sign_in(admin)
        portal_token = shop.http.cookies.get("openepay_merchant")
        console_token = console.http.cookies.get("openepay_admin")
        assert portal_token and console_token
    async with httpx.AsyncClient(base_url=server.url, cookies={"openepay_admin": portal_token}) as forged:
        crossed = await forged.get("/admin")
        assert crossed.status_code == 303 and crossed.headers["location"].startswith("/admin/login")
    async with httpx.AsyncClient(base_url=server.url, cookies={"openepay_merchant": console_token}) as forged:
        crossed = await forged.get("/merchant")
        assert crossed.status_code == 303 and crossed.headers["location"].startswith("/merchant/login")


async def test_wrong_passwords_lock_the_name_and_totp_is_asked_when_set_up(server, gateway, merchant):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com", with_totp=True)
    async with PortalClient(server.url, address="198.51.100.7") as guesser:
        for _ in range(server.settings.admin_failures_per_user):
            assert (await guesser.submit_login(user.username, "wrong password!")).status_code == 401
        locked = await guesser.submit_login(user.username, user.password)
        assert locked.status_code == 429
    async with PortalClient(server.url, address="198.51.100.8") as owner:
        other = await make_portal_user(gateway, merchant.pid, "second@example.com", with_totp=True)
        answer = await owner.submit_login(other.username, other.password)
        assert answer.status_code == 303 and answer.headers["location"] == "/merchant/login/totp"
        # Past the password but before the code, no page opens.
        early = await owner.get("/merchant")
        assert early.status_code == 303 and early.headers["location"] == "/merchant/login/totp"
        await owner.sign_in(other)


async def test_logging_out_everywhere_ends_every_session_of_the_user(server, gateway, merchant):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    async with PortalClient(server.url) as phone, PortalClient(server.url) as laptop:
        await phone.sign_in(user)
        await laptop.sign_in(user)
        out = await laptop.post("/merchant/logout-everywhere")
        assert out.status_code == 303 and out.headers["location"] == "/merchant/login"
        assert (await phone.get("/merchant")).status_code == 303


async def test_after_signing_in_next_may_lead_only_to_the_portal_itself(server, gateway, merchant):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    kept = ["/merchant", "/merchant/credentials"]
    refused = ["/merchantfoo", "/merchant.evil.example", "//evil.example/merchant", "/admin", "/merchant\\x"]
    where = await where_next_leads(PortalClient, server.url, user, kept + refused)
    assert where == {
        f"{how}{target}": target if target in kept else "/merchant"
        for target in kept + refused
        for how in ("", "lang ")
    }


def _session_seconds(answer: httpx.Response, cookie: str) -> int:
    """How long the session cookie ``cookie`` that ``answer`` sets is kept, in seconds."""
    [set_cookie] = [v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith(cookie + "=")]
    return int(re.search(r"Max-Age=(\d+)", set_cookie).group(1))


async def test_the_portal_has_its_own_lockout_and_session_length_and_the_consoles_until_set(
    gateway, database_url, merchant
):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    admin = await make_user(gateway, "ada", Role.VIEWER)
    # Unset, the portal's are the console's.
    with own_server(database_url, admin_session_hours=2, admin_failures_per_user=2) as running:
        async with PortalClient(running.url) as browser:
            answer = await browser.submit_login(user.username, user.password)
            assert _session_seconds(answer, "openepay_merchant") == 2 * 3600
            for _ in range(2):
                assert (await browser.submit_login("other@example.com", "wrong password!")).status_code == 401
            assert (await browser.submit_login("other@example.com", "wrong password!")).status_code == 429
    # Set, they are the portal's alone: the console keeps its own.
    portal_settings = {"merchant_session_hours": 1, "merchant_failures_per_user": 3}
    with own_server(database_url, admin_failures_per_user=5, **portal_settings) as running:
        async with PortalClient(running.url) as shop, ConsoleClient(running.url) as console:
            answer = await shop.submit_login(user.username, user.password)
            assert _session_seconds(answer, "openepay_merchant") == 3600
            answer = await console.submit_login(admin.username, admin.password)
            assert _session_seconds(answer, "openepay_admin") == 12 * 3600
            for _ in range(3):
                assert (await shop.submit_login(user.username, "wrong password!")).status_code == 401
                assert (await console.submit_login(admin.username, "wrong password!")).status_code == 401
            assert (await shop.submit_login(user.username, user.password)).status_code == 429
            assert (await console.submit_login(admin.username, admin.password)).status_code == 303
