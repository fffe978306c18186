"""A V2 merchant's whole journey over real HTTP: create, pay on the sandbox, get notified, return."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

from openepay.core.states import NotifyStatus
from tests.support.epay_v2 import order_fields, platform_signed
from tests.support.links import cashier_path, sandbox_path
from tests.support.merchant import FakeMerchant
from tests.support.notify import Answer, settled
from tests.support.waiting import eventually

NOTIFICATION_ORDER = [
    "pid", "trade_no", "out_trade_no", "type", "name", "money", "trade_status",
    "api_trade_no", "buyer", "param", "timestamp", "sign_type", "sign",
]  # fmt: skip


async def test_paid_order_notifies_in_v2_and_returns_the_buyer_with_the_same_signed_fields(
    server, v2, worker, platform_public
):
    shop = FakeMerchant().start()
    try:
        fields = order_fields(shop.url, "FLOW-1", money="12.5", param='{"uid":42} & more', device="mobile")
        async with server.client() as client:
            answer = (await client.post("/api/pay/create", data=v2.request(fields))).json()
            assert answer["code"] == 0 and answer["pay_type"] == "jump"
            assert platform_signed(platform_public, answer)
            trade_no = answer["trade_no"]
            assert (await client.post(sandbox_path(trade_no))).status_code == 303

            [notification] = await eventually(lambda: shop.notifications())
            received_at = time.time()
            back = await client.get(f"{cashier_path(trade_no)}/return")
    finally:
        shop.stop()

    assert notification.method == "GET"
    params = notification.params
    assert list(params) == NOTIFICATION_ORDER
    assert params == {
        "pid": str(v2.pid),
        "trade_no": trade_no,
        "out_trade_no": "FLOW-1",
        "type": "alipay",
        "name": "VIP会员",
        "money": "12.5",
        "trade_status": "TRADE_SUCCESS",
        "api_trade_no": params["api_trade_no"],
        "buyer": "sandbox-buyer",
        "param": '{"uid":42} & more',
        "timestamp": params["timestamp"],
        "sign_type": "RSA",
        "sign": params["sign"],
    }
    assert params["api_trade_no"].startswith("SB")
    assert abs(int(params["timestamp"]) - received_at) <= 5
    assert platform_signed(platform_public, params)
    assert not platform_signed(platform_public, {**params, "money": "125"})

    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{shop.url}/return"
    returned = dict(parse_qsl(target.query))
    assert list(returned) == NOTIFICATION_ORDER
    assert {k: v for k, v in returned.items() if k not in ("timestamp", "sign")} == {
        k: v for k, v in params.items() if k not in ("timestamp", "sign")
    }
    assert platform_signed(platform_public, returned)


async def test_optional_fields_are_left_out_when_empty(server, v2, worker, platform_public):
    shop = FakeMerchant(reply=b'{"state":"Success"}').start()
    try:
        fields = order_fields(shop.url, "FLOW-2", param="0", return_url=None)
        async with server.client() as client:
            trade_no = (await client.post("/api/pay/create", data=v2.request(fields))).json()["trade_no"]
            assert (await client.post(sandbox_path(trade_no))).status_code == 303
            [notification] = await eventually(lambda: shop.notifications())
            back = await client.get(f"{cashier_path(trade_no)}/return")
    finally:
        shop.stop()
    assert "param" not in notification.params and notification.params["money"] == "1.00"
    assert platform_signed(platform_public, notification.params)
    # No return_url: the buyer stays on our "paid" page.
    assert back.status_code == 200 and f"订单 {trade_no} 已支付" in back.text


async def test_each_retry_is_signed_again_with_a_fresh_timestamp(
    server, gateway, v2, scripted_shop, worker, platform_public
):
    # Timestamps count seconds: a retry more than a second later must carry a later one.
    await gateway.merchants.update(v2.pid, notify_retry_delays=[1.1])
    shop = scripted_shop(Answer(status=500, body=b"error"), Answer(body=b"SUCCESS"))
    async with server.client() as client:
        fields = order_fields(shop.url, "RETRY-1")
        trade_no = (await client.post("/api/pay/create", data=v2.request(fields))).json()["trade_no"]
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
    task, attempts = await eventually(settled(gateway, trade_no, NotifyStatus.SUCCEEDED))
    assert len(attempts) == len(shop.received) == 2
    first, second = (entry.params for entry in shop.received)
    assert int(first["timestamp"]) < int(second["timestamp"])
    assert first["sign"] != second["sign"]
    assert {k: v for k, v in first.items() if k not in ("timestamp", "sign")} == {
        k: v for k, v in second.items() if k not in ("timestamp", "sign")
    }
    for entry in shop.received:
        assert platform_signed(platform_public, entry.params)
        assert entry.params["trade_status"] == "TRADE_SUCCESS"
    # Resent as it was, the first attempt would be refused by an SDK once 300 s have passed.
    assert not platform_signed(platform_public, first, now=int(first["timestamp"]) + 301)


async def test_unpaid_orders_return_nothing_signed(server, v2):
    async with server.client() as client:
        fields = order_fields("https://shop.example.com", "UNPAID-1")
        trade_no = (await client.post("/api/pay/create", data=v2.request(fields))).json()["trade_no"]
        back = await client.get(f"{cashier_path(trade_no)}/return")
    assert back.status_code == 302 and back.headers["location"] == cashier_path(trade_no)
