"""The issue's proof: concurrent orders for one amount on one account never share an amount."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import select

from openepay.channels.base import ChannelRefused, RefusalReason
from openepay.core.money import parse_yuan
from openepay.db.models import AmountReservation, Order
from tests.support.epay import signed
from tests.support.gateways import own_server
from tests.support.qrpool import offered, qrpool_gateway, receiving_account

ORDERS = 200
MAX_OFFSET = 149  # 150 amounts, 1.00 to 2.49, for 200 orders


async def held_amounts(gateway) -> list[int]:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return list(
            (await session.scalars(select(AmountReservation.amount_fen).where(AmountReservation.state == "held"))).all()
        )


async def test_two_hundred_orders_at_once_through_the_core(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_max_offset_fen=MAX_OFFSET) as qr:
        await receiving_account(qr)

        async def one(n: int) -> int | str:
            try:
                return (await offered(qr, merchant.pid, f"C-{n}", amount_fen=100)).pay_amount_fen
            except ChannelRefused as refused:
                assert refused.reason == RefusalReason.NO_CODE_FOR_AMOUNT
                return refused.message

        outcomes = await asyncio.gather(*(one(n) for n in range(ORDERS)))

    amounts = [outcome for outcome in outcomes if isinstance(outcome, int)]
    refusals = Counter(outcome for outcome in outcomes if isinstance(outcome, str))
    assert sorted(amounts) == list(range(100, 100 + MAX_OFFSET + 1))
    [(message, count)] = refusals.items()
    assert count == ORDERS - MAX_OFFSET - 1
    assert message.startswith("qrpool: no amount free from 1.00 to 2.49 on 1 receiving account(s)")
    assert sorted(await held_amounts(gateway)) == sorted(amounts)
    async with gateway.db.session() as session:
        paying = (await session.scalars(select(Order.pay_amount_fen).where(Order.channel == "qrpool"))).all()
    assert sorted(paying) == sorted(amounts)


async def test_concurrent_merchant_requests_over_http(gateway, merchant, database_url):
    await receiving_account(gateway)
    with own_server(database_url, qrpool=True, sandbox=False, qrpool_max_offset_fen=19) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=30) as client:

            async def one(n: int) -> dict:
                params = {
                    "pid": str(merchant.pid),
                    "type": "wxpay",
                    "out_trade_no": f"H-{n}",
                    "notify_url": "https://shop.example.com/notify",
                    "return_url": "https://shop.example.com/return",
                    "name": "An Oreo",
                    "money": "9.90",
                }
                return (await client.post("/pay/mapi.php", data=signed(params, merchant.key))).json()

            answers = await asyncio.gather(*(one(n) for n in range(30)))

    placed = sorted(parse_yuan(answer["money"]) for answer in answers if answer["code"] == 200)
    assert placed == list(range(990, 1010))
    assert Counter(answer["code"] for answer in answers) == {200: 20, 703: 10}
    assert sorted(await held_amounts(gateway)) == list(range(990, 1010))
