"""The edges of a payment's window, exactly: the first and last moment a report still pays its order.

A report pays the order holding its amount from the order's creation, less the clock skew, to
the end of the hold; after the order stops (its expiry, or the merchant closing it) it is late.
Each edge below is tested at the very moment and a microsecond past it, with the words the
operator reads in the review queue.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from openepay.channels.qrpool.matching import CLOCK_SKEW, Decision
from openepay.channels.qrpool.reservations import release_expired, reserve
from openepay.core.orders import close_order
from openepay.core.states import OrderStatus
from openepay.db.models import AmountReservation
from openepay.db.types import utcnow
from tests.support.qrpool import offered, phone_of, qrpool_gateway, receiving_account, reported
from tests.support.vmq_phone import notifications, reload, reservation_of

TICK = timedelta(microseconds=1)


def at(moment) -> str:  # type: ignore[no-untyped-def]
    """A moment as the reasons write it."""
    return moment.isoformat(timespec="seconds")


async def test_money_sent_within_the_clock_skew_before_the_order_pays_it_and_a_moment_earlier_does_not(
    gateway, merchant, database_url
):
    async with qrpool_gateway(database_url) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        order = await reload(qr, await offered(qr, merchant.pid, "SKEW", 1000))
        edge = order.created_at - CLOCK_SKEW
        too_early = await reported(qr, phone, "too-early", 1000, edge - TICK)
        on_the_edge = await reported(qr, phone, "on-the-edge", 1000, edge)
    assert (too_early.decision, too_early.trade_no) == (Decision.UNMATCHED, None)
    assert too_early.reason == (
        f"10.00 paid at {at(edge - TICK)}, before order {order.trade_no} holding that amount was created: "
        "money meant for an earlier order"
    )
    assert (on_the_edge.decision, on_the_edge.trade_no) == (Decision.PAID, order.trade_no)


async def test_a_payment_at_the_moment_of_expiry_is_on_time_and_one_at_the_end_of_the_hold_is_late(
    gateway, merchant, database_url
):
    async with qrpool_gateway(database_url) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        on_time = await reload(qr, await offered(qr, merchant.pid, "AT-EXPIRY", 1000))
        last_moment = await reload(qr, await offered(qr, merchant.pid, "AT-HOLD-END", 1000))
        assert last_moment.pay_amount_fen == 1001
        at_expiry = await reported(qr, phone, "at-expiry", 1000, on_time.expires_at)
        hold_until = (await reservation_of(qr, last_moment)).hold_until
        at_hold_end = await reported(qr, phone, "at-hold-end", 1001, hold_until)
    assert (at_expiry.decision, at_expiry.reason) == (Decision.PAID, f"10.00 paid order {on_time.trade_no}")
    assert (await reload(gateway, on_time)).paid_late is False
    assert (at_hold_end.decision, at_hold_end.reason) == (
        Decision.PAID_LATE,
        f"10.01 paid order {last_moment.trade_no} after it expired (paid late)",
    )
    assert await notifications(gateway) == {on_time.trade_no: 1, last_moment.trade_no: 1}


async def test_a_payment_after_the_merchant_closed_the_order_is_late_though_before_its_expiry(
    gateway, merchant, database_url
):
    async with qrpool_gateway(database_url, qrpool_accept_late_payments=False) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        order = await offered(qr, merchant.pid, "CLOSED-EARLY", 1000)
        closed = await close_order(qr.db, order)
        assert closed is not None and closed.closed_at < closed.expires_at
        paid_at = closed.closed_at + TICK
        answer = await reported(qr, phone, "after-close", 1000, paid_at)
    assert (answer.decision, answer.trade_no) == (Decision.LATE_REFUSED, order.trade_no)
    assert answer.reason == (
        f"10.00 paid at {at(paid_at)}, after order {order.trade_no} expired; late payments are not accepted "
        "(OPENEPAY_QRPOOL_ACCEPT_LATE_PAYMENTS): review it"
    )
    stored = await reload(gateway, order)
    assert (stored.status, stored.paid_fen) == (OrderStatus.CLOSED, None)
    assert await notifications(gateway) == {}


async def test_a_second_report_of_a_paid_amount_is_a_duplicate_to_the_last_moment_of_its_cooldown(
    gateway, merchant, database_url
):
    async with qrpool_gateway(database_url) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        order = await offered(qr, merchant.pid, "COOLDOWN", 1000)
        assert (await reported(qr, phone, "first", 1000)).decision == Decision.PAID
        cooldown_end = (await reservation_of(qr, order)).hold_until
        again = await reported(qr, phone, "again", 1000, cooldown_end)
        after = await reported(qr, phone, "after", 1000, cooldown_end + TICK)
    assert (again.decision, again.trade_no) == (Decision.SUSPECTED_DUPLICATE, order.trade_no)
    assert again.reason == (
        f"10.00 was just paid by order {order.trade_no}: a second report of that payment, not credited again"
    )
    assert (after.decision, after.trade_no) == (Decision.UNMATCHED, None)
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_a_report_without_an_amount_is_rejected_for_having_none(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        await offered(qr, merchant.pid, "NO-AMOUNT", 1000)
        answer = await reported(qr, phone, "no-amount", None)
    assert (answer.decision, answer.reason, answer.trade_no) == (Decision.REJECTED, "no amount", None)
    assert await notifications(gateway) == {}


async def test_paying_an_order_leaves_alone_the_amount_it_held_before_and_another_order_holds_now(
    gateway, merchant, database_url
):
    async with qrpool_gateway(database_url) as qr:
        account = await receiving_account(qr)
        phone = await phone_of(qr, account)
        order = await offered(qr, merchant.pid, "FIRST-HOLD", 1000)
        # The order's first hold ended and was swept; another order took the amount.
        async with qr.db.session() as session:
            first = await session.scalar(select(AmountReservation).where(AmountReservation.order_id == order.id))
            first.hold_until = utcnow() - timedelta(seconds=1)
        assert await release_expired(qr.db, utcnow()) == 1
        other = await offered(qr, merchant.pid, "NOW-HOLDS", 1000)
        assert other.pay_amount_fen == 1000
        # The buyer comes back: the order is offered an amount again.
        again, _ = await reserve(
            qr.db, order.id, [account], 1000, hold_until=utcnow() + timedelta(minutes=10), settings=qr.settings
        )
        assert again.amount_fen == 1001
        paid = await reported(qr, phone, "second-hold", 1001)
    assert (paid.decision, paid.trade_no) == (Decision.PAID, order.trade_no)
    async with gateway.db.session() as session:
        states = (
            await session.execute(
                select(AmountReservation.order_id, AmountReservation.amount_fen, AmountReservation.state).order_by(
                    AmountReservation.id
                )
            )
        ).all()
    assert [tuple(row) for row in states] == [
        (order.id, 1000, "released"),
        (other.id, 1000, "held"),
        (order.id, 1001, "paid"),
    ]


async def test_a_credited_payment_is_logged_as_information_and_one_that_pays_nothing_as_a_warning(
    gateway, merchant, database_url, caplog
):
    caplog.set_level(logging.INFO, logger="openepay.channels.qrpool.matching")
    async with qrpool_gateway(database_url) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        await offered(qr, merchant.pid, "LOGGED", 1000)
        await reported(qr, phone, "credited", 1000)
        await reported(qr, phone, "nobodys", 777)
    levels = [
        (record.levelno, record.getMessage().split(":")[0])
        for record in caplog.records
        if record.name == "openepay.channels.qrpool.matching"
    ]
    assert levels == [
        (logging.INFO, "qrpool payment event paid"),
        (logging.WARNING, "qrpool payment event unmatched"),
    ]


async def test_a_payment_of_another_pay_type_than_the_account_takes_pays_nothing(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        order = await offered(qr, merchant.pid, "OTHER-TYPE", 1000)
        answer = await reported(qr, phone, "alipay-on-wechat", 1000, pay_type="alipay")
    assert (answer.decision, answer.trade_no) == (Decision.UNMATCHED, None)
    assert answer.reason == "a alipay payment of 10.00 reported for account 'wx-main', which takes wxpay"
    assert (await reload(gateway, order)).status == OrderStatus.PAYING
    assert await notifications(gateway) == {}
