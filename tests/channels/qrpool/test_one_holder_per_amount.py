"""Two orders never hold one amount on one account at the same time, however many ask at once.

A payment on a personal code says only "this account received this amount", so if two orders
held it, one buyer's money would pay the wrong order (or neither). On PostgreSQL the orders
below really race on separate connections.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from openepay.channels.base import ChannelRefused, RefusalReason
from openepay.channels.qrpool.matching import Decision, PaymentReport, event_key, record_payment
from openepay.channels.qrpool.reservations import release_expired
from openepay.core.states import OrderStatus
from openepay.db.models import AmountReservation, Order, QrDevice
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from tests.support.qrpool import offered, qrpool_gateway, receiving_account
from tests.support.vmq_phone import notifications

ORDERS = 24


async def try_offer(qr: Gateway, pid: int, out_trade_no: str, amount_fen: int) -> Order | None:
    try:
        return await offered(qr, pid, out_trade_no, amount_fen)
    except ChannelRefused as refused:
        assert refused.reason == RefusalReason.NO_CODE_FOR_AMOUNT
        return None


async def live_holds(gateway: Gateway) -> list[tuple[int, int, int]]:
    """``(account, amount, order)`` of every reservation that may still be matched to a payment."""
    async with gateway.db.session() as session:
        rows = await session.execute(
            select(AmountReservation.account_id, AmountReservation.amount_fen, AmountReservation.order_id).where(
                AmountReservation.state != "released"
            )
        )
        return [tuple(row) for row in rows.all()]


async def test_of_many_orders_asking_for_one_amount_at_once_exactly_one_holds_it(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_max_offset_fen=0) as qr:
        account = await receiving_account(qr)
        outcomes = await asyncio.gather(*(try_offer(qr, merchant.pid, f"ONE-{n}", 700) for n in range(ORDERS)))
        holders = [order.trade_no for order in outcomes if order is not None]
        assert len(holders) == 1, f"{len(holders)} orders hold 7.00"
        [holder] = [order for order in outcomes if order is not None]
        assert holder.pay_amount_fen == 700
        assert await live_holds(gateway) == [(account.id, 700, holder.id)]

        # The amount's one payment pays the one order that holds it.
        async with qr.db.session() as session:
            device = (await session.scalars(select(QrDevice).where(QrDevice.account_id == account.id))).one()
        paid = await record_payment(
            qr.db,
            qr.settings,
            PaymentReport(event_key("one", 700), "device", device, "wxpay", 700, "7.00", utcnow(), "{}"),
        )
        assert (paid.decision, paid.trade_no) == (Decision.PAID, holder.trade_no)
        assert await notifications(gateway) == {holder.trade_no: 1}

        # Once the paid order's cooldown is over the amount is free again, for one order at a time.
        await release_expired(qr.db, utcnow() + timedelta(days=1))
        later = await asyncio.gather(*(try_offer(qr, merchant.pid, f"TWO-{n}", 700) for n in range(ORDERS // 2)))
        [next_holder] = [order for order in later if order is not None]
    assert next_holder.status == OrderStatus.PAYING
    assert [order for _, _, order in await live_holds(gateway)] == [next_holder.id]


async def test_orders_racing_over_two_accounts_never_share_an_amount_on_either(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_max_offset_fen=3) as qr:
        first = await receiving_account(qr, "wx-one")
        second = await receiving_account(qr, "wx-two", generic="wxp://f2f0SECONDxxxxxxxxxxxxxxxxxxxxxxxxx")
        outcomes = await asyncio.gather(*(try_offer(qr, merchant.pid, f"TWO-ACC-{n}", 500) for n in range(ORDERS)))
    holders = [order for order in outcomes if order is not None]
    holds = await live_holds(gateway)
    # Four amounts (5.00 to 5.03) on each of two accounts: eight orders get one, each its own.
    assert len(holders) == len(holds) == 8
    assert Counter((account, amount) for account, amount, _ in holds) == {
        (account.id, amount): 1 for account in (first, second) for amount in range(500, 504)
    }
    assert sorted(order for _, _, order in holds) == sorted(order.id for order in holders)
