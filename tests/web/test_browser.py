"""A buyer in a real browser (Debian's Chromium through Playwright), from the shop's link back to the shop."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from playwright.async_api import Locator, async_playwright, expect

from tests.support.epay import order_params, signed
from tests.support.links import cashier_path, sandbox_path, trade_no_of
from tests.support.merchant import plugin_sign
from tests.support.vmq_phone import WXPAY, qrpool_server
from tests.support.waiting import eventually
from tests.web.test_cashier import DESKTOP_UA, IPHONE_UA

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


ORDER_LIFETIME = 30 * 60


async def assert_time_left(countdown: Locator, asked_at: float) -> None:
    """The countdown shows the order's half hour less no more than has passed since the buyer asked for the page
    (read as a bound, so a slow machine that takes seconds to draw the page still passes)."""
    await expect(countdown).to_have_text(re.compile(r"^剩余 \d\d:\d\d$"))
    shown = await countdown.text_content()
    passed = time.monotonic() - asked_at
    minutes, seconds = re.fullmatch(r"剩余 (\d\d):(\d\d)", shown or "").groups()  # type: ignore[union-attr]
    left = int(minutes) * 60 + int(seconds)
    assert ORDER_LIFETIME - passed - 1 <= left < ORDER_LIFETIME, (shown, passed)


def returned_params(url: str, shop_url: str) -> dict[str, str]:
    """The query of the shop's return URL the browser landed on."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{shop_url}/return"
    return dict(parse_qsl(parts.query, keep_blank_values=True))


@pytest.mark.browser
async def test_buyer_pays_in_the_browser_and_returns_to_the_shop(server, merchant, shop, worker, tmp_path):
    def submit_link(out_trade_no: str, **overrides: str) -> str:
        params = order_params(merchant.pid, shop.url, out_trade_no, sitename="小李的杂货铺", **overrides)
        return f"{server.url}/submit.php?{urlencode(signed(params, merchant.key))}"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            phone = await browser.new_context(
                user_agent=IPHONE_UA, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
            )
            page = await phone.new_page()
            asked_at = time.monotonic()
            await page.goto(submit_link("B-PHONE", name="年度会员", money="19.90"))

            await expect(page).to_have_url(re.compile(rf"^{re.escape(server.url)}/cashier/\d+-[0-9a-f]{{32}}$"))
            trade_no = trade_no_of(page.url)
            await expect(page.locator("#site-name")).to_have_text("小李的杂货铺")
            await expect(page.locator("#product-name")).to_have_text("年度会员")
            await expect(page.locator("#amount")).to_have_text("¥19.90")
            await assert_time_left(page.locator("#countdown"), asked_at)
            await page.screenshot(path=tmp_path / "mobile-cashier.png", full_page=True)

            await page.locator("#pay-button").tap()
            await expect(page).to_have_url(f"{server.url}{sandbox_path(trade_no)}")
            await expect(page.locator(".sandbox-banner")).to_contain_text("SANDBOX")
            await page.get_by_role("button", name=re.compile("模拟支付成功")).tap()

            await expect(page).to_have_url(re.compile(rf"^{re.escape(shop.url)}/return\?"))
            back = returned_params(page.url, shop.url)
            assert back["sign"] == plugin_sign(back, merchant.key)
            assert (back["trade_no"], back["money"], back["trade_status"]) == (trade_no, "19.90", "TRADE_SUCCESS")

            [notification] = await eventually(lambda: shop.notifications())
            assert notification.signature_ok is True
            assert notification.params == back
            # The shop learns nothing of the cashier's address (the order's handle) from the buyer's browser.
            [landing] = shop.notifications("/return")
            assert "referer" not in landing.headers

            # On a desktop the cashier shows the QR code, and moves on by itself once the phone has paid.
            desktop = await browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 800})
            screen = await desktop.new_page()
            asked_at = time.monotonic()
            await screen.goto(submit_link("B-DESKTOP", name="季度会员", money="9.90"))
            desk_trade_no = trade_no_of(screen.url)
            await expect(screen.locator("#qrcode svg")).to_be_visible()
            box = await screen.locator("#qrcode svg").bounding_box()
            assert box is not None and box["width"] >= 150 and box["height"] >= 150
            await assert_time_left(screen.locator("#countdown"), asked_at)
            await screen.screenshot(path=tmp_path / "desktop-cashier.png", full_page=True)

            async with server.client() as scanner:
                assert (await scanner.post(sandbox_path(desk_trade_no))).status_code == 303
            await expect(screen).to_have_url(re.compile(rf"^{re.escape(shop.url)}/return\?"), timeout=6000)
            desk_back = returned_params(screen.url, shop.url)
            assert desk_back["sign"] == plugin_sign(desk_back, merchant.key)
            assert desk_back["trade_no"] == desk_trade_no
        finally:
            await browser.close()

    await eventually(lambda: len(shop.notifications()) == 2)
    by_order = {entry.params["trade_no"]: entry for entry in shop.notifications()}
    assert set(by_order) == {trade_no, desk_trade_no}
    assert all(entry.signature_ok for entry in by_order.values())


