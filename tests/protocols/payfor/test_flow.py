"""A payFor merchant's whole journey over real HTTP: order, pay on the sandbox, notification, return.

The shop checks ``sign`` with its own code (``tests/support/payfor.py``), as a merchant's notify
script would; the vectors of §7.2 go through the real endpoint and the real notification.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from openepay.core.states import NotifyStatus
from openepay.db.models import Order
from tests.support.answers import json_answer
from tests.support.cli import openepay
from tests.support.database import merchant_with_key, stored_order
from tests.support.links import cashier_path, sandbox_path, trade_no_of
from tests.support.notify import delivery_log, settled
from tests.support.payfor import SEED_B, TOKEN, PayForShop, keyed, payfor_params, send
from tests.support.shop import Answer, started_shops
from tests.support.waiting import eventually

NOTIFY_FIELDS = ["pay_num", "transaction_id", "order_id", "price", "order_uid", "code", "key", "sign"]


@pytest.fixture
def payfor_shop(merchant) -> Iterator:  # type: ignore[no-untyped-def]
    """Start payFor shops answering from a script; ``token`` defaults to the ``merchant`` fixture's key."""
    with started_shops() as start:

        def payfor_shop(*answers: Answer, delay: float = 0.0, token: str | None = None) -> PayForShop:
            return start(PayForShop(token or merchant.key, answers, delay))

        yield payfor_shop


async def create_and_pay(server, params: dict[str, str], *, as_json: bool = True) -> str:  # type: ignore[no-untyped-def]
    """Place the order as a shop's server (JSON) or through the buyer's browser (the form), then pay it."""
    async with server.client() as client:
        if as_json:
            pay_num = json_answer(await send(client, params, as_json=True))["data"]["pay_num"]
        else:
            page = await send(client, params, as_json=False)
            assert page.status_code == 303
            pay_num = trade_no_of(page.headers["location"])
        assert (await client.post(sandbox_path(pay_num))).status_code == 303
    return pay_num


