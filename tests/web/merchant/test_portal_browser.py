"""The portal in a real browser: a merchant signs in, a sandbox order paid through submit.php shows in
the portal (and in the operator's console), its notification is resent and the new attempt shows;
the key is shown once; every page fits a phone's width."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.async_api import async_playwright, expect

from openepay.admin.roles import Role
from tests.support.admin import ConsoleClient, make_user
from tests.support.browser import CHINESE, CHROMIUM, CHROMIUM_ARGS, PHONE, overflow_px
from tests.support.epay import order_params, signed
from tests.support.merchant import FakeMerchant
from tests.support.notify import attempted
from tests.support.portal import make_portal_user
from tests.support.waiting import eventually


@pytest.mark.browser
async def test_a_merchant_sees_its_paid_order_resends_the_notification_and_rotates_its_key(
    server, gateway, merchant, worker, tmp_path
):
    user = await make_portal_user(gateway, merchant.pid, "shop@example.com")
    shop = FakeMerchant(key=merchant.key).start()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            params = order_params(merchant.pid, shop.url, "P-1", name="年度会员", money="19.90")
            buyer = await (await browser.new_context(**PHONE)).new_page()
            await buyer.goto(f"{server.url}/submit.php?{urlencode(signed(params, merchant.key))}")
            await buyer.locator("#pay-button").tap()
            await buyer.get_by_role("button", name=re.compile("模拟支付成功")).tap()
            await expect(buyer).to_have_url(re.compile(rf"^{re.escape(shop.url)}/return\?"))
            await eventually(lambda: len(shop.notifications()) == 1)

            portal = await (await browser.new_context(**CHINESE, viewport={"width": 1280, "height": 800})).new_page()
            await portal.goto(f"{server.url}/merchant")
            await expect(portal).to_have_url(re.compile(r"/merchant/login\?next=/merchant$"))
            await portal.fill("#username", user.username)
            await portal.fill("#password", user.password)
            await portal.click("#sign-in")
            await expect(portal.locator("#whoami")).to_have_text(f"shop@example.com · pid {merchant.pid}")
            await portal.fill("input[name=out_trade_no]", "P-1")
            await portal.click("#search")
            await expect(portal.locator("#total-count")).to_have_text("1")
            await expect(portal.locator("#total-amount")).to_have_text("¥19.90")
            await portal.locator(".order-row a").first.click()
            await expect(portal.locator("#order-status")).to_have_text("已支付")
            await expect(portal.locator("#timeline .ev_attempt")).to_have_count(1)
            await expect(portal.locator("#timeline .ev_attempt")).to_contain_text("HTTP 200")
            trade_no = await portal.locator("#trade-no").inner_text()

            await portal.click("#resend")
            await expect(portal.locator("#notice")).to_contain_text("已重新排队发送通知")
            await eventually(lambda: len(shop.notifications()) == 2)
            await eventually(attempted(gateway, trade_no, 2))
            await portal.reload()
            await expect(portal.locator("#timeline .ev_attempt")).to_have_count(2)
            assert all(note.signature_ok for note in shop.notifications())

            await portal.click("text=API 密钥")
            await portal.click("#rotate-key")
            key = await portal.locator("#new-key").inner_text()
            assert re.fullmatch(r"[A-Za-z0-9]{32}", key) and key != merchant.key
            await portal.click("#to-credentials")
            assert key not in await portal.content()

            phone = await (await browser.new_context(**PHONE)).new_page()
            await phone.goto(f"{server.url}/merchant/login")
            assert await overflow_px(phone) == 0
            await phone.fill("#username", user.username)
            await phone.fill("#password", user.password)
            await phone.click("#sign-in")
            await expect(phone.locator("#whoami")).to_be_visible()
            for path in (
                "/merchant",
                f"/merchant/orders/{trade_no}",
                "/merchant/credentials",
                "/merchant/integration",
                "/merchant/test-notify",
                "/merchant/signature",
                "/merchant/totp/setup",
            ):
                await phone.goto(f"{server.url}{path}")
                shot = tmp_path / f"{path.strip('/').replace('/', '-')}.png"
                await phone.screenshot(path=shot, full_page=True)
                assert shot.stat().st_size > 0
                assert await overflow_px(phone) == 0, path
        finally:
            await browser.close()
            shop.stop()

    # The operator sees the same order, and the merchant's resend, in the console.
    admin = await make_user(gateway, "ada", Role.OPERATOR)
    async with ConsoleClient(server.url) as console:
        await console.sign_in(admin)
        listed = await console.get(f"/admin/orders?merchant={merchant.pid}")
        assert trade_no in listed.text
        detail = await console.get(f"/admin/orders/{trade_no}")
        assert "merchant:shop@example.com: order.resend" in detail.text