@pytest.mark.browser
async def test_a_personal_code_buyer_sees_the_exact_amount_and_returns_once_the_phone_saw_it(
    merchant, shop, worker, database_url, tmp_path
):
    """Two orders of 9.90 on one account: the second buyer must pay 9.91, and the cashier says so plainly."""
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        links = []
        for out_trade_no in ("QR-1", "QR-2"):
            params = order_params(merchant.pid, shop.url, out_trade_no, type="wxpay", money="9.90")
            links.append(f"{qr.url}/submit.php?{urlencode(signed(params, merchant.key))}")

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                desktop = await browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 800})
                first, second = await desktop.new_page(), await desktop.new_page()
                asked_at = time.monotonic()
                await first.goto(links[0])
                await second.goto(links[1])
                await expect(first.locator("#amount")).to_have_text("¥9.90")
                await expect(first.locator("#amount-warning")).to_have_count(0)
                await expect(second.locator("#amount")).to_have_text("¥9.91")
                await expect(second.locator("#amount-warning")).to_be_visible()
                await expect(second.locator("#amount-warning")).to_contain_text("订单金额 ¥9.90")
                await expect(second.locator("#qrcode svg")).to_be_visible()
                await assert_time_left(second.locator("#countdown"), asked_at)
                await second.screenshot(path=tmp_path / "qrpool-cashier.png", full_page=True)

                assert await phone.paid(WXPAY, 991) == {"code": 1, "msg": "成功"}
                await expect(second).to_have_url(re.compile(rf"^{re.escape(shop.url)}/return\?"), timeout=6000)
                back = returned_params(second.url, shop.url)
                assert back["sign"] == plugin_sign(back, merchant.key)
                assert (back["out_trade_no"], back["money"]) == ("QR-2", "9.90")
                assert first.url.startswith(f"{qr.url}/cashier/")  # the other buyer is still waiting to pay
            finally:
                await browser.close()


@pytest.mark.browser
async def test_another_site_cannot_frame_the_cashier(server, merchant, shop):
    """A page elsewhere that puts our cashier in a frame (to dress up the pay button) gets an empty frame."""
    async with server.client() as client:
        params = order_params(merchant.pid, shop.url, "B-FRAME", name="框架测试", clientip="203.0.113.9")
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    cashier_url = f"{server.url}{cashier_path(answer['trade_no'])}"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(user_agent=DESKTOP_UA)).new_page()
            await page.goto(cashier_url)
            await expect(page.locator("#product-name")).to_have_text("框架测试")  # the page itself shows

            await page.goto(f"{shop.url}/framing-page")
            await page.set_content(f'<iframe id="framed" src="{cashier_url}" width="800" height="600"></iframe>')
            framed = page.frame_locator("#framed")
            await expect(framed.locator("body")).to_be_attached()
            await expect(framed.locator("#product-name")).to_have_count(0)
        finally:
            await browser.close()
