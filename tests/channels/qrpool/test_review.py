"""Manual handling: the review queue, attaching an event, marking paid with a reason, and the audit log."""

from __future__ import annotations

import getpass
import json
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from openepay.channels.qrpool.matching import Decision
from openepay.channels.qrpool.review import ReviewRefused, attach_event, mark_paid_by_hand, review_queue
from openepay.core.orders import close_expired
from openepay.core.states import OrderStatus
from openepay.db.models import Order, PaymentEvent
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from tests.support.locks import meeting_at
from tests.support.qrpool import offered, placed, qrpool_cli, qrpool_gateway, qrpool_settings, receiving_account
from tests.support.vmq_phone import (
    WXPAY,
    audit_log,
    notifications,
    qrpool_server,
    reload,
    reservation_of,
    stored_events,
)

OK = {"code": 1, "msg": "成功"}


async def review(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return await qrpool_cli(database_url, "review", *args)


async def test_the_queue_lists_what_paid_nobody(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "Q-1", 500)
        assert await phone.push(WXPAY, "5.0") == OK
        await phone.paid(WXPAY, 500, str(int(utcnow().timestamp() * 1000) + 1))
        await phone.push(WXPAY, "7.77")
        await phone.push(WXPAY, "9.999")

    listed = await review(database_url, "list")
    as_json = await review(database_url, "list", "--json")
    only_unmatched = await review(database_url, "list", "--decision", "unmatched", "--json")

    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(row["decision"], row["amount"], row["amount_text"]) for row in rows] == [
        ("rejected", None, "9.999"),
        ("unmatched", "7.77", "7.77"),
        ("suspected_duplicate", "5.00", "5.0"),
    ]
    assert rows[2]["order"] == order.trade_no and rows[1]["order"] is None
    assert {row["account"] for row in rows} == {"wx-main"}
    assert "event 3" in listed.stdout and "no order is waiting for 7.77 on account 'wx-main'" in listed.stdout
    assert "paid order" not in listed.stdout
    assert [json.loads(line)["amount"] for line in only_unmatched.stdout.splitlines()] == ["7.77"]


