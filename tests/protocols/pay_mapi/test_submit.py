"""``/pay/submit.php`` over real HTTP: the browser jump to the cashier, and readable error pages.

The request and its checks are ``mapi.php``'s; success sends the browser to the cashier (``/cashier/{handle}``)
with the channel's offer ready, an error is a page showing the seed's code and message.
"""

from __future__ import annotations

import html
import re

import httpx
import pytest
from sqlalchemy import select

from openepay.db.models import Order
from tests.support.links import cashier_path, trade_no_of
from tests.support.pay_mapi import SEED_MESSAGES, SHOP, SUBMIT, order_count, pay_params, signed

DESKTOP = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"}
PHONE = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"}
_MESSAGE = re.compile(r'<p class="message" id="message">(.*?)</p>', re.S)


async def submit(client, params: dict[str, str], method: str = "POST", headers=DESKTOP):  # type: ignore[no-untyped-def]
    if method == "GET":
        return await client.get(SUBMIT, params=params, headers=headers)
    return await client.post(SUBMIT, data=params, headers=headers)


def page_error(response: httpx.Response) -> tuple[int, str]:
    """``(code, rest)`` of the error page, which must show ``code: <the seed's message>``."""
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    match = _MESSAGE.search(response.text)
    assert match, response.text[:500]
    text = html.unescape(match.group(1)).strip()
    code_text, _, rest = text.partition(": ")
    code = int(code_text)
    assert rest.startswith(SEED_MESSAGES[code]), text
    return code, rest[len(SEED_MESSAGES[code]) :].strip()


def cashier_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text[:500]
    trade_no = trade_no_of(response.headers["location"])
    assert response.headers["location"] == cashier_path(trade_no)
    return trade_no


def request_for(merchant, out_trade_no: str, **overrides: str | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return signed(pay_params(merchant.pid, SHOP, out_trade_no, **overrides), merchant.key)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_success_sends_the_browser_to_the_cashier_with_the_qr_ready(server, merchant, gateway, method):
    async with server.client() as client:
        trade_no = cashier_of(await submit(client, request_for(merchant, f"B-{method}", money="7.09"), method))
        cashier = await client.get(cashier_path(trade_no), headers=DESKTOP)
    assert cashier.status_code == 200
    assert 'id="qrcode"' in cashier.text
    assert "7.10" in re.search(r'id="amount">(.*?)</div>', cashier.text, re.S).group(1)
    async with gateway.db.session() as session:
        order = (await session.scalars(select(Order).where(Order.trade_no == trade_no))).one()
    assert (order.dialect, order.status, order.pay_type, order.device) == ("pay_mapi", "paying", "wxpay", "pc")
    assert (order.money, order.pay_amount_fen) == ("7.09", 710)


async def test_a_phone_is_remembered_as_mobile(server, merchant, gateway):
    async with server.client() as client:
        trade_no = cashier_of(await submit(client, request_for(merchant, "B-2"), headers=PHONE))
    async with gateway.db.session() as session:
        assert await session.scalar(select(Order.device).where(Order.trade_no == trade_no)) == "mobile"


async def test_nothing_sent_is_missing_parameters(server):
    async with server.client() as client:
        assert page_error(await client.get(SUBMIT)) == (700, "(pid is required)")
        assert page_error(await client.post(SUBMIT)) == (700, "(pid is required)")


ERRORS = [
    ("missing", {"name": ""}, True, 700, "(name is required)"),
    ("merchant", {"pid": "99999"}, True, 800, ""),
    ("signature", {"money": "2.00"}, False, 701, ""),
    ("amount", {"money": "0.00"}, True, 704, ""),
    ("malformed", {"ext": "e" * 101}, True, 700, "(ext must be at most 100 characters)"),
    ("type", {"type": "bank"}, True, 901, "(type must be one of alipay, qqpay, wxpay)"),
    ("paused", {"money": "7.02"}, True, 702, ""),
    ("no-code", {"money": "7.03"}, True, 703, ""),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("change", "sign_after", "code", "detail"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS]
)
async def test_errors_are_pages_with_the_code_and_message(
    server, merchant, gateway, change, sign_after, code, detail, method
):
    base = pay_params(merchant.pid, SHOP, "E-1")
    params = signed({**base, **change}, merchant.key) if sign_after else {**signed(base, merchant.key), **change}
    async with server.client() as client:
        assert page_error(await submit(client, params, method)) == (code, detail)
    assert await order_count(gateway, merchant.pid) == 0


async def test_duplicate_order_number(server, merchant):
    params = request_for(merchant, "E-2")
    async with server.client() as client:
        cashier_of(await submit(client, params))
        assert page_error(await submit(client, params)) == (
            705,
            "(out_trade_no was already used; every order needs a new one)",
        )
        # The same number through mapi.php is the same merchant's same number.
        assert (await client.post("/pay/mapi.php", data=params)).json()["code"] == 705


async def test_refused_amount_leaves_the_number_free(server, merchant):
    async with server.client() as client:
        assert page_error(await submit(client, request_for(merchant, "E-3", money="7.03")))[0] == 703
        cashier_of(await submit(client, request_for(merchant, "E-3", money="7.05")))


async def test_no_channel_at_all(channelless_server, merchant, gateway):
    async with httpx.AsyncClient(base_url=channelless_server.url, timeout=10) as client:
        response = await submit(client, request_for(merchant, "E-4"), "GET")
    assert page_error(response) == (901, "(no channel serves wxpay at the moment)")
    assert await order_count(gateway, merchant.pid) == 0
