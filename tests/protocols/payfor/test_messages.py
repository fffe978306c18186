"""The payFor notification, return and test message, field for field (seed 002; vectors §7.2)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from openepay.core.states import OrderStatus
from openepay.db.models import Order
from openepay.protocols.payfor.messages import PayForMessages
from tests.support.orders import unsaved_order
from tests.support.payfor import TOKEN, merchant_key, shop_sign

REQUEST_KEY = "558c156ec78cebe25f07af0a31960019"


def vector_order(**overrides: object) -> Order:
    """§7.2's order, paid: the request vector with ``order_uid`` (hence ``REQUEST_KEY``)."""
    vector: dict[str, object] = {
        "merchant_pid": 10001,
        "out_trade_no": "A20240101001",
        "pay_type": "wxpay",
        "name": "VIP月卡",
        "money": "9.90",
        "param": "user42",
        "notify_url": "https://shop.example.com/pay/notify",
        "return_url": "https://shop.example.com/pay/return",
        "channel_trade_no": "SB0123456789",
        "attrs": {"key": REQUEST_KEY, "type": "1"},
    }
    return unsaved_order("payfor", **{**vector, **overrides})


def messages() -> PayForMessages:
    return PayForMessages(None, None)  # type: ignore[arg-type]


async def test_notification_is_a_signed_post_form_in_the_seeds_order():
    message = await messages().notification(vector_order(), TOKEN)
    assert (message.method, message.url) == ("POST", "https://shop.example.com/pay/notify")
    assert list(message.form.items()) == [
        ("pay_num", "2024010112000012345"),
        ("transaction_id", "SB0123456789"),
        ("order_id", "A20240101001"),
        ("price", "9.90"),
        ("order_uid", "user42"),
        ("code", "0000"),
        ("key", REQUEST_KEY),
        ("sign", "410830506edb7680b1801d3796fd805e"),
    ]


async def test_the_price_is_signed_as_the_merchant_sent_it():
    message = await messages().notification(vector_order(money="9.9"), TOKEN)
    assert message.form["price"] == "9.9"
    assert message.form["sign"] == "1edd0a699e4507ca624c3ad99b82f364"


async def test_order_uid_only_when_sent_and_transaction_id_always():
    message = await messages().notification(vector_order(param=None, channel_trade_no=None), TOKEN)
    assert list(message.form) == ["pay_num", "transaction_id", "order_id", "price", "code", "key", "sign"]
    assert message.form["transaction_id"] == ""


@pytest.mark.parametrize("status", [OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED])
async def test_a_paid_then_refunded_order_is_still_reported_paid(status):
    message = await messages().notification(vector_order(status=status), TOKEN)
    assert message.form["code"] == "0000"


@pytest.mark.parametrize("status", [OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.CLOSED])
async def test_only_paid_orders_are_ever_notified(status):
    # The sign does not cover code: a signed message about an unpaid order could be restyled as paid.
    with pytest.raises(ValueError, match="only paid orders"):
        await messages().notification(vector_order(status=status), TOKEN)
    with pytest.raises(ValueError, match="only paid orders"):
        await messages().return_url(vector_order(status=status), TOKEN)


async def test_return_url_carries_the_same_fields():
    order = vector_order(return_url="https://shop.example.com/pay/return?from=pay#top")
    url = await messages().return_url(order, TOKEN)
    parts = urlsplit(url)
    assert (parts.netloc, parts.path, parts.fragment) == ("shop.example.com", "/pay/return", "top")
    query = dict(parse_qsl(parts.query))
    assert query.pop("from") == "pay"
    assert query == dict((await messages().notification(order, TOKEN)).form)


@pytest.mark.parametrize("body", [b"success", b"success\n", b"  success\r\n", b"\tsuccess "])
def test_acknowledged_by_success_alone(body):
    assert messages().acknowledged(body)


@pytest.mark.parametrize(
    "body",
    [b"", b"SUCCESS", b"Success", b"success!", b"ok", b"fail", b"successsuccess", b"<p>success</p>", b"not success"],
)
def test_anything_else_is_not_an_acknowledgement(body):
    assert not messages().acknowledged(body)


async def test_test_notification_is_marked_and_correctly_signed():
    url = "https://shop.example.com/pay/notify"
    message = await messages().test_notification(10001, TOKEN, url, "20240101120000")
    assert (message.method, message.url) == ("POST", url)
    form = dict(message.form)
    assert list(form) == ["pay_num", "transaction_id", "order_id", "price", "code", "key", "sign"]
    assert form["order_id"] == "OPENEPAY-TEST-20240101120000"
    assert (form["code"], form["price"]) == ("TEST", "0.01")
    assert form["sign"] == shop_sign(form, TOKEN)
    request = {"uid": "10001", "price": "0.01", "type": "2", "notify_url": url, "order_id": form["order_id"]}
    assert form["key"] == merchant_key(request, TOKEN)
