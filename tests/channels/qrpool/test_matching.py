"""Matching a reported payment to an order: late payments, the grace, the sweeper, races, the event window."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import timedelta

from sqlalchemy import select, update

from openepay.channels.qrpool.accounts import list_devices
from openepay.channels.qrpool.matching import Decision, PaymentReport, event_key, parse_amount, record_payment
from openepay.channels.qrpool.reservations import release_expired
from openepay.core.orders import close_expired
from openepay.core.states import OrderStatus
from openepay.db.models import AmountReservation, Order, QrDevice
from openepay.db.types import utcnow
from tests.support.locks import meeting_at
from tests.support.qrpool import offered, phone_of, qrpool_gateway, receiving_account, reported
from tests.support.vmq_phone import WXPAY, notifications, qrpool_server, reload, reservation_of, stored_events

OK = {"code": 1, "msg": "成功"}
GRACE = 600


async def expired_ago(gateway, order: Order, seconds: float) -> None:
    """Move the order's life into the past so it expired ``seconds`` ago; its reservation's hold moves with it."""
    shift = order.expires_at - (utcnow() - timedelta(seconds=seconds))
    async with gateway.db.session() as session:
        stored = await session.get(Order, order.id)
        stored.created_at, stored.expires_at = stored.created_at - shift, stored.expires_at - shift
        for reservation in await session.scalars(
            select(AmountReservation).where(AmountReservation.order_id == order.id)
        ):
            reservation.hold_until -= shift


def test_amounts_are_compared_in_fen_whatever_the_rendering():
    assert [parse_amount(text) for text in ("10.0", "10.00", "10", "9.91", "0.1", "0.01")] == [
        1000,
        1000,
        1000,
        991,
        10,
        1,
    ]
    unreadable = ("", "0", "0.00", "9.999", "1.0E7", "-1", "+1", " 1", "1\n", "1,000", ".5", "5.", "١٠", "1e3")
    assert [parse_amount(text) for text in unreadable] == [None] * len(unreadable)


async def test_a_late_payment_inside_the_grace_is_accepted_and_flagged(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_late_grace_seconds=GRACE, qrpool_accept_late_payments=True) as qr:
        _, _, phone = await qr.pair()
        closed = await offered(qr.gateway, merchant.pid, "LATE-1", 1000)
        unswept = await offered(qr.gateway, merchant.pid, "LATE-2", 1000)
        await expired_ago(gateway, closed, 60)
        await expired_ago(gateway, unswept, 60)
        assert {order.trade_no for order in await close_expired(qr.gateway.db)} == {closed.trade_no, unswept.trade_no}
        # The sweeper closed one; pretend it has not reached the other yet.
        async with gateway.db.session() as session:
            await session.execute(
                update(Order).where(Order.id == unswept.id).values(status=OrderStatus.PAYING, closed_at=None)
            )

        # The acg-faka #881 lesson: a new order for the same price must not get an amount still in its grace.
        newer = await offered(qr.gateway, merchant.pid, "LATE-3", 1000)
        assert newer.pay_amount_fen == 1002

        assert await phone.paid(WXPAY, 1000) == OK
        assert await phone.paid(WXPAY, 1001) == OK

    for order in (closed, unswept):
        paid = await reload(gateway, order)
        assert (paid.status, paid.paid_late) == (OrderStatus.PAID, True)
        assert (await reservation_of(gateway, order)).state == "paid"
    assert (await reload(gateway, newer)).status == OrderStatus.PAYING
    assert await notifications(gateway) == {closed.trade_no: 1, unswept.trade_no: 1}
    decisions = [(event.decision, event.order_id) for event in await stored_events(gateway)]
    assert decisions == [("paid_late", closed.id), ("paid_late", unswept.id)]


async def test_a_late_payment_is_refused_and_kept_for_review_when_the_policy_is_off(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_late_grace_seconds=GRACE, qrpool_accept_late_payments=False) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "LATE-OFF", 1000)
        await expired_ago(gateway, order, 60)
        await close_expired(qr.gateway.db)
        answer = await phone.paid(WXPAY, 1000)
        newer = await offered(qr.gateway, merchant.pid, "LATE-OFF-2", 1000)

    assert answer["code"] == 1 and "late payments are not accepted" in answer["msg"]
    stored = await reload(gateway, order)
    assert (stored.status, stored.paid_late, stored.paid_fen) == (OrderStatus.CLOSED, False, None)
    assert await notifications(gateway) == {}
    # The amount stays held through the grace: the refused money can still be attached to its order by hand.
    assert (await reservation_of(gateway, order)).state == "held"
    assert newer.pay_amount_fen == 1001
    [event] = await stored_events(gateway)
    assert (event.decision, event.order_id) == ("late_refused", order.id)
    assert order.trade_no in event.reason


async def test_a_payment_after_the_grace_pays_nothing_swept_or_not(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_late_grace_seconds=GRACE) as qr:
        _, _, phone = await qr.pair()
        swept = await offered(qr.gateway, merchant.pid, "GONE-1", 1000)
        unswept = await offered(qr.gateway, merchant.pid, "GONE-2", 2000)
        await expired_ago(gateway, swept, GRACE + 60)
        assert await release_expired(qr.gateway.db, utcnow()) == 1
        assert (await reservation_of(gateway, swept)).state == "released"
        # The sweeper has not come round since this one's hold ended.
        await expired_ago(gateway, unswept, GRACE + 60)
        await close_expired(qr.gateway.db)
        assert (await reservation_of(gateway, unswept)).state == "held"

        after_sweep = await phone.paid(WXPAY, 1000)
        before_sweep = await phone.paid(WXPAY, 2000)

    assert after_sweep["code"] == 1 and before_sweep["code"] == 1
    for order in (swept, unswept):
        stored = await reload(gateway, order)
        assert (stored.status, stored.paid_fen) == (OrderStatus.CLOSED, None)
    assert await notifications(gateway) == {}
    first, second = await stored_events(gateway)
    assert (first.decision, first.order_id) == ("unmatched", None)
    assert first.reason == "no order is waiting for 10.00 on account 'wx-main'"
    assert (second.decision, second.order_id) == ("unmatched", None)
    assert f"after the hold of order {unswept.trade_no} on that amount ended" in second.reason


async def test_after_the_cooldown_the_amount_serves_the_next_order(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_paid_cooldown_seconds=600) as qr:
        _, _, phone = await qr.pair()
        first = await offered(qr.gateway, merchant.pid, "NEXT-1", 1000)
        assert await phone.paid(WXPAY, 1000) == OK
        assert await release_expired(qr.gateway.db, utcnow() + timedelta(seconds=601)) == 1
        second = await offered(qr.gateway, merchant.pid, "NEXT-2", 1000)
        assert second.pay_amount_fen == 1000
        assert await phone.paid(WXPAY, 1000, str(int(time.time() * 1000) + 1)) == OK
    assert (await reload(gateway, first)).status == (await reload(gateway, second)).status == OrderStatus.PAID
    assert await notifications(gateway) == {first.trade_no: 1, second.trade_no: 1}


async def test_simultaneous_reports_of_one_amount_pay_one_order_once(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "RACE-1", 888)
        start = int(time.time() * 1000)
        answers = await asyncio.gather(*(phone.paid(WXPAY, 888, str(start + i)) for i in range(12)))

    assert sum(answer == OK for answer in answers) == 1
    assert all(answer["code"] == 1 for answer in answers)
    assert (await reload(gateway, order)).status == OrderStatus.PAID
    assert await notifications(gateway) == {order.trade_no: 1}
    decisions = sorted(event.decision for event in await stored_events(gateway))
    assert decisions == ["paid"] + ["suspected_duplicate"] * 11
    assert (await qr.gateway.merchants.get(merchant.pid)).balance_fen == 888


def report(device: QrDevice, name: str, amount_fen: int, occurred_at) -> PaymentReport:
    return PaymentReport(
        event_key=event_key("test", name),
        source="device",
        device=device,
        pay_type="wxpay",
        amount_fen=amount_fen,
        amount_text=str(amount_fen),
        occurred_at=occurred_at,
        payload="{}",
    )


async def test_money_sent_before_the_order_existed_is_not_its_payment(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        _, device, _ = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "BEFORE-1", 500)
        early = report(device, "early", 500, order.created_at - timedelta(minutes=5))
        skewed = report(device, "skewed", 500, order.created_at - timedelta(seconds=30))
        refused = await record_payment(qr.gateway.db, qr.gateway.settings, early)
        again = await record_payment(qr.gateway.db, qr.gateway.settings, early)
        accepted = await record_payment(qr.gateway.db, qr.gateway.settings, skewed)

    assert refused.decision is Decision.UNMATCHED and "before order" in refused.reason and not refused.repeated
    assert (again.event_id, again.decision, again.repeated) == (refused.event_id, Decision.UNMATCHED, True)
    assert (accepted.decision, accepted.trade_no) == (Decision.PAID, order.trade_no)
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_two_reports_of_one_payment_at_once_pay_once_and_the_other_names_the_order_it_duplicates(
    gateway, merchant, database_url
):
    async with qrpool_gateway(database_url) as qr:
        phone = await phone_of(qr, await receiving_account(qr))
        order = await offered(qr, merchant.pid, "AT-ONCE", 650)
        # On PostgreSQL both read the amount held before either pays the order.
        attempts = await meeting_at(
            qr,
            select(Order).where(Order.id == order.id),
            [reported(qr, phone, f"copy-{n}", 650) for n in (1, 2)],
        )
        outcomes = sorted([await attempt for attempt in attempts], key=lambda outcome: outcome.decision)
    assert [(outcome.decision, outcome.trade_no) for outcome in outcomes] == [
        (Decision.PAID, order.trade_no),
        (Decision.SUSPECTED_DUPLICATE, order.trade_no),
    ]
    assert outcomes[1].reason == (
        f"6.50 was just paid by order {order.trade_no}: a second report of that payment, not credited again"
    )
    paid = await reload(gateway, order)
    assert (paid.status, paid.channel_trade_no) == (OrderStatus.PAID, f"QR{outcomes[0].event_id}")
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_a_report_dates_its_own_phones_last_push_at_its_receipt_and_no_other_phones(
    gateway, merchant, database_url
):
    async with qrpool_gateway(database_url) as qr:
        reporting = await phone_of(qr, await receiving_account(qr, "wx-a", generic="wxp://a"))
        silent = await phone_of(qr, await receiving_account(qr, "wx-b", generic="wxp://b"))
        await offered(qr, merchant.pid, "LAST-PUSH", 300)
        await reported(qr, reporting, "last-push", 300)
        phones = {device.id: device.last_push_at for device in await list_devices(qr.db)}
    [event] = await stored_events(gateway)
    assert phones == {reporting.id: event.received_at, silent.id: None}


def test_event_keys_are_the_sha256_docs_qrpool_md_gives():
    # docs/qrpool.md: sha256(device id|type+price+t) for a V免签 push, sha256("device-api"|device id|event id).
    push = hashlib.sha256(b"7|110.01700000000000").hexdigest()
    device_api = hashlib.sha256(b"device-api|7|e-1").hexdigest()
    assert event_key(7, "1" + "10.0" + "1700000000000") == push
    assert event_key("device-api", 7, "e-1") == device_api


async def test_a_stored_report_keeps_what_the_phone_sent_cut_to_its_columns(gateway, database_url):
    async with qrpool_gateway(database_url) as qr:
        account = await receiving_account(qr)
        phone = await phone_of(qr, account)
        sent_at = utcnow() - timedelta(seconds=5)
        outcome = await record_payment(
            qr.db,
            qr.settings,
            PaymentReport(
                event_key=event_key("kept", 1),
                source="device",
                device=phone,
                pay_type="wxpay",
                amount_fen=None,
                amount_text="9" * 40,
                occurred_at=sent_at,
                payload="x" * 5000,
                refusal="the amount is not yuan",
            ),
        )
    [event] = await stored_events(gateway)
    assert (outcome.event_id, outcome.decision, outcome.reason) == (
        event.id,
        Decision.REJECTED,
        "the amount is not yuan",
    )
    assert (event.source, event.account_id, event.device_id, event.pay_type, event.amount_fen) == (
        "device",
        account.id,
        phone.id,
        "wxpay",
        None,
    )
    assert (event.amount_text, event.occurred_at, event.payload) == ("9" * 32, sent_at, "x" * 4096)
    assert (event.decision, event.reason, event.order_id) == ("rejected", "the amount is not yuan", None)
