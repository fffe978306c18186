"""The stock V免签 monitor app against us, end to end: paired from the CLI, a seed 001 merchant, a notification."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from openepay.core.states import OrderStatus
from openepay.db.models import Order
from tests.support.links import cashier_path
from tests.support.orders import sandbox_order
from tests.support.pay_mapi import call, pay_params, seed_sign, signed, success_of
from tests.support.qrpool import GENERIC, qrpool_cli
from tests.support.vmq_phone import WXPAY, VmqPhone, java_double, notifications, qrpool_server, reload, stored_events
from tests.support.waiting import eventually

OK = {"code": 1, "msg": "成功"}


@pytest.mark.parametrize(("fen", "rendered"), [(991, "9.91"), (1000, "10.0"), (10, "0.1"), (1, "0.01"), (1010, "10.1")])
def test_the_phone_renders_amounts_as_java_does(fen, rendered):
    assert java_double(fen) == rendered


async def test_a_seed_001_merchant_hears_of_a_payment_the_phone_saw(gateway, merchant, shop, worker, database_url):
    async with qrpool_server(database_url) as qr:
        assert (await qrpool_cli(database_url, "account", "add", "wx-main", "--type", "wxpay")).returncode == 0
        assert (await qrpool_cli(database_url, "code", "add", "wx-main", "--content", GENERIC)).returncode == 0
        added = await qrpool_cli(database_url, "device", "add", "wx-main", "--host", qr.host)
        assert added.returncode == 0, added.stderr
        phone = VmqPhone(re.search(r"^pairing: (\S+)$", added.stdout, re.MULTILINE).group(1))
        assert phone.host == qr.host

        async with qr.client() as client:
            before_heartbeat = await call(client, signed(pay_params(merchant.pid, shop.url, "VMQ-0"), merchant.key))
            assert before_heartbeat.json()["code"] == 702
            assert await phone.heartbeat() == OK
            first = success_of(
                await call(client, signed(pay_params(merchant.pid, shop.url, "VMQ-1", money="10.00"), merchant.key))
            )
            second = success_of(
                await call(client, signed(pay_params(merchant.pid, shop.url, "VMQ-2", money="10.00"), merchant.key))
            )
        assert (first["money"], second["money"]) == ("10.00", "10.01")
        # A generic code is never handed out: the buyer would pay 10.00 where 10.01 is reserved.
        assert (first["qrcode"], second["qrcode"]) == (first["payurl"], second["payurl"])
        assert second["payurl"].endswith(cashier_path(second["trade_no"]))

        # The buyer of the second order pays 10.01; the app reads it from WeChat's notification and pushes it.
        assert await phone.paid(WXPAY, 1001) == OK
        [notification] = await eventually(lambda: shop.notifications())

    received = notification.params
    assert (received["out_trade_no"], received["trade_no"]) == ("VMQ-2", second["trade_no"])
    assert (received["money"], received["realmoney"], received["trade_status"]) == ("10.00", "10.01", "TRADE_SUCCESS")
    assert received["sign"] == seed_sign(received, merchant.key)
    assert notification.signature_ok is True
    async with gateway.db.session() as session:
        orders = {order.out_trade_no: order for order in (await session.scalars(select(Order))).all()}
    assert orders["VMQ-1"].status == OrderStatus.PAYING
    assert orders["VMQ-2"].status == OrderStatus.PAID
    assert await notifications(gateway) == {second["trade_no"]: 1}
    [event] = await stored_events(gateway)
    assert (event.source, event.amount_text, event.decision) == ("vmq", "10.01", "paid")


async def test_the_phone_cannot_pay_an_order_of_another_channel(gateway, merchant, database_url):
    sandboxed = await sandbox_order(gateway, merchant.pid, "SB-1")
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        answer = await phone.paid(WXPAY, sandboxed.pay_amount_fen)
    assert answer["code"] == 1 and "recorded for review" in answer["msg"]
    assert (await reload(gateway, sandboxed)).status == OrderStatus.PAYING
    assert await notifications(gateway) == {}
