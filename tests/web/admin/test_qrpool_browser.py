"""Personal codes in a real browser at phone width: an account, a code uploaded as a picture, a phone paired."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import async_playwright, expect

from openepay.admin.roles import Role
from tests.support.admin import make_user
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, PHONE, overflow_px
from tests.support.qrcodes import code_png

ALIPAY = "https://qr.alipay.com/fkx19876543210abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.browser
async def test_an_administrator_on_a_phone_adds_an_account_uploads_a_code_and_pairs_a_phone(server, gateway, tmp_path):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    picture = tmp_path / "收款码.png"
    picture.write_bytes(code_png(ALIPAY))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(**PHONE)).new_page()
            await page.goto(f"{server.url}/admin/login")
            await page.fill("#username", admin.username)
            await page.fill("#password", admin.password)
            await page.click("#sign-in")
            await expect(page.locator("#whoami")).to_have_text("ada · 管理员")

            await page.click("text=个人收款码")
            await page.fill("#new-account-name", "支付宝-主账户")
            await page.select_option("#new-account-type", "alipay")
            await page.click("#add-account")
            await expect(page).to_have_url(re.compile(r"/admin/qrpool/accounts/\d+$"))

            await page.set_input_files("#code-image", picture)
            await page.fill("#code-amount", "19.90")
            await page.click("#upload-code")
            await expect(page.locator("#added")).to_contain_text("固定金额 ¥19.90")
            await expect(page.locator("#added .code-content")).to_have_text(ALIPAY)
            await expect(page.locator(".code-row .code-kind")).to_have_text(["¥19.90"])
            assert await overflow_px(page) == 0

            await page.fill("#phone-name", "备用机")
            await page.click("#pair-phone")
            await expect(page.locator("#pairing-qr svg")).to_be_visible()
            key = await page.locator("#device-key").inner_text()
            assert re.fullmatch(r"[0-9a-f]{32}", key)
            assert await overflow_px(page) == 0

            for path in ("/admin/qrpool", "/admin/qrpool/phones", "/admin"):
                await page.goto(f"{server.url}{path}")
                assert await overflow_px(page) == 0, path
                assert key not in await page.content(), path
            await expect(page.locator("#offline-phones .offline-phone")).to_contain_text(["备用机"])
            await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
        finally:
            await browser.close()
