"""A V免签 merchant's whole journey over real HTTP: order, pay on the sandbox, notification, return.

The shop (``tests/support/vmq.py``) checks every notification the way dujiaoka's Vpay driver
does, with its own MD5 code; the operator's test message goes through the real CLI.
"""

from __future__ import annotations

import pytest

from openepay.core.states import NotifyStatus
from tests.support.cli import openepay
from tests.support.links import trade_no_named
from tests.support.notify import delivery_log, settled
from tests.support.shop import Answer
from tests.support.vmq import NOTIFY_FIELDS, create, data_of, order_params, path, signed, vmq_answer
from tests.support.waiting import eventually


async def pay(client, order_id: str) -> None:  # type: ignore[no-untyped-def]
    assert (await client.post(f"/sandbox/pay/{order_id}")).status_code == 303


async def test_paid_order_notifies_the_shop_and_returns_the_buyer(server, merchant, vmq_shop, worker):
    shop = vmq_shop()
    params = order_params("FLOW-1", shop.url, price="7.09", param="order_sn=SN1&奥利奥", type="2")
    async with server.client() as client:
        data = data_of(await create(client, signed(params, merchant.key), merchant.pid))
        order_id = data["orderId"]
        assert shop.notifications() == []
        await pay(client, order_id)
        [notification] = await eventually(shop.notifications)
        checked = vmq_answer(await client.get(path("checkOrder", merchant.pid), params={"orderId": order_id}))
        back = await client.get(f"/cashier/{order_id}/return")

    assert notification.method == "GET" and notification.body == b""
    assert notification.headers["user-agent"] == "OpenEpay-Notify/1"
    assert list(notification.query) == NOTIFY_FIELDS
    assert notification.signature_ok is True
    received = notification.query
    assert {name: received[name] for name in NOTIFY_FIELDS[:-1]} == {
        "payId": "FLOW-1",
        "param": "order_sn=SN1&奥利奥",
        "type": "2",
        "price": "7.09",
        "reallyPrice": "7.10",
    }
    # Properly URL-encoded (V免签 sends the raw values, which cuts such a param short).
    assert "param=order_sn%3DSN1%26%E5%A5%A5" in notification.target
    assert back.status_code == 302
    assert back.headers["location"] == checked["data"]
    assert back.headers["location"] == f"{shop.url}/return?{notification.target.partition('?')[2]}"


@pytest.mark.parametrize("price", ["9.9", "9.90", "10", "0.1"])
async def test_the_notification_echoes_the_price_string_the_merchant_signed(server, merchant, vmq_shop, worker, price):
    shop = vmq_shop()
    params = order_params(f"P-{price}", shop.url, price=price, param=None)
    async with server.client() as client:
        order_id = data_of(await create(client, signed(params, merchant.key), merchant.pid))["orderId"]
        await pay(client, order_id)
    [notification] = await eventually(shop.notifications)
    assert notification.signature_ok is True
    assert (notification.query["price"], notification.query["param"]) == (price, "")
    assert notification.query["reallyPrice"] == f"{float(price):.2f}"


async def test_delivered_only_when_the_body_is_success(server, merchant, gateway, vmq_shop, worker):
    shop = vmq_shop(Answer(body=b"SUCCESS"), Answer(body=b"ok, success"), Answer(body=b"\r\n success \n"))
    async with server.client() as client:
        data = data_of(await create(client, signed(order_params("ACK-1", shop.url), merchant.key), merchant.pid))
        await pay(client, data["orderId"])
    task, attempts = await eventually(settled(gateway, trade_no_named(data["orderId"]), NotifyStatus.SUCCEEDED))
    assert [attempt.delivered for attempt in attempts] == [False, False, True]
    assert task.attempts == 3
    first, *_, last = shop.notifications()
    assert first.query == last.query and last.signature_ok


async def test_a_failing_shop_gets_the_same_notification_again(server, merchant, gateway, vmq_shop, worker):
    shop = vmq_shop(Answer(status=500, body=b"error"), Answer())
    async with server.client() as client:
        data = data_of(await create(client, signed(order_params("RETRY-1", shop.url), merchant.key), merchant.pid))
        await pay(client, data["orderId"])
    await eventually(settled(gateway, trade_no_named(data["orderId"]), NotifyStatus.SUCCEEDED))
    _, attempts = await delivery_log(gateway, trade_no_named(data["orderId"]))
    assert [(attempt.http_status, attempt.delivered) for attempt in attempts] == [(500, False), (200, True)]
    first, second = shop.notifications()
    assert first.target == second.target and first.signature_ok


async def test_a_browser_sent_by_a_plugin_pays_at_the_cashier(server, merchant, vmq_shop, worker):
    """dujiaoka's Vpay redirects the buyer to ``createOrder?...&isHtml=1``, a float price, ``param`` its order."""
    shop = vmq_shop()
    params = order_params("20240101120000123", shop.url, price="10", param="SN20240101", isHtml="1")
    params["returnUrl"] = f"{shop.url}/pay/vpay/return_url?order_id=SN20240101"
    async with server.client() as client:
        jump = await client.get(path("createOrder", merchant.pid), params=signed(params, merchant.key))
        assert jump.status_code == 302
        cashier = await client.get(jump.headers["location"])
        order_id = jump.headers["location"].rsplit("/", 1)[1]
        assert cashier.status_code == 200 and "10.00" in cashier.text
        await pay(client, order_id)
        [notification] = await eventually(shop.notifications)
        back = await client.get(f"/cashier/{order_id}/return")
    assert notification.signature_ok and notification.query["param"] == "SN20240101"
    assert back.headers["location"].startswith(f"{shop.url}/pay/vpay/return_url?order_id=SN20240101&payId=")


async def test_operator_test_notification_in_the_vmq_dialect(gateway, merchant, database_url, vmq_shop):
    shop = vmq_shop()
    result = await openepay(
        database_url,
        "notify",
        "test",
        str(merchant.pid),
        f"{shop.url}/notify",
        "--dialect",
        "vmq",
        OPENEPAY_NOTIFY_ALLOW_PRIVATE="1",
    )
    assert result.returncode == 0, result.stderr
    assert "acknowledged" in result.stdout
    [received] = shop.notifications()
    assert received.method == "GET" and received.signature_ok
    assert list(received.query) == NOTIFY_FIELDS
    assert received.query["payId"].startswith("OPENEPAY-TEST-")
    assert (received.query["price"], received.query["reallyPrice"]) == ("0.01", "0.01")
