"""The dialect's notification, return redirect and test message, byte for byte.

Signatures are checked with the merchant-side code in ``tests/support/vmq.py``, never with the
gateway's own signing code; the vectors are §7.4's.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from openepay.core.states import OrderStatus
from openepay.db.models import Order
from openepay.protocols.vmq.messages import VmqMessages
from tests.support.orders import unsaved_order
from tests.support.vmq import NOTIFY_FIELDS, VECTOR_KEY, notify_sign

MESSAGES = VmqMessages()


def vector_order(**overrides: object) -> Order:
    """§7.4's order: payId A20240101001, param uid=42, WeChat Pay, asked 9.90 (as ``money``), paid 9.91."""
    values: dict[str, object] = {
        "merchant_pid": 1001,
        "out_trade_no": "A20240101001",
        "pay_type": "wxpay",
        "name": "订单 A20240101001",
        "money": "9.90",
        "amount_fen": 990,
        "pay_amount_fen": 991,
        "paid_fen": 991,
        "param": "uid=42",
        "attrs": {"type": "1"},
        "notify_url": "https://shop.example.com/vpay/notify",
        "return_url": "https://shop.example.com/vpay/return",
    }
    return unsaved_order("vmq", **{**values, **overrides})


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)


@pytest.mark.parametrize(
    "price, sign", [("9.9", "b6a6bd789d85d06d65bba68863039f73"), ("9.90", "fff77198dabc012aa2c2e677724dbe38")]
)
async def test_notification_is_a_get_with_the_vector_signature(price, sign):
    message = await MESSAGES.notification(vector_order(money=price), VECTOR_KEY)
    assert (message.method, message.form) == ("GET", None)
    assert message.url == (
        "https://shop.example.com/vpay/notify"
        f"?payId=A20240101001&param=uid%3D42&type=1&price={price}&reallyPrice=9.91&sign={sign}"
    )
    received = dict(query_of(message.url))
    assert notify_sign(received, VECTOR_KEY) == received["sign"] == sign


async def test_values_are_url_encoded_and_the_merchants_query_kept():
    order = vector_order(
        param="a=1&b=奥利奥 x",
        notify_url="https://shop.example.com/notify?gateway=vmq#frag",
        money="12",
        amount_fen=1200,
    )
    order.pay_amount_fen = order.paid_fen = 1200
    message = await MESSAGES.notification(order, VECTOR_KEY)
    assert message.url.startswith("https://shop.example.com/notify?gateway=vmq&payId=A20240101001&param=a%3D1%26b%3D")
    assert message.url.endswith("#frag")
    pairs = query_of(message.url.partition("#")[0])
    assert [name for name, _ in pairs] == ["gateway", *NOTIFY_FIELDS]
    received = dict(pairs)
    assert (received["param"], received["price"], received["reallyPrice"]) == ("a=1&b=奥利奥 x", "12", "12.00")
    assert notify_sign(received, VECTOR_KEY) == received["sign"]


async def test_an_empty_param_is_sent_empty_and_type_is_the_merchants_code():
    order = vector_order(param="", pay_type="alipay", attrs={"type": "2"})
    received = dict(query_of((await MESSAGES.notification(order, VECTOR_KEY)).url))
    assert (received["param"], received["type"]) == ("", "2")
    assert notify_sign(received, VECTOR_KEY) == received["sign"]


async def test_really_price_falls_back_to_the_amount_asked_of_the_buyer():
    """An order confirmed without a recorded payment amount (by hand, say) reports what the buyer was asked."""
    received = dict(query_of((await MESSAGES.notification(vector_order(paid_fen=None), VECTOR_KEY)).url))
    assert received["reallyPrice"] == "9.91"


async def test_unpaid_orders_are_never_notified():
    for status in (OrderStatus.PAYING, OrderStatus.CLOSED, OrderStatus.CREATED):
        with pytest.raises(ValueError):
            await MESSAGES.notification(vector_order(status=status), VECTOR_KEY)


async def test_return_url_carries_the_same_signed_fields():
    order = vector_order(return_url="https://shop.example.com/pay/vpay/return_url?order_id=SN1")
    back = await MESSAGES.return_url(order, VECTOR_KEY)
    notified = await MESSAGES.notification(order, VECTOR_KEY)
    assert back is not None and back.startswith("https://shop.example.com/pay/vpay/return_url?order_id=SN1&payId=")
    assert query_of(back)[1:] == query_of(notified.url)
    assert await MESSAGES.return_url(vector_order(return_url=None), VECTOR_KEY) is None


def test_only_exactly_success_is_an_acknowledgement():
    assert MESSAGES.acknowledged(b"success")
    assert MESSAGES.acknowledged(b"\r\n success \n")
    for body in (b"SUCCESS", b"Success", b"ok", b"success!", b"<html>success</html>", b"fail", b""):
        assert not MESSAGES.acknowledged(body), body


async def test_test_message_is_signed_and_names_no_real_order():
    message = await MESSAGES.test_notification(1001, VECTOR_KEY, "https://shop.example.com/notify", "20240101120000")
    assert message.method == "GET"
    pairs = query_of(message.url)
    assert [name for name, _ in pairs] == NOTIFY_FIELDS
    received = dict(pairs)
    assert received["payId"] == received["param"] == "OPENEPAY-TEST-20240101120000"
    assert (received["type"], received["price"], received["reallyPrice"]) == ("2", "0.01", "0.01")
    assert notify_sign(received, VECTOR_KEY) == received["sign"]
