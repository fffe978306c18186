"""The dialect's notification, return redirect and test message, byte for byte.

Signatures are checked with the merchant-side implementation in ``support`` (the seed's rule),
never with the gateway's own signing code.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from openepay.core.states import OrderStatus
from openepay.db.models import Order
from openepay.protocols.pay_mapi.messages import PayMapiMessages
from tests.support.pay_mapi import notes_order, seed_sign

KEY = "k3yForTheP4yMapiDialect000000000"
MESSAGES = PayMapiMessages()
FIELD_ORDER = ["pid", "trade_no", "out_trade_no", "type", "name", "money", "trade_status"]


def paid_order(**overrides: object) -> Order:
    """The notes' order, paid with a cent more than asked (7.09 asked, 7.10 arrived)."""
    paid = {"name": "VIP 会员", "money": "7.09", "amount_fen": 709, "pay_amount_fen": 710, "paid_fen": 710}
    return notes_order(**{**paid, "param": "uid=42&x=y", **overrides})


async def test_notification_is_an_epay_get_with_ext_and_realmoney():
    message = await MESSAGES.notification(paid_order(), KEY)
    assert message.method == "GET"
    assert message.form is None
    url = urlsplit(message.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://shop.example.com/pay/notify"
    params = parse_qsl(url.query, keep_blank_values=True, strict_parsing=True)
    assert [name for name, _ in params] == [*FIELD_ORDER, "ext", "realmoney", "sign", "sign_type"]
    received = dict(params)
    assert received == {
        "pid": "1001",
        "trade_no": "2024010112000012345",
        "out_trade_no": "A20240101001",
        "type": "wxpay",
        "name": "VIP 会员",
        "money": "7.09",
        "trade_status": "TRADE_SUCCESS",
        "ext": "uid=42&x=y",
        "realmoney": "7.10",
        "sign": seed_sign(received, KEY),
        "sign_type": "MD5",
    }
    # PHP's http_build_query encoding: a space is "+", & and = inside values are escaped.
    assert "name=VIP+%E4%BC%9A%E5%91%98" in url.query
    assert "ext=uid%3D42%26x%3Dy" in url.query


async def test_money_is_the_merchants_string_and_realmoney_what_arrived():
    received = dict(parse_qsl(urlsplit((await MESSAGES.notification(paid_order(money="7.090"), KEY)).url).query))
    assert (received["money"], received["realmoney"]) == ("7.090", "7.10")
    # No recorded payment amount (confirmed by hand, say): the amount the buyer was asked for.
    order = paid_order(money="12", amount_fen=1200, pay_amount_fen=1200, paid_fen=None)
    received = dict(parse_qsl(urlsplit((await MESSAGES.notification(order, KEY)).url).query))
    assert (received["money"], received["realmoney"]) == ("12", "12.00")
    assert received["sign"] == seed_sign(received, KEY)


@pytest.mark.parametrize(("ext", "present"), [(None, False), ("", False), ("0", True), (" ", True)])
async def test_ext_only_when_given(ext, present):
    received = dict(parse_qsl(urlsplit((await MESSAGES.notification(paid_order(param=ext), KEY)).url).query, True))
    assert ("ext" in received) is present
    if present:
        assert received["ext"] == ext
    assert received["sign"] == seed_sign(received, KEY)


async def test_merchants_own_query_string_is_kept():
    order = paid_order(notify_url="https://shop.example.com/notify.php?gateway=openepay#frag")
    url = (await MESSAGES.notification(order, KEY)).url
    assert url.startswith("https://shop.example.com/notify.php?gateway=openepay&pid=1001&")
    assert url.endswith("&sign_type=MD5#frag")


@pytest.mark.parametrize("status", [OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.CLOSED])
async def test_only_paid_orders_are_ever_notified(status):
    with pytest.raises(ValueError, match="only paid orders are notified"):
        await MESSAGES.notification(paid_order(status=status), KEY)
    with pytest.raises(ValueError, match="only paid orders are notified"):
        await MESSAGES.return_url(paid_order(status=status), KEY)


@pytest.mark.parametrize("status", [OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED])
async def test_refunded_orders_were_paid(status):
    received = dict(parse_qsl(urlsplit((await MESSAGES.notification(paid_order(status=status), KEY)).url).query))
    assert received["trade_status"] == "TRADE_SUCCESS"


async def test_return_url_carries_the_same_signed_parameters():
    order = paid_order(return_url="https://shop.example.com/back?from=pay")
    back = urlsplit(await MESSAGES.return_url(order, KEY))
    notified = urlsplit((await MESSAGES.notification(order, KEY)).url)
    assert f"{back.scheme}://{back.netloc}{back.path}" == "https://shop.example.com/back"
    assert back.query == "from=pay&" + notified.query
    assert await MESSAGES.return_url(paid_order(return_url=None), KEY) is None
    assert await MESSAGES.return_url(paid_order(return_url=""), KEY) is None


@pytest.mark.parametrize(
    ("body", "acknowledged"),
    [
        (b"success", True),
        (b"SUCCESS", True),
        (b"Success", True),
        (b"<html><body>success</body></html>", True),
        (b"\xef\xbb\xbfsuccess\r\n", True),
        (b"fail", False),
        (b"", False),
        (b"ok", False),
        (b"sucess", False),
        (b"sUcCeSs", False),
    ],
)
def test_acknowledged_when_the_answer_says_success(body, acknowledged):
    assert MESSAGES.acknowledged(body) is acknowledged


async def test_test_message_is_signed_and_marked():
    message = await MESSAGES.test_notification(1001, KEY, "https://shop.example.com/notify", "20240101120000")
    assert message.method == "GET"
    url = urlsplit(message.url)
    received = dict(parse_qsl(url.query))
    assert url.path == "/notify"
    assert received["trade_status"] == "TEST_NOTIFY"
    assert received["out_trade_no"] == "OPENEPAY-TEST-20240101120000"
    assert received["trade_no"] == "TEST20240101120000"
    assert received["pid"] == "1001"
    assert {"money", "realmoney", "ext", "sign_type"} <= set(received)
    assert received["sign"] == seed_sign(received, KEY)


async def test_registered_for_the_dialect(gateway):
    messages = gateway.dialects.named("pay_mapi")
    assert isinstance(messages, PayMapiMessages)
    assert messages.return_after_notify is None


DOC_EXAMPLE = (
    "https://shop.example.com/pay/notify?pid=1001&trade_no=2024010112000012345&out_trade_no=A20240101001"
    "&type=wxpay&name=VIP&money=9.90&trade_status=TRADE_SUCCESS&ext=uid%3D42&realmoney=9.91"
    "&sign=7dd701fa9248677c5208f222e1dd9432&sign_type=MD5"
)


async def test_example_notification_in_the_docs():
    """docs/dialects.md shows this message (key epaykey123); its sign is md5 of the sorted fields + key."""
    order = paid_order(name="VIP", money="9.90", amount_fen=990, pay_amount_fen=991, paid_fen=991, param="uid=42")
    assert (await MESSAGES.notification(order, "epaykey123")).url == DOC_EXAMPLE
