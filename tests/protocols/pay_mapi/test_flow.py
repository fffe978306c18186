"""A ``/pay/`` merchant's whole journey over real HTTP: create, pay on the sandbox, get notified, return.

The shop is a real HTTP server on loopback; it checks every notification with the seed's
signing rule as implemented in ``support`` (independently of the gateway's code).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlsplit

from openepay.core.states import NotifyStatus
from tests.support.cli import clean_env, run_cli
from tests.support.links import cashier_path, sandbox_path, trade_no_of
from tests.support.merchant import FakeMerchant
from tests.support.notify import Answer, settled
from tests.support.pay_mapi import MAPI, SUBMIT, call, code_of, pay_params, seed_sign, signed, success_of
from tests.support.settings import TEST_SECRET
from tests.support.waiting import eventually

NOTIFY_FIELDS = ["pid", "trade_no", "out_trade_no", "type", "name", "money", "trade_status"]


def returned_params(response, shop_url: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 302, response.text[:300]
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{shop_url}/return"
    return dict(parse_qsl(target.query, keep_blank_values=True))


async def test_mapi_order_paid_notifies_the_merchant_and_returns_the_buyer(server, merchant, shop, worker):
    params = pay_params(merchant.pid, shop.url, "FLOW-1", money="7.09", ext="userId=42 & more", name="An Oreo 奥利奥")
    async with server.client() as client:
        answer = success_of(await call(client, signed(params, merchant.key)))
        assert answer["money"] == "7.10"
        trade_no = answer["trade_no"]
        # Before payment nothing is sent, and the return leads back to the cashier.
        early = await client.get(f"{cashier_path(trade_no)}/return")
        assert (early.status_code, early.headers["location"]) == (302, cashier_path(trade_no))
        assert shop.notifications() == []

        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        [notification] = await eventually(lambda: shop.notifications())
        back = await client.get(f"{cashier_path(trade_no)}/return")

    received = notification.params
    assert notification.method == "GET"
    assert received == {
        "pid": str(merchant.pid),
        "trade_no": trade_no,
        "out_trade_no": "FLOW-1",
        "type": "wxpay",
        "name": "An Oreo 奥利奥",
        "money": "7.09",
        "trade_status": "TRADE_SUCCESS",
        "ext": "userId=42 & more",
        "realmoney": "7.10",
        "sign": seed_sign(received, merchant.key),
        "sign_type": "MD5",
    }
    assert notification.signature_ok is True
    assert returned_params(back, shop.url) == received


async def test_submit_order_paid_without_ext(server, merchant, shop, worker):
    params = pay_params(merchant.pid, shop.url, "FLOW-2", money="0.5", type="qqpay", sitename=None)
    async with server.client() as client:
        jump = await client.get(SUBMIT, params=signed(params, merchant.key))
        assert jump.status_code == 302
        trade_no = trade_no_of(jump.headers["location"])
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        [notification] = await eventually(lambda: shop.notifications())
        back = await client.get(f"{cashier_path(trade_no)}/return")
    received = notification.params
    assert list(received) == [*NOTIFY_FIELDS, "realmoney", "sign", "sign_type"]
    assert (received["money"], received["realmoney"], received["type"]) == ("0.5", "0.50", "qqpay")
    assert received["sign"] == seed_sign(received, merchant.key)
    assert returned_params(back, shop.url) == received


async def test_notification_is_repeated_until_the_merchant_says_success(
    server, merchant, gateway, worker, scripted_shop
):
    shop = scripted_shop(Answer(body=b"fail"), Answer(status=503, body=b"busy"), Answer(body=b"<p>Success</p>"))
    params = pay_params(merchant.pid, shop.url, "FLOW-3", ext="e")
    async with server.client() as client:
        trade_no = success_of(await call(client, signed(params, merchant.key)))["trade_no"]
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
    task, attempts = await eventually(settled(gateway, trade_no, NotifyStatus.SUCCEEDED))
    assert len(attempts) == task.attempts == 3
    assert len(shop.received) == 3
    for entry in shop.received:
        assert entry.path == "/notify"
        assert entry.params["trade_status"] == "TRADE_SUCCESS"
        assert entry.params["sign"] == seed_sign(entry.params, merchant.key)
    # Each attempt is the same message.
    assert all(entry.params == shop.received[0].params for entry in shop.received)


async def test_paid_order_number_cannot_be_used_again(server, merchant, shop, worker):
    params = signed(pay_params(merchant.pid, shop.url, "FLOW-4"), merchant.key)
    async with server.client() as client:
        trade_no = success_of(await call(client, params))["trade_no"]
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        await eventually(lambda: shop.notifications())
        assert code_of(await call(client, params)) == 705
        assert code_of(await client.get(MAPI, params=params)) == 705
    assert len(shop.notifications()) == 1


async def test_cli_sends_the_dialects_test_message(gateway, merchant, database_url):
    shop = FakeMerchant(key=merchant.key).start()
    try:
        env = clean_env(
            OPENEPAY_DATABASE_URL=database_url,
            OPENEPAY_SECRET_KEY=TEST_SECRET,
            OPENEPAY_NOTIFY_ALLOW_PRIVATE="1",
            OPENEPAY_LOG_LEVEL="WARNING",
        )
        command = ["notify", "test", str(merchant.pid), f"{shop.url}/notify", "--dialect", "pay_mapi"]
        result = await asyncio.to_thread(run_cli, command, env)
        assert result.returncode == 0, result.stderr
        assert "acknowledged" in result.stdout
        [received] = shop.notifications()
    finally:
        shop.stop()
    assert received.method == "GET"
    assert received.params["trade_status"] == "TEST_NOTIFY"
    assert received.params["out_trade_no"].startswith("OPENEPAY-TEST-")
    assert {"realmoney", "ext"} <= set(received.params)
    assert received.params["sign"] == seed_sign(received.params, merchant.key)
