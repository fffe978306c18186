"""The signature checker in a real browser on a phone: a merchant's pasted URL checked, then a wrong one explained."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.async_api import async_playwright, expect

from openepay.admin.roles import Role
from tests.support.admin import make_user
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, PHONE, overflow_px
from tests.support.epay import order_params, signed


@pytest.mark.browser
async def test_an_operator_checks_a_pasted_request_and_sees_why_a_wrong_one_fails(server, gateway, merchant):
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    params = signed(order_params(merchant.pid, "https://shop.example", "P-1", name="年度会员"), merchant.key)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(**PHONE)).new_page()
            await page.goto(f"{server.url}/admin/login")
            await page.fill("#username", operator.username)
            await page.fill("#password", operator.password)
            await page.click("#sign-in")
            await expect(page.locator("#whoami")).to_have_text("olga · 运营")
            await page.goto(f"{server.url}/admin/merchants/{merchant.pid}")
            await page.click("#signature-checker")
            await expect(page).to_have_url(f"{server.url}/admin/merchants/{merchant.pid}/signature")

            await page.select_option("#sig-dialect", "epay")
            await page.fill("#sig-text", f"https://pay.example.com/submit.php?{urlencode(params)}")
            await page.click("#check-signature")
            await expect(page.locator("#sig-verdict")).to_have_text("签名一致。")
            await expect(page.locator("#sig-canonical")).to_contain_text("name=年度会员")
            await expect(page.locator("#sig-canonical")).to_have_text(re.compile(r"type=alipay\*{4}$"))
            await expect(page.locator("#sig-ours")).to_have_text(params["sign"])
            assert merchant.key not in await page.content()
            assert await overflow_px(page) == 0

            await page.click("#lang-switch")
            await page.goto(f"{server.url}/admin/merchants/{merchant.pid}/signature")
            await page.select_option("#sig-dialect", "epay")
            await page.fill("#sig-text", urlencode({**params, "sign": params["sign"][:31] + "X"}))
            await page.click("#check-signature")
            await expect(page.locator("#sig-verdict")).to_have_text("The signatures differ.")
            await expect(page.locator("[data-hint]")).to_contain_text("not a 32-digit hexadecimal MD5 digest")
            await expect(page.locator("#sig-theirs")).to_have_text(params["sign"][:31] + "X")
            assert merchant.key not in await page.content()
        finally:
            await browser.close()