async def test_paid_order_notifies_the_shop_and_returns_the_buyer(server, merchant, payfor_shop, worker):
    shop = payfor_shop()
    params = keyed(payfor_params(merchant.pid, shop.url, "FLOW-1"), merchant.key)
    pay_num = await create_and_pay(server, params, as_json=False)

    [notification] = await eventually(shop.notifications)
    assert notification.method == "POST" and notification.query == {}
    assert list(notification.form) == NOTIFY_FIELDS
    assert notification.signature_ok
    form = notification.form
    assert (form["pay_num"], form["order_id"], form["price"], form["order_uid"]) == (
        pay_num,
        "FLOW-1",
        "9.90",
        "user42",
    )
    assert form["transaction_id"].startswith("SB") and form["code"] == "0000"
    assert form["key"] == params["key"]

    async with server.client() as client:
        back = await eventually(lambda: _redirected(client, f"{cashier_path(pay_num)}/return"))
        again = await client.get(f"{cashier_path(pay_num)}/return")
    target = urlsplit(back.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{shop.url}/return"
    assert dict(parse_qsl(target.query, keep_blank_values=True)) == form
    assert again.headers["location"] == back.headers["location"]


async def _redirected(client, path: str):  # type: ignore[no-untyped-def]
    response = await client.get(path)
    return response if response.status_code == 302 else None


SHOP_THINKS = 0.5


async def test_the_buyer_returns_only_after_the_notification_reached_the_shop(server, merchant, payfor_shop, worker):
    shop = payfor_shop(delay=SHOP_THINKS)
    params = keyed(payfor_params(merchant.pid, shop.url, "FLOW-2"), merchant.key)
    pay_num = await create_and_pay(server, params, as_json=False)

    waiting_pages = 0
    async with server.client() as client:
        deadline = time.monotonic() + 30
        while True:
            response = await client.get(f"{cashier_path(pay_num)}/return")
            answered_at = time.monotonic()
            if response.status_code == 302:
                break
            assert response.status_code == 200 and "正在通知商户" in response.text
            waiting_pages += 1
            assert time.monotonic() < deadline, "the buyer never went back to the shop"
            await asyncio.sleep(0.05)  # the next poll, as the page's refresh would

    [notification] = shop.notifications()
    assert waiting_pages > 0
    # The shop acknowledged SHOP_THINKS seconds after the notification reached it; only then could the
    # gateway send the buyer back, however slow the machine.
    assert answered_at - notification.at >= SHOP_THINKS, answered_at - notification.at
    assert response.headers["location"].startswith(f"{shop.url}/return?")


async def test_a_buyer_of_a_json_order_is_not_sent_back(server, merchant, payfor_shop, worker):
    """The seed: "用 Json 方式发起支付的，不会有主动跳转"; the shop watches its own order instead."""
    shop = payfor_shop()
    pay_num = await create_and_pay(server, keyed(payfor_params(merchant.pid, shop.url, "FLOW-J"), merchant.key))
    [notification] = await eventually(shop.notifications)
    assert notification.form["pay_num"] == pay_num
    async with server.client() as client:
        page = await client.get(f"{cashier_path(pay_num)}/return")
    assert page.status_code == 200 and "location" not in page.headers
    assert f"订单 {pay_num} 已支付" in page.text


async def test_delivered_only_when_the_body_is_success(server, merchant, gateway, payfor_shop, worker):
    shop = payfor_shop(Answer(body=b"SUCCESS"), Answer(body=b"ok, success"), Answer(body=b"\r\n success \n"))
    params = keyed(payfor_params(merchant.pid, shop.url, "FLOW-3"), merchant.key)
    pay_num = await create_and_pay(server, params)

    task, attempts = await eventually(settled(gateway, pay_num, NotifyStatus.SUCCEEDED))
    assert [attempt.delivered for attempt in attempts] == [False, False, True]
    assert len(shop.notifications()) == 3
    assert all(entry.signature_ok and entry.form["code"] == "0000" for entry in shop.notifications())
    assert task.attempts == 3


async def test_the_notification_of_an_order_without_order_uid(server, merchant, payfor_shop, worker):
    shop = payfor_shop()
    params = keyed(payfor_params(merchant.pid, shop.url, "FLOW-4", order_uid=None, price="10"), merchant.key)
    pay_num = await create_and_pay(server, params)
    [notification] = await eventually(shop.notifications)
    assert list(notification.form) == [name for name in NOTIFY_FIELDS if name != "order_uid"]
    assert (notification.form["pay_num"], notification.form["price"]) == (pay_num, "10")
    assert notification.signature_ok


async def test_an_unpaid_order_is_never_notified(server, merchant, gateway, payfor_shop, worker):
    shop = payfor_shop()
    params = keyed(payfor_params(merchant.pid, shop.url, "FLOW-5"), merchant.key)
    async with server.client() as client:
        pay_num = json_answer(await send(client, params, as_json=True))["data"]["pay_num"]
        back = await client.get(f"{cashier_path(pay_num)}/return")
    assert (back.status_code, back.headers["location"]) == (302, cashier_path(pay_num))
    # A paid order of the same shop goes out while the unpaid one stays silent.
    other = await create_and_pay(server, keyed(payfor_params(merchant.pid, shop.url, "FLOW-6"), merchant.key))
    [notification] = await eventually(shop.notifications)
    assert notification.form["pay_num"] == other
    await eventually(settled(gateway, other, NotifyStatus.SUCCEEDED))
    assert [entry.form["pay_num"] for entry in shop.notifications()] == [other]


# --- The §7.2 vectors through the real endpoint ------------------------------------------------------


async def paid_vector_order(server, gateway, params: dict[str, str]) -> Order:  # type: ignore[no-untyped-def]
    async with server.client() as client:
        answer = json_answer(await send(client, params, as_json=True))
        assert answer["code"] == 1, answer
        assert (await client.post(sandbox_path(answer["data"]["pay_num"]))).status_code == 303
    return await stored_order(gateway, answer["data"]["pay_num"])


@pytest.mark.parametrize(
    "extra, key",
    [({}, "9136f370a034c94ffb0b847ce9d0ee68"), ({"order_uid": "user42"}, "558c156ec78cebe25f07af0a31960019")],
    ids=["without-order-uid", "with-order-uid"],
)
async def test_vector_keys_are_accepted_and_the_notification_carries_the_vector_sign(server, gateway, extra, key):
    await merchant_with_key(gateway, 10001, TOKEN)
    order = await paid_vector_order(server, gateway, {**SEED_B, **extra, "key": key})
    message = await gateway.dialects.for_order(order).notification(order, TOKEN)
    assert message.form["key"] == key
    assert message.form["sign"] == "410830506edb7680b1801d3796fd805e"


async def test_vector_price_trap_through_the_endpoint(server, gateway):
    await merchant_with_key(gateway, 10001, TOKEN)
    async with server.client() as client:
        # The §7.2 key was computed over 9.90: sending 9.9 with it fails.
        trap = {**SEED_B, "price": "9.9", "key": "9136f370a034c94ffb0b847ce9d0ee68"}
        assert json_answer(await send(client, trap, as_json=True)) == {"code": -2, "msg": "签名(key)校验失败"}
    order = await paid_vector_order(server, gateway, keyed({**SEED_B, "price": "9.9"}, TOKEN))
    message = await gateway.dialects.for_order(order).notification(order, TOKEN)
    assert (message.form["price"], message.form["sign"]) == ("9.9", "1edd0a699e4507ca624c3ad99b82f364")


async def test_a_failing_shop_gets_the_same_notification_again(server, merchant, gateway, payfor_shop, worker):
    shop = payfor_shop(Answer(status=500, body=b"error"), Answer())
    pay_num = await create_and_pay(server, keyed(payfor_params(merchant.pid, shop.url, "FLOW-7"), merchant.key))
    await eventually(settled(gateway, pay_num, NotifyStatus.SUCCEEDED))
    task, attempts = await delivery_log(gateway, pay_num)
    assert [(a.http_status, a.delivered) for a in attempts] == [(500, False), (200, True)]
    first, second = shop.notifications()
    assert first.form == second.form and first.signature_ok


async def test_operator_test_notification_in_the_payfor_dialect(gateway, merchant, database_url, payfor_shop):
    shop = payfor_shop()
    url = f"{shop.url}/notify"
    result = await openepay(
        database_url, "notify", "test", str(merchant.pid), url, "--dialect", "payfor", OPENEPAY_NOTIFY_ALLOW_PRIVATE="1"
    )
    assert result.returncode == 0, result.stderr
    assert "acknowledged" in result.stdout
    [received] = shop.notifications()
    form = received.form
    assert received.method == "POST" and received.signature_ok
    assert list(form) == [name for name in NOTIFY_FIELDS if name != "order_uid"]
    assert form["order_id"].startswith("OPENEPAY-TEST-") and (form["code"], form["price"]) == ("TEST", "0.01")
