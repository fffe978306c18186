"""What the matcher would not decide, decided by a person: the review queue, attaching, marking paid.

The matcher credits nothing it is not sure of; the money behind an unmatched, duplicate-looking,
late or unreadable report is still in the receiving account, and a buyer is often waiting for
their order. An operator looks at the queue and either attaches an event to the order it pays,
or marks an order paid with no event at all (the phone was off; the payment is in the wallet's
own history), giving a reason. Both go through the core's paid path like any payment (ledger,
notification outbox, the reservation kept for the cooldown) and both are written to the audit
log with who did it, when, why and on which evidence, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.channels.base import Confirmation
from openepay.channels.qrpool.matching import (
    CREDITED,
    REVIEW_QUEUE,
    Decision,
    channel_trade_no,
    hold_after_payment,
)
from openepay.config import Settings
from openepay.core.money import format_yuan
from openepay.core.payments import mark_paid
from openepay.core.states import SETTLED_PAID
from openepay.db import Database
from openepay.db.models import AuditEntry, Order, PaymentEvent, QrAccount
from openepay.db.types import utcnow

CHANNEL = "qrpool"
MAX_ACTOR = 64


class ReviewRefused(Exception):
    """A manual action that must not happen; ``message`` says why, for the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class QueuedEvent:
    event: PaymentEvent
    account: str | None
    trade_no: str | None


async def review_queue(db: Database, decisions: Sequence[str] = REVIEW_QUEUE, limit: int = 50) -> list[QueuedEvent]:
    """Events with one of ``decisions``, newest first, with their account's name and the order they concern."""
    query = (
        select(PaymentEvent, QrAccount.name, Order.trade_no)
        .outerjoin(QrAccount, QrAccount.id == PaymentEvent.account_id)
        .outerjoin(Order, Order.id == PaymentEvent.order_id)
        .where(PaymentEvent.decision.in_(list(decisions)))
        .order_by(PaymentEvent.received_at.desc(), PaymentEvent.id.desc())
        .limit(limit)
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    return [QueuedEvent(event, account, trade_no) for event, account, trade_no in rows]


def _check_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor or len(actor) > MAX_ACTOR:
        raise ReviewRefused(f"who does this must be given (1 to {MAX_ACTOR} characters)")
    return actor


async def _payable_order(session: AsyncSession, trade_no: str) -> Order:
    order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
    if order is None:
        raise ReviewRefused(f"no order {trade_no}")
    if order.channel != CHANNEL:
        raise ReviewRefused(f"order {trade_no} is not a personal-code order (channel {order.channel or 'none'})")
    if order.status in SETTLED_PAID:
        raise ReviewRefused(f"order {trade_no} is already paid ({order.status}): nothing to do")
    return order


async def attach_event(
    db: Database, settings: Settings, event_id: int, trade_no: str, *, actor: str, reason: str = ""
) -> Order:
    """Credit a stored event to an order: the event is the payment of that order, says the operator.

    Refused for an event already used, an event with no amount or another amount than the
    order's amount to pay (the buyer paid something else: that is a refund and a new payment,
    not a match), and an order already paid.
    """
    actor = _check_actor(actor)
    now = utcnow()
    async with db.session() as session:
        event = await session.get(PaymentEvent, event_id)
        if event is None:
            raise ReviewRefused(f"no event {event_id}")
        if event.decision in CREDITED:
            used_for = await session.scalar(select(Order.trade_no).where(Order.id == event.order_id))
            raise ReviewRefused(f"event {event_id} was already used: it paid order {used_for}")
        if event.amount_fen is None:
            raise ReviewRefused(f"event {event_id} carries no amount we could read ({event.amount_text!r})")
        order = await _payable_order(session, trade_no)
        if event.amount_fen != order.pay_amount_fen:
            raise ReviewRefused(
                f"event {event_id} is {format_yuan(event.amount_fen)} but order {trade_no} asks the buyer for "
                f"{format_yuan(order.pay_amount_fen)}: not attached"
            )
        before = {"event_decision": event.decision, "event_reason": event.reason}
        why = reason.strip() or f"event {event_id} is the payment of order {trade_no}"
        claimed = await session.scalar(
            update(PaymentEvent)
            .where(PaymentEvent.id == event_id, PaymentEvent.decision.not_in(list(CREDITED)))
            .values(decision=Decision.ATTACHED, order_id=order.id, reason=f"attached by {actor}: {why}")
            .returning(PaymentEvent.id)
        )
        if claimed is None:
            raise ReviewRefused(f"event {event_id} was used by someone else meanwhile")
        late = event.occurred_at > min(order.expires_at, order.closed_at or order.expires_at)
        confirmation = Confirmation(trade_no, event.amount_fen, channel_trade_no=channel_trade_no(event_id))
        await _pay(session, settings, order, confirmation, late=late, now=now)
        _audit(session, actor, "attach_event", order, why, now, event_id=event_id, details=before)
    return await _reloaded(db, order.id)


async def mark_paid_by_hand(db: Database, settings: Settings, trade_no: str, *, actor: str, reason: str) -> Order:
    """Mark an order paid with no payment event (the phone missed it), for a reason that must be given."""
    actor = _check_actor(actor)
    why = reason.strip()
    if not why:
        raise ReviewRefused("a reason is required to mark an order paid without a payment event")
    now = utcnow()
    async with db.session() as session:
        order = await _payable_order(session, trade_no)
        before = {"status": order.status}
        await _pay(session, settings, order, Confirmation(trade_no, order.pay_amount_fen), late=False, now=now)
        _audit(session, actor, "mark_paid", order, why, now, event_id=None, details=before)
    return await _reloaded(db, order.id)


async def _pay(
    session: AsyncSession, settings: Settings, order: Order, confirmation: Confirmation, *, late: bool, now: datetime
) -> None:
    paid = await mark_paid(session, order, confirmation, late=late)
    if not paid.credited:
        # Raised inside the transaction: the event stays as it was.
        raise ReviewRefused(f"order {order.trade_no} could not be marked paid: {paid.value}")
    await hold_after_payment(session, settings, order.id, now)


def _audit(
    session: AsyncSession,
    actor: str,
    action: str,
    order: Order,
    reason: str,
    now: datetime,
    *,
    event_id: int | None,
    details: dict[str, Any],
) -> None:
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action=action,
            trade_no=order.trade_no,
            event_id=event_id,
            reason=reason,
            details={**details, "pay_amount": format_yuan(order.pay_amount_fen)},
        )
    )


async def _reloaded(db: Database, order_id: int) -> Order:
    async with db.session() as session:
        order = await session.get(Order, order_id, populate_existing=True)
    assert order is not None
    return order
