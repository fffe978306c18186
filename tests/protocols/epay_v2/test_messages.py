"""V2 notifications as messages: only for paid orders, acknowledged like V1, and a marked test message."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from openepay.core.states import OrderStatus
from openepay.db.models import Order
from openepay.protocols.epay_v2.messages import EpayV2Messages
from tests.support.epay_v2 import platform_signed
from tests.support.orders import unsaved_order


def paid_order(**overrides: object) -> Order:
    """Vector C's order, for a shop whose own URLs carry a query string and a fragment."""
    urls = {
        "notify_url": "https://shop.example.com/notify.php?site=7",
        "return_url": "https://shop.example.com/return.php#/done",
    }
    return unsaved_order("epay_v2", **{**urls, **overrides})


@pytest.fixture
def messages(gateway) -> EpayV2Messages:
    return EpayV2Messages(gateway.db, gateway.box)


@pytest.mark.parametrize("status", [OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.CLOSED])
async def test_only_paid_orders_are_ever_signed_as_success(messages, status):
    with pytest.raises(ValueError):
        await messages.notification(paid_order(status=status), "key")
    with pytest.raises(ValueError):
        await messages.return_url(paid_order(status=status), "key")


@pytest.mark.parametrize("status", [OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED])
async def test_refunded_orders_were_paid(messages, platform_public, status):
    message = await messages.notification(paid_order(status=status), "key")
    assert dict(parse_qsl(urlsplit(message.url).query))["trade_status"] == "TRADE_SUCCESS"


async def test_merchant_urls_keep_their_own_query_and_fragment(messages, platform_public):
    order = paid_order(channel_trade_no="SB123", buyer="buyer@example.com")
    message = await messages.notification(order, "key")
    assert message.method == "GET" and message.form is None
    assert message.url.startswith("https://shop.example.com/notify.php?site=7&pid=1000&trade_no=")
    params = dict(parse_qsl(urlsplit(message.url).query))
    assert params["api_trade_no"] == "SB123" and params["buyer"] == "buyer@example.com"
    # The merchant's own "site" is theirs, not ours: the signature covers only what we added.
    assert platform_signed(platform_public, {k: v for k, v in params.items() if k != "site"})
    back = await messages.return_url(order, "key")
    assert back is not None
    assert back.startswith("https://shop.example.com/return.php?pid=1000&") and back.endswith("#/done")
    assert await messages.return_url(paid_order(return_url=None), "key") is None


@pytest.mark.parametrize(
    "body, delivered",
    [
        (b"success", True),
        (b"SUCCESS", True),
        (b'{"state":"Success","msg":"ok"}', True),
        (b"fail", False),
        (b"", False),
        (b"succes", False),
        (b"sUccess", False),
    ],
)
def test_acknowledged_like_rainbow(messages, body, delivered):
    assert messages.acknowledged(body) is delivered


async def test_test_notification_is_marked_and_platform_signed(messages, platform_public):
    message = await messages.test_notification(1000, "key", "https://shop.example.com/notify", "20260101120000")
    params = dict(parse_qsl(urlsplit(message.url).query))
    assert params["trade_status"] == "TEST_NOTIFY"
    assert params["trade_no"] == "TEST20260101120000"
    assert params["out_trade_no"] == "OPENEPAY-TEST-20260101120000"
    assert params["sign_type"] == "RSA"
    assert platform_signed(platform_public, params)
