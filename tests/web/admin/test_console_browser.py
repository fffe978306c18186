"""The console in a real browser: TOTP sign-in, a merchant made, its sandbox order seen and re-notified,
what a viewer cannot do, and every page at phone width without sideways scrolling; a channel account
added through its generated form on a phone."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import pytest
from playwright.async_api import async_playwright, expect

from openepay.admin import totp
from openepay.admin.roles import Role
from tests.support.admin import make_user
from tests.support.browser import CHINESE, CHROMIUM, CHROMIUM_ARGS, PHONE, overflow_px
from tests.support.epay import order_params, signed
from tests.support.fake_epay import FakeEpay
from tests.support.merchant import FakeMerchant
from tests.support.notify import attempted
from tests.support.orders import sandbox_order
from tests.support.waiting import eventually


@pytest.mark.browser
async def test_an_administrator_with_totp_makes_a_merchant_sees_its_order_and_resends_the_notification(
    server, gateway, worker, tmp_path
):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR, with_totp=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            console = await (await browser.new_context(**CHINESE, viewport={"width": 1280, "height": 800})).new_page()
            await console.goto(f"{server.url}/admin")
            await expect(console).to_have_url(re.compile(r"/admin/login\?next=/admin$"))
            await console.fill("#username", admin.username)
            await console.fill("#password", admin.password)
            await console.click("#sign-in")
            await expect(console).to_have_url(f"{server.url}/admin/login/totp")
            await console.fill("#code", totp.code_at(admin.totp_secret, time.time()))
            await console.click("#verify")
            await expect(console.locator("#whoami")).to_have_text("ada · 管理员")

            await console.click("text=商户")
            await console.click("#new-merchant")
            await console.fill("#merchant-name", "小李的杂货铺")
            await console.click("#create-merchant")
            await expect(console.locator("#notice")).to_contain_text("密钥只显示这一次")
            pid = int(await console.locator("#new-pid").inner_text())
            key = await console.locator("#new-key").inner_text()
            assert re.fullmatch(r"[A-Za-z0-9]{32}", key)

            shop = FakeMerchant(key=key).start()
            try:
                params = order_params(pid, shop.url, "B-1", name="年度会员", money="19.90")
                buyer = await (await browser.new_context(**PHONE)).new_page()
                await buyer.goto(f"{server.url}/submit.php?{urlencode(signed(params, key))}")
                await buyer.locator("#pay-button").tap()
                await buyer.get_by_role("button", name=re.compile("模拟支付成功")).tap()
                await expect(buyer).to_have_url(re.compile(rf"^{re.escape(shop.url)}/return\?"))
                await eventually(lambda: len(shop.notifications()) == 1)

                await console.click("text=订单")
                await console.fill("input[name=out_trade_no]", "B-1")
                await console.click("#search")
                await expect(console.locator("#total-count")).to_have_text("1")
                await expect(console.locator("#total-amount")).to_have_text("¥19.90")
                await console.locator(".order-row a").first.click()
                await expect(console.locator("#order-status")).to_have_text("已支付")
                await expect(console.locator("#timeline .ev_attempt")).to_have_count(1)
                await expect(console.locator("#timeline .ev_attempt")).to_contain_text("HTTP 200")

                await console.click("#resend")
                await expect(console.locator("#notice")).to_contain_text("已重新排队发送通知")
                await eventually(lambda: len(shop.notifications()) == 2)
                await eventually(attempted(gateway, await console.locator("#trade-no").inner_text(), 2))
                await console.reload()
                await expect(console.locator("#timeline .ev_attempt")).to_have_count(2)
                await console.screenshot(path=tmp_path / "order.png", full_page=True)
                assert all(note.signature_ok for note in shop.notifications())
            finally:
                shop.stop()
        finally:
            await browser.close()


@pytest.mark.browser
async def test_a_viewer_on_a_phone_reads_every_page_without_sideways_scrolling_and_cannot_act(
    server, gateway, merchant, tmp_path
):
    viewer = await make_user(gateway, "vic", Role.VIEWER)
    order = await sandbox_order(gateway, merchant.pid, "很长的商户订单号-" + "9" * 40, name="一件名字非常长的商品" * 6)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(**PHONE)).new_page()
            await page.goto(f"{server.url}/admin/login")
            assert await overflow_px(page) == 0
            await page.fill("#username", viewer.username)
            await page.fill("#password", viewer.password)
            await page.click("#sign-in")
            await expect(page.locator("#whoami")).to_have_text("vic · 只读")
            for path in (
                "/admin",
                "/admin/orders",
                f"/admin/orders/{order.trade_no}",
                "/admin/merchants",
                f"/admin/merchants/{merchant.pid}",
            ):
                await page.goto(f"{server.url}{path}")
                shot = tmp_path / f"{path.strip('/').replace('/', '-')}.png"
                await page.screenshot(path=shot, full_page=True)
                assert shot.stat().st_size > 0
                assert await overflow_px(page) == 0, path

            await page.goto(f"{server.url}/admin/orders/{order.trade_no}")
            await expect(page.locator("#timeline .ev_created")).to_have_count(1)
            await expect(page.locator("#resend, #close, #confirm")).to_have_count(0)
            await page.goto(f"{server.url}/admin/merchants")
            await expect(page.locator("#new-merchant")).to_have_count(0)
            answer = await page.goto(f"{server.url}/admin/merchants/new")
            assert answer is not None and answer.status == 403
            await expect(page.locator("#refusal")).to_contain_text("此操作需要角色：管理员")

            await page.goto(f"{server.url}/admin")
            await page.click("#lang-switch")
            await expect(page.locator("#whoami")).to_have_text("vic · viewer")
            await expect(page.locator("nav")).to_contain_text("Orders")
            assert await overflow_px(page) == 0
        finally:
            await browser.close()


@pytest.mark.browser
async def test_an_administrator_on_a_phone_adds_an_upstream_account_through_its_generated_form(
    server, gateway, tmp_path
):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    upstream = FakeEpay().start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context(**PHONE)).new_page()
                await page.goto(f"{server.url}/admin/login?next=/admin/channels")
                await page.fill("#username", admin.username)
                await page.fill("#password", admin.password)
                await page.click("#sign-in")
                await page.click("#add-account")
                await page.click("#choose-epay_upstream")
                await expect(page.locator("#cfg-key")).to_have_attribute("type", "password")
                assert await overflow_px(page) == 0
                await page.fill("#account-name", "上游-1")
                await page.fill("#cfg-api_url", upstream.url)
                await page.fill("#cfg-pid", upstream.pid)
                await page.fill("#cfg-key", upstream.key)
                await page.select_option("#cfg-mode", "submit")
                await page.fill("#rule-pay-types", "alipay,wxpay")
                await page.fill("#rule-max", "abc")
                await page.click("#save-account")
                await expect(page.locator("#error-max")).to_contain_text("is not an amount in yuan")
                # The key is not sent back: it is typed again.
                await expect(page.locator("#cfg-key")).to_have_value("")
                await page.fill("#rule-max", "2000")
                await page.fill("#cfg-key", upstream.key)
                await page.click("#save-account")
                await expect(page.locator("#notice")).to_contain_text("通道账户已添加")
                await expect(page.locator("#account-上游-1")).to_contain_text("epay_upstream")
                assert upstream.key not in await page.content()
                assert await overflow_px(page) == 0

                await page.locator("#account-上游-1 .edit-account").click()
                await expect(page.locator("#cfg-key")).to_have_value("")
                await expect(page.locator("#cfg-mode")).to_have_value("submit")
                await page.click("#test-account")
                await expect(page.locator("#check-result")).to_have_attribute("data-ok", "yes")
                await page.screenshot(path=tmp_path / "account.png", full_page=True)
                assert await overflow_px(page) == 0
            finally:
                await browser.close()
    finally:
        upstream.stop()
    record = await gateway.accounts.record("上游-1")
    assert (record.config["mode"], record.max_fen, record.pay_types) == ("submit", 200000, ["alipay", "wxpay"])
    assert gateway.accounts.open(record).config.key.get_secret_value() == upstream.key
