"""What a reported payment means: the one order it pays, or why it pays none.

A phone says "10.01 arrived on this account". Nothing ties that money to an order but the
amount the order reserved on that account, so the rules are strict, and every report is stored
with what was decided and why, in the same transaction as the decision:

- ``paid``: exactly one live (``held``) reservation of that amount on that account, and the
  payment happened inside its window (from the order's creation, less a small clock skew, to
  the end of the hold). The order is paid through the core's one paid path (ledger and
  notification outbox in this transaction) and the reservation stays ``paid`` for the cooldown.
- ``paid_late``: the same, but the money came after the order expired (inside the grace), and
  the operator's policy accepts late payments; the order is flagged ``paid_late``.
- ``late_refused``: the same late payment with the policy off; nothing is credited, the
  reservation keeps the amount until its hold ends, and the event waits for an operator.
- ``suspected_duplicate``: the amount was paid on that account moments ago (a ``paid``
  reservation in its cooldown). Phones report one payment twice (WeChat's "微信支付" and
  "微信收款助手"), so this credits nothing rather than paying some newer order.
- ``unmatched``: anything else: no reservation, a payment before the order existed or after
  the hold, a pay type the account does not take. The operator's review queue.
- ``rejected``: the report was authentic but unusable (stale timestamp, unreadable amount).
- ``attached``: an operator credited the event to an order by hand (``review``).

The same report twice (an exact replay, a device retrying a batch) has the same event key: it
is recognised and answered with the earlier decision, never decided again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.channels.base import Confirmation
from openepay.channels.qrpool.reservations import HELD, PAID, paid_hold_until
from openepay.config import Settings
from openepay.core.money import format_yuan
from openepay.core.payments import PaymentDecision, mark_paid
from openepay.db import Database
from openepay.db.models import AmountReservation, Order, PaymentEvent, QrAccount, QrDevice
from openepay.db.types import utcnow

log = logging.getLogger(__name__)

# How much earlier than its order's creation a payment may appear to have happened: phones'
# clocks and notification delays are not exact, but money sent well before an order existed
# was meant for another one.
CLOCK_SKEW = timedelta(seconds=60)
MAX_PAYLOAD_CHARS = 4096
# Yuan with at most two decimals: what phones report (V免签 sends Java's ``Double.toString``,
# so ``9.91``, ``0.1`` and ``10.0``).
AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")


class Decision(StrEnum):
    PAID = "paid"
    PAID_LATE = "paid_late"
    LATE_REFUSED = "late_refused"
    SUSPECTED_DUPLICATE = "suspected_duplicate"
    UNMATCHED = "unmatched"
    REJECTED = "rejected"
    ATTACHED = "attached"


# Events whose money went to an order; any other event may still be attached by an operator.
CREDITED = (Decision.PAID, Decision.PAID_LATE, Decision.ATTACHED)
REVIEW_QUEUE = (Decision.UNMATCHED, Decision.SUSPECTED_DUPLICATE, Decision.LATE_REFUSED, Decision.REJECTED)


def parse_amount(text: str) -> int | None:
    """``9.91`` -> 991; ``10.0``, ``10.00`` and ``10`` -> 1000; None unless a positive amount in yuan."""
    if not AMOUNT.fullmatch(text):
        return None
    fen = int(Decimal(text) * 100)
    return fen if fen > 0 else None


def event_key(*parts: object) -> str:
    """sha256 over the parts joined with ``|``: what makes a report the same report."""
    return hashlib.sha256("|".join(str(part) for part in parts).encode("utf-8")).hexdigest()


def channel_trade_no(event_id: int) -> str:
    """The upstream number merchants see (``api_trade_no``) for an order paid by an event."""
    return f"QR{event_id}"


@dataclass(frozen=True)
class PaymentReport:
    """One payment as an authenticated device reported it, before anything is decided.

    ``refusal`` is set when the edge already knows the report cannot count (a timestamp out
    of the window, an amount it could not read): it is still stored, because the money may
    have arrived all the same and the operator must be able to see it.
    """

    event_key: str
    source: str
    device: QrDevice
    pay_type: str | None
    amount_fen: int | None
    amount_text: str
    occurred_at: datetime
    payload: str
    refusal: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of a report; ``repeated`` means it was seen before and this is the earlier decision."""

    event_id: int
    decision: Decision
    reason: str
    trade_no: str | None
    repeated: bool = False


@dataclass(frozen=True)
class _Verdict:
    decision: Decision
    reason: str
    order: Order | None = None


async def record_payment(db: Database, settings: Settings, report: PaymentReport) -> Outcome:
    """Store the report and decide it, in one transaction (see the module docstring)."""
    now = utcnow()
    async with db.session() as session:
        event_id = await _insert_event(session, db.dialect, report, now)
        if event_id is None:
            return await _earlier_outcome(session, report.event_key)
        verdict = await _decide(session, settings, report, event_id, now)
        await session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.id == event_id)
            .values(
                decision=verdict.decision,
                reason=verdict.reason,
                order_id=verdict.order.id if verdict.order is not None else None,
            )
        )
        await session.execute(update(QrDevice).where(QrDevice.id == report.device.id).values(last_push_at=now))
    trade_no = verdict.order.trade_no if verdict.order is not None else None
    level = logging.INFO if verdict.decision in CREDITED else logging.WARNING
    log.log(
        level,
        "qrpool payment event %s: %s",
        verdict.decision.value,
        verdict.reason,
        extra={"event_id": event_id, "device_id": report.device.id, "trade_no": trade_no},
    )
    return Outcome(event_id, verdict.decision, verdict.reason, trade_no)


