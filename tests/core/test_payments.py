"""``confirm_payment``: the one path to paid, checked against the order, guarded, with its outbox row."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from openepay.channels.base import Confirmation
from openepay.core.orders import close_expired, get_order
from openepay.core.payments import PaymentDecision, confirm_payment, mark_paid
from openepay.core.states import NotifyStatus, OrderStatus
from openepay.db.models import BalanceEntry, Merchant, NotifyTask, Order
from openepay.db.types import utcnow
from tests.support.orders import sandbox_order


async def _count(gateway, model) -> int:
    async with gateway.db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_paying_writes_order_balance_and_outbox_together(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    decision = await confirm_payment(
        gateway.db, "sandbox", Confirmation(order.trade_no, 100, channel_trade_no="UP-1", buyer="buyer@x")
    )
    assert decision == PaymentDecision.PAID
    paid = await get_order(gateway.db, order.trade_no)
    assert (paid.status, paid.paid_fen, paid.channel_trade_no, paid.buyer) == (OrderStatus.PAID, 100, "UP-1", "buyer@x")
    assert paid.paid_at is not None and not paid.paid_late
    async with gateway.db.session() as session:
        [task] = (await session.scalars(select(NotifyTask))).all()
        balance = (await session.get(Merchant, merchant.pid)).balance_fen
        [entry] = (await session.scalars(select(BalanceEntry))).all()
    assert (task.order_id, task.event, task.status) == (order.id, "paid", NotifyStatus.PENDING)
    assert balance == 100 and (entry.kind, entry.ref, entry.delta_fen) == ("payment", order.trade_no, 100)


async def test_confirmations_that_do_not_match_the_order_change_nothing(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    assert await confirm_payment(gateway.db, "sandbox", Confirmation("nope", 100)) == PaymentDecision.UNKNOWN_ORDER
    assert (
        await confirm_payment(gateway.db, "alipay", Confirmation(order.trade_no, 100)) == PaymentDecision.WRONG_CHANNEL
    )
    assert (
        await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 99))
        == PaymentDecision.AMOUNT_MISMATCH
    )
    assert (await get_order(gateway.db, order.trade_no)).status == OrderStatus.PAYING
    assert await _count(gateway, NotifyTask) == 0
    assert await _count(gateway, BalanceEntry) == 0


async def test_a_second_confirmation_is_recognised_and_credits_nothing(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    assert await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 100)) == PaymentDecision.PAID
    assert (
        await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 100)) == PaymentDecision.ALREADY_PAID
    )
    assert await _count(gateway, NotifyTask) == 1
    assert await _count(gateway, BalanceEntry) == 1


async def test_money_arriving_after_close_takes_the_late_edge_and_is_flagged(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    async with gateway.db.session() as session:
        await session.execute(
            update(Order).where(Order.id == order.id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    await close_expired(gateway.db)
    assert await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 100)) == PaymentDecision.PAID_LATE
    late = await get_order(gateway.db, order.trade_no)
    assert late.status == OrderStatus.PAID and late.paid_late
    assert await _count(gateway, NotifyTask) == 1


async def test_many_simultaneous_confirmations_make_one_transition_and_one_outbox_row(gateway, merchant):
    """On PostgreSQL the confirmations really race on separate connections."""
    order = await sandbox_order(gateway, merchant.pid)
    decisions = await asyncio.gather(
        *(
            confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 100, channel_trade_no=f"U{i}"))
            for i in range(40)
        )
    )
    assert decisions.count(PaymentDecision.PAID) == 1
    assert decisions.count(PaymentDecision.ALREADY_PAID) == 39
    assert await _count(gateway, NotifyTask) == 1
    assert await _count(gateway, BalanceEntry) == 1
    async with gateway.db.session() as session:
        assert (await session.get(Merchant, merchant.pid)).balance_fen == 100


async def _close(gateway, order_id: int) -> None:
    async with gateway.db.session() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(status=OrderStatus.CLOSED, closed_at=utcnow())
        )


async def test_paying_one_order_leaves_the_merchants_other_orders_as_they_were(gateway, merchant):
    """Open or closed, only the order the confirmation names moves: its neighbours keep waiting."""
    open_paid, open_left, closed_paid, closed_left = [
        await sandbox_order(gateway, merchant.pid, number) for number in ("O-1", "O-2", "C-1", "C-2")
    ]
    for order in (closed_paid, closed_left):
        await _close(gateway, order.id)
    assert await confirm_payment(gateway.db, "sandbox", Confirmation(open_paid.trade_no, 100)) == PaymentDecision.PAID
    assert (
        await confirm_payment(gateway.db, "sandbox", Confirmation(closed_paid.trade_no, 100))
        == PaymentDecision.PAID_LATE
    )
    orders = (open_paid, open_left, closed_paid, closed_left)
    assert {order.trade_no: (await get_order(gateway.db, order.trade_no)).status for order in orders} == {
        open_paid.trade_no: OrderStatus.PAID,
        open_left.trade_no: OrderStatus.PAYING,
        closed_paid.trade_no: OrderStatus.PAID,
        closed_left.trade_no: OrderStatus.CLOSED,
    }
    assert await _count(gateway, NotifyTask) == 2
    async with gateway.db.session() as session:
        assert (await session.get(Merchant, merchant.pid)).balance_fen == 200


async def _mark_paid_late(gateway, order: Order, confirmation: Confirmation) -> PaymentDecision:
    async with gateway.db.session() as session:
        stored = await session.get(Order, order.id)
        return await mark_paid(session, stored, confirmation, late=True)


async def test_a_payment_the_caller_knows_came_late_pays_an_open_order_flagged_late(gateway, merchant):
    """The personal-code matcher and the review queue know the money came after the order's time,
    even when the sweeper has not closed it yet: the order is paid, credited, notified and flagged."""
    order = await sandbox_order(gateway, merchant.pid)
    neighbour = await sandbox_order(gateway, merchant.pid, "O-2")
    late = Confirmation(order.trade_no, 100, channel_trade_no="UP-LATE", buyer="late@x")
    assert await _mark_paid_late(gateway, order, late) == PaymentDecision.PAID_LATE
    paid = await get_order(gateway.db, order.trade_no)
    assert (paid.status, paid.paid_late, paid.paid_fen, paid.channel_trade_no, paid.buyer) == (
        OrderStatus.PAID,
        True,
        100,
        "UP-LATE",
        "late@x",
    )
    assert paid.paid_at is not None
    assert (await get_order(gateway.db, neighbour.trade_no)).status == OrderStatus.PAYING
    async with gateway.db.session() as session:
        [task] = (await session.scalars(select(NotifyTask))).all()
        assert (await session.get(Merchant, merchant.pid)).balance_fen == 100
    assert (task.order_id, task.event) == (order.id, "paid")


async def test_a_late_payment_for_an_order_already_paid_credits_nothing_more(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    assert await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 100)) == PaymentDecision.PAID
    assert await _mark_paid_late(gateway, order, Confirmation(order.trade_no, 100)) == PaymentDecision.ALREADY_PAID
    paid = await get_order(gateway.db, order.trade_no)
    assert (paid.status, paid.paid_late) == (OrderStatus.PAID, False)
    assert await _count(gateway, NotifyTask) == 1
    async with gateway.db.session() as session:
        assert (await session.get(Merchant, merchant.pid)).balance_fen == 100


async def test_a_confirmation_without_the_upstreams_number_or_buyer_keeps_what_the_offer_had(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    async with gateway.db.session() as session:
        await session.execute(
            update(Order).where(Order.id == order.id).values(channel_trade_no="UP-OFFER", buyer="offer@x")
        )
    assert await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 100)) == PaymentDecision.PAID
    paid = await get_order(gateway.db, order.trade_no)
    assert (paid.status, paid.channel_trade_no, paid.buyer) == (OrderStatus.PAID, "UP-OFFER", "offer@x")
