"""A buyer pays an ``alipay`` order in a real browser: our cashier, Alipay's (the fake's) page, back to the shop."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from playwright.async_api import async_playwright, expect

from tests.support.epay import order_params, signed
from tests.support.links import trade_no_of
from tests.support.merchant import plugin_sign
from tests.support.waiting import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


@pytest.mark.browser
async def test_a_buyer_pays_an_alipay_order_at_alipay_and_returns_to_the_shop(
    server, gateway, merchant, shop, worker, fake_alipay, tmp_path
):
    await gateway.accounts.add("alipay", "alipay-main", fake_alipay.account_config(pc_method="page"))
    params = order_params(merchant.pid, shop.url, "B-ALIPAY", name="年度会员", money="19.90")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            desktop = await browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 800})
            page = await desktop.new_page()
            await page.goto(f"{server.url}/submit.php?{urlencode(signed(params, merchant.key))}")
            await expect(page).to_have_url(re.compile(rf"^{re.escape(server.url)}/cashier/"))
            trade_no = trade_no_of(page.url)
            await expect(page.locator("#amount")).to_have_text("¥19.90")

            # 电脑网站支付: the cashier opens Alipay's page, signed for this order and amount.
            await page.locator("#open-pay-link").click()
            await expect(page).to_have_url(re.compile(rf"^{re.escape(fake_alipay.url)}/gateway.do\?"))
            await expect(page.locator("#amount")).to_have_text("19.90")
            await expect(page.locator("#product")).to_have_text("FAST_INSTANT_TRADE_PAY")
            await page.screenshot(path=tmp_path / "alipay-page.png", full_page=True)
            await page.locator("#pay").click()

            # Alipay notified us before it sent the buyer back; the cashier hands over to the shop.
            await expect(page).to_have_url(re.compile(rf"^{re.escape(shop.url)}/return\?"), timeout=10000)
            parts = urlsplit(page.url)
            back = dict(parse_qsl(parts.query, keep_blank_values=True))
            assert back["sign"] == plugin_sign(back, merchant.key)
            assert (back["trade_no"], back["money"], back["trade_status"]) == (trade_no, "19.90", "TRADE_SUCCESS")
        finally:
            await browser.close()
    [notification] = await eventually(lambda: shop.notifications())
    assert notification.signature_ok is True and notification.params["trade_no"] == trade_no
    assert fake_alipay.refused == []