async def _insert_event(session: AsyncSession, dialect: str, report: PaymentReport, now: datetime) -> int | None:
    """Insert the event, or nothing if its key exists; the unique key decides a race between two copies."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return await session.scalar(
        insert(PaymentEvent)
        .values(
            event_key=report.event_key,
            source=report.source,
            account_id=report.device.account_id,
            device_id=report.device.id,
            pay_type=report.pay_type,
            amount_fen=report.amount_fen,
            amount_text=report.amount_text[:32],
            occurred_at=report.occurred_at,
            received_at=now,
            # Replaced below, in this same transaction: nobody ever sees this value.
            decision=Decision.UNMATCHED,
            reason="",
            payload=report.payload[:MAX_PAYLOAD_CHARS],
        )
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(PaymentEvent.id)
    )


async def _earlier_outcome(session: AsyncSession, key: str) -> Outcome:
    event = await session.scalar(select(PaymentEvent).where(PaymentEvent.event_key == key))
    assert event is not None, "an event key that conflicts exists"
    trade_no = None
    if event.order_id is not None:
        trade_no = await session.scalar(select(Order.trade_no).where(Order.id == event.order_id))
    return Outcome(event.id, Decision(event.decision), event.reason, trade_no, repeated=True)


async def _decide(
    session: AsyncSession, settings: Settings, report: PaymentReport, event_id: int, now: datetime
) -> _Verdict:
    if report.refusal is not None or report.amount_fen is None:
        return _Verdict(Decision.REJECTED, report.refusal or "no amount")
    account = await session.get(QrAccount, report.device.account_id)
    assert account is not None, "a device belongs to an account"
    amount = format_yuan(report.amount_fen)
    if report.pay_type != account.pay_type:
        return _Verdict(
            Decision.UNMATCHED,
            f"a {report.pay_type} payment of {amount} reported for account {account.name!r}, "
            f"which takes {account.pay_type}",
        )
    rows = (
        await session.execute(
            select(AmountReservation, Order)
            .join(Order, Order.id == AmountReservation.order_id)
            .where(
                AmountReservation.account_id == account.id,
                AmountReservation.amount_fen == report.amount_fen,
                AmountReservation.state.in_((HELD, PAID)),
            )
        )
    ).all()
    held = [(reservation, order) for reservation, order in rows if reservation.state == HELD]
    if len(held) == 1:
        reservation, order = held[0]
        return await _settle(session, settings, report, event_id, reservation, order, now)
    if held:
        orders = ", ".join(order.trade_no for _, order in held)
        return _Verdict(Decision.UNMATCHED, f"{amount} is held by {len(held)} orders ({orders}): cannot tell which")
    for reservation, order in rows:
        if reservation.state == PAID and report.occurred_at <= reservation.hold_until:
            return _duplicate_of(order, amount)
    return _Verdict(Decision.UNMATCHED, f"no order is waiting for {amount} on account {account.name!r}")


async def _settle(
    session: AsyncSession,
    settings: Settings,
    report: PaymentReport,
    event_id: int,
    reservation: AmountReservation,
    order: Order,
    now: datetime,
) -> _Verdict:
    amount = format_yuan(reservation.amount_fen)
    when = report.occurred_at.isoformat(timespec="seconds")
    if report.occurred_at < order.created_at - CLOCK_SKEW:
        return _Verdict(
            Decision.UNMATCHED,
            f"{amount} paid at {when}, before order {order.trade_no} holding that amount was created: "
            "money meant for an earlier order",
        )
    if report.occurred_at > reservation.hold_until:
        return _Verdict(
            Decision.UNMATCHED,
            f"{amount} paid at {when}, after the hold of order {order.trade_no} on that amount ended",
        )
    stopped_at = min(order.expires_at, order.closed_at or order.expires_at)
    late = report.occurred_at > stopped_at
    if late and not settings.qrpool_accept_late_payments:
        return _Verdict(
            Decision.LATE_REFUSED,
            f"{amount} paid at {when}, after order {order.trade_no} expired; late payments are not accepted "
            "(OPENEPAY_QRPOOL_ACCEPT_LATE_PAYMENTS): review it",
            order,
        )
    confirmation = Confirmation(order.trade_no, reservation.amount_fen, channel_trade_no=channel_trade_no(event_id))
    # The reservation is the evidence: this amount on this account was shown to this order's buyer,
    # even if the buyer has since switched to another pay type (and so another amount).
    paid = await mark_paid(session, order, confirmation, late=late, expected_fen=reservation.amount_fen)
    if paid is PaymentDecision.ALREADY_PAID:
        return _duplicate_of(order, amount)
    await hold_after_payment(session, settings, order.id, now)
    if paid is PaymentDecision.PAID_LATE:
        return _Verdict(Decision.PAID_LATE, f"{amount} paid order {order.trade_no} after it expired (paid late)", order)
    return _Verdict(Decision.PAID, f"{amount} paid order {order.trade_no}", order)


def _duplicate_of(order: Order, amount: str) -> _Verdict:
    return _Verdict(
        Decision.SUSPECTED_DUPLICATE,
        f"{amount} was just paid by order {order.trade_no}: a second report of that payment, not credited again",
        order,
    )


async def hold_after_payment(session: AsyncSession, settings: Settings, order_id: int, paid_at: datetime) -> None:
    """Keep the paid order's amount for the cooldown, so a repeated report cannot pay another order."""
    await session.execute(
        update(AmountReservation)
        .where(AmountReservation.order_id == order_id, AmountReservation.state == HELD)
        .values(state=PAID, hold_until=paid_hold_until(paid_at, settings))
    )