async def test_attaching_an_event_pays_the_order_through_the_same_path_and_is_audited(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        await qr.pair("wx-a")
        order = await offered(qr.gateway, merchant.pid, "ATT-1", 1234)
        # The buyer paid the right amount into the wrong wallet: another account's phone reports it.
        _, _, other_phone = await qr.pair("wx-b")
        await other_phone.push(WXPAY, "12.34")
        [event] = await stored_events(gateway)
        assert event.decision == "unmatched"

        attached = await review(
            database_url,
            "attach",
            str(event.id),
            order.trade_no,
            "--reason",
            "buyer sent a screenshot",
            "--actor",
            "alice",
        )
        again = await review(database_url, "attach", str(event.id), order.trade_no, "--actor", "alice")

    assert attached.returncode == 0, attached.stderr
    assert f"order {order.trade_no} is paid: 12.34" in attached.stdout
    paid = await reload(gateway, order)
    assert (paid.status, paid.paid_fen, paid.paid_late, paid.channel_trade_no) == ("paid", 1234, False, f"QR{event.id}")
    assert await notifications(gateway) == {order.trade_no: 1}
    assert (await reservation_of(gateway, order)).state == "paid"
    [stored] = await stored_events(gateway)
    assert (stored.decision, stored.order_id) == ("attached", order.id)
    assert stored.reason == "attached by alice: buyer sent a screenshot"
    [entry] = await audit_log(gateway)
    assert (entry.actor, entry.action, entry.trade_no, entry.event_id) == (
        "alice",
        "attach_event",
        order.trade_no,
        event.id,
    )
    assert entry.reason == "buyer sent a screenshot"
    assert entry.details["event_decision"] == "unmatched" and "wx-b" in entry.details["event_reason"]
    assert (
        again.returncode == 1 and f"event {event.id} was already used: it paid order {order.trade_no}" in again.stderr
    )
    assert (await qr.gateway.merchants.get(merchant.pid)).balance_fen == 1234


async def test_attaching_is_refused_for_another_amount_a_paid_order_or_a_used_event(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        waiting = await offered(qr.gateway, merchant.pid, "REF-1", 1000)
        paid = await offered(qr.gateway, merchant.pid, "REF-2", 2000)
        assert await phone.push(WXPAY, "20.0") == OK
        await phone.push(WXPAY, "9.99")
        await phone.push(WXPAY, "20.01")
        used, other_amount, for_paid = await stored_events(gateway)

        answers = [
            await review(database_url, "attach", str(other_amount.id), waiting.trade_no),
            await review(database_url, "attach", str(for_paid.id), paid.trade_no),
            await review(database_url, "attach", str(used.id), waiting.trade_no),
            await review(database_url, "attach", "999", waiting.trade_no),
            await review(database_url, "attach", str(other_amount.id), "NO-SUCH-ORDER"),
        ]

    assert [answer.returncode for answer in answers] == [1] * 5
    assert f"event {other_amount.id} is 9.99 but order {waiting.trade_no} asks the buyer for 10.00" in answers[0].stderr
    assert f"order {paid.trade_no} is already paid" in answers[1].stderr
    assert f"event {used.id} was already used: it paid order {paid.trade_no}" in answers[2].stderr
    assert "no event 999" in answers[3].stderr and "no order NO-SUCH-ORDER" in answers[4].stderr
    assert (await reload(gateway, waiting)).status == OrderStatus.PAYING
    assert await notifications(gateway) == {paid.trade_no: 1}
    assert [event.decision for event in await stored_events(gateway)] == ["paid", "unmatched", "unmatched"]
    assert await audit_log(gateway) == []


async def test_marking_paid_without_an_event_needs_a_reason_and_is_audited(gateway, merchant, database_url):
    async with qrpool_server(database_url) as qr:
        await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "MAN-1", 4200)
        no_reason = await review(database_url, "mark-paid", order.trade_no)
        blank = await review(database_url, "mark-paid", order.trade_no, "--reason", "   ")
        assert (await reload(gateway, order)).status == OrderStatus.PAYING
        marked = await review(database_url, "mark-paid", order.trade_no, "--reason", "in the wallet history at 12:03")
        twice = await review(database_url, "mark-paid", order.trade_no, "--reason", "again")

    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    assert blank.returncode == 1 and "a reason is required" in blank.stderr
    assert marked.returncode == 0, marked.stderr
    paid = await reload(gateway, order)
    assert (paid.status, paid.paid_fen, paid.channel_trade_no) == ("paid", 4200, None)
    assert await notifications(gateway) == {order.trade_no: 1}
    assert (await reservation_of(gateway, order)).state == "paid"
    assert twice.returncode == 1 and "already paid" in twice.stderr
    [entry] = await audit_log(gateway)
    assert (entry.actor, entry.action, entry.event_id) == (f"cli:{getpass.getuser()}", "mark_paid", None)
    assert (entry.trade_no, entry.reason) == (order.trade_no, "in the wallet history at 12:03")
    assert entry.details == {"status": "paying", "pay_amount": "42.00"}
    assert await stored_events(gateway) == []


async def test_a_refused_late_payment_attached_by_hand_is_paid_late(gateway, merchant, database_url):
    async with qrpool_server(database_url, qrpool_accept_late_payments=False) as qr:
        _, _, phone = await qr.pair()
        order = await offered(qr.gateway, merchant.pid, "LR-1", 800)
        async with qr.gateway.db.session() as session:
            stored = await session.get(type(order), order.id)
            stored.expires_at = utcnow()
        await close_expired(qr.gateway.db)
        answer = await phone.push(WXPAY, "8.0")
        [event] = await stored_events(gateway)
        attached = await review(database_url, "attach", str(event.id), order.trade_no, "--actor", "bob")

    assert "late payments are not accepted" in answer["msg"] and event.decision == "late_refused"
    assert attached.returncode == 0, attached.stderr
    assert "is paid (paid late)" in attached.stdout
    paid = await reload(gateway, order)
    assert (paid.status, paid.paid_late) == (OrderStatus.PAID, True)
    assert await notifications(gateway) == {order.trade_no: 1}
    [entry] = await audit_log(gateway)
    assert entry.details["event_decision"] == "late_refused" and entry.actor == "bob"


async def test_an_order_of_no_channel_is_refused_as_not_a_personal_code_order(gateway, merchant, database_url):
    order = await placed(gateway, merchant.pid, "NO-CHANNEL")
    with pytest.raises(ReviewRefused) as refused:
        await mark_paid_by_hand(gateway.db, qrpool_settings(database_url), order.trade_no, actor="ops", reason="seen")
    assert refused.value.message == f"order {order.trade_no} is not a personal-code order (channel none)"


@pytest.mark.parametrize("actor", ["   ", "a" * 65])
async def test_who_acts_must_be_named_in_1_to_64_characters(gateway, merchant, database_url, actor):
    order = await placed(gateway, merchant.pid, "WHO")
    with pytest.raises(ReviewRefused) as refused:
        await mark_paid_by_hand(gateway.db, qrpool_settings(database_url), order.trade_no, actor=actor, reason="seen")
    assert refused.value.message == "who does this must be given (1 to 64 characters)"
    # 64 characters pass: the refusal is then about the order.
    with pytest.raises(ReviewRefused, match="not a personal-code order"):
        await mark_paid_by_hand(gateway.db, qrpool_settings(database_url), order.trade_no, actor="a" * 64, reason="x")


async def test_marking_paid_by_hand_needs_a_reason(gateway, merchant, database_url):
    order = await placed(gateway, merchant.pid, "NO-REASON")
    with pytest.raises(ReviewRefused) as refused:
        await mark_paid_by_hand(gateway.db, qrpool_settings(database_url), order.trade_no, actor="ops", reason=" ")
    assert refused.value.message == "a reason is required to mark an order paid without a payment event"


async def test_an_open_order_marked_paid_by_hand_is_not_paid_late(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        await receiving_account(qr)
        order = await offered(qr, merchant.pid, "BY-HAND", 500)
        paid = await mark_paid_by_hand(qr.db, qr.settings, order.trade_no, actor="ops", reason="in the wallet")
    assert (paid.status, paid.paid_late) == (OrderStatus.PAID, False)


@pytest.mark.parametrize(("after_expiry", "late"), [(timedelta(0), False), (timedelta(seconds=1), True)])
async def test_an_attached_event_that_came_after_the_order_expired_pays_it_late(
    gateway, merchant, database_url, after_expiry, late
):
    async with qrpool_gateway(database_url) as qr:
        account = await receiving_account(qr)
        order = await offered(qr, merchant.pid, "ATT-LATE", 500)
        async with qr.db.session() as session:
            event = PaymentEvent(
                event_key="late-1",
                source="vmq",
                account_id=account.id,
                amount_fen=order.pay_amount_fen,
                amount_text="5.00",
                occurred_at=order.expires_at + after_expiry,
                decision=Decision.LATE_REFUSED,
            )
            session.add(event)
        paid = await attach_event(qr.db, qr.settings, event.id, order.trade_no, actor="ops")
    assert (paid.status, paid.paid_late) == (OrderStatus.PAID, late)


async def test_the_queue_is_newest_received_first_and_cut_at_its_limit(gateway, database_url):
    now = utcnow()
    async with gateway.db.session() as session:
        for key, received in (("newest", 2), ("older-first", 0), ("older-second", 0)):
            session.add(
                PaymentEvent(
                    event_key=key,
                    source="vmq",
                    amount_fen=100,
                    amount_text="1.00",
                    occurred_at=now,
                    received_at=now + timedelta(seconds=received),
                    decision=Decision.UNMATCHED,
                )
            )
    queued = await review_queue(gateway.db, limit=2)
    assert [item.event.event_key for item in queued] == ["newest", "older-second"]


async def test_an_event_with_no_readable_amount_is_not_attached(gateway, merchant, database_url):
    order = await placed(gateway, merchant.pid, "UNREADABLE")
    async with gateway.db.session() as session:
        event = PaymentEvent(
            event_key="unreadable", source="vmq", amount_text="9.999", occurred_at=utcnow(), decision=Decision.REJECTED
        )
        session.add(event)
    with pytest.raises(ReviewRefused) as refused:
        await attach_event(gateway.db, qrpool_settings(database_url), event.id, order.trade_no, actor="ops")
    assert refused.value.message == f"event {event.id} carries no amount we could read ('9.999')"


async def unmatched_event(gateway: Gateway, key: str, amount_fen: int, account_id: int | None = None) -> PaymentEvent:
    """A stored report that paid nobody, as the matcher leaves one for the queue."""
    async with gateway.db.session() as session:
        event = PaymentEvent(
            event_key=key,
            source="vmq",
            account_id=account_id,
            amount_fen=amount_fen,
            amount_text=f"{amount_fen / 100:.2f}",
            occurred_at=utcnow(),
            decision=Decision.UNMATCHED,
        )
        session.add(event)
    return event


async def outcome(action) -> Order | str:  # type: ignore[no-untyped-def]
    """The order an operator's action paid, or the words it was refused with."""
    try:
        return await action
    except ReviewRefused as refused:
        return refused.message


async def test_an_event_attached_without_a_reason_says_which_order_it_paid(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        account = await receiving_account(qr)
        order = await offered(qr, merchant.pid, "NO-WHY", 500)
        event = await unmatched_event(qr, "no-why", 500, account.id)
        await attach_event(qr.db, qr.settings, event.id, order.trade_no, actor="ops")
    [stored] = await stored_events(gateway)
    [entry] = await audit_log(gateway)
    assert stored.reason == f"attached by ops: event {event.id} is the payment of order {order.trade_no}"
    assert entry.reason == f"event {event.id} is the payment of order {order.trade_no}"


async def test_the_queue_shows_the_newest_fifty_unless_asked_for_more(gateway, database_url):
    for n in range(51):
        await unmatched_event(gateway, f"queued-{n}", 100)
    assert len(await review_queue(gateway.db)) == 50
    assert len(await review_queue(gateway.db, limit=100)) == 51


async def test_the_audit_entry_is_dated_at_the_moment_the_paid_amounts_cooldown_starts(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_paid_cooldown_seconds=600) as qr:
        account = await receiving_account(qr)
        by_hand = await offered(qr, merchant.pid, "WHEN-1", 500)
        attached = await offered(qr, merchant.pid, "WHEN-2", 700)
        event = await unmatched_event(qr, "when", 700, account.id)
        await mark_paid_by_hand(qr.db, qr.settings, by_hand.trade_no, actor="ops", reason="in the wallet")
        await attach_event(qr.db, qr.settings, event.id, attached.trade_no, actor="ops")
    entries = await audit_log(gateway)
    assert [entry.action for entry in entries] == ["mark_paid", "attach_event"]
    for entry, order in zip(entries, (by_hand, attached), strict=True):
        assert entry.at == (await reservation_of(gateway, order)).hold_until - timedelta(seconds=600)


async def test_two_operators_attaching_one_event_to_two_orders_at_once_pay_only_one(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        first_account = await receiving_account(qr, "wx-a", generic="wxp://a")
        await receiving_account(qr, "wx-b", generic="wxp://b")
        # Two orders asking for the same amount, one on each account: the event could be either's.
        orders = [await offered(qr, merchant.pid, f"BOTH-{n}", 500) for n in (1, 2)]
        assert [order.pay_amount_fen for order in orders] == [500, 500]
        event = await unmatched_event(qr, "both", 500, first_account.id)
        attempts = await meeting_at(
            qr,
            select(PaymentEvent).where(PaymentEvent.id == event.id),
            [
                outcome(attach_event(qr.db, qr.settings, event.id, order.trade_no, actor=f"ops-{n}"))
                for n, order in enumerate(orders)
            ],
        )
        outcomes = [await attempt for attempt in attempts]
    [paid] = [result for result in outcomes if isinstance(result, Order)]
    [refused] = [result for result in outcomes if isinstance(result, str)]
    if gateway.db.dialect == "postgresql":
        # Both read the event unused; the second to write finds it taken.
        assert refused == f"event {event.id} was used by someone else meanwhile"
    else:
        # SQLite's writers queue: the second reads the event already used.
        assert refused == f"event {event.id} was already used: it paid order {paid.trade_no}"
    assert await notifications(gateway) == {paid.trade_no: 1}
    assert [(stored.decision, stored.order_id) for stored in await stored_events(gateway)] == [("attached", paid.id)]
    assert len(await audit_log(gateway)) == 1
    assert (await gateway.merchants.get(merchant.pid)).balance_fen == 500


async def test_two_operators_marking_one_order_paid_at_once_pay_it_once(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        await receiving_account(qr)
        order = await offered(qr, merchant.pid, "TWICE", 500)
        attempts = await meeting_at(
            qr,
            select(Order).where(Order.id == order.id),
            [
                outcome(mark_paid_by_hand(qr.db, qr.settings, order.trade_no, actor=actor, reason="in the wallet"))
                for actor in ("alice", "bob")
            ],
        )
        outcomes = [await attempt for attempt in attempts]
    [paid] = [result for result in outcomes if isinstance(result, Order)]
    [refused] = [result for result in outcomes if isinstance(result, str)]
    if gateway.db.dialect == "postgresql":
        # Both read the order unpaid; the second to write finds it paid and takes nothing.
        assert refused == f"order {order.trade_no} could not be marked paid: already_paid"
    else:
        assert refused == f"order {order.trade_no} is already paid (paid): nothing to do"
    assert paid.status == OrderStatus.PAID
    assert await notifications(gateway) == {order.trade_no: 1}
    assert len(await audit_log(gateway)) == 1
    assert (await gateway.merchants.get(merchant.pid)).balance_fen == 500
