"""Debian's Chromium through Playwright, as the browser tests launch it, and what they check of a page."""

from __future__ import annotations

from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# The console speaks Chinese unless the browser prefers English: these browsers are set up in Chinese.
CHINESE = {"locale": "zh-CN"}
PHONE = {
    **CHINESE,
    "user_agent": IPHONE_UA,
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}


async def overflow_px(page: Page) -> int:
    """How far the page is wider than the screen (0 when nothing sticks out sideways)."""
    return await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
