"""Asking upstreams about orders still paying, so a lost callback never loses a payment.

Run by the notification worker's sweep, never on a request. An order is asked about once it
has been paying for ``OPENEPAY_RECONCILE_AFTER_SECONDS``, then at most every
``OPENEPAY_RECONCILE_INTERVAL_SECONDS``, and one last time when it expires, just before the
sweep closes it. Each ask is claimed first (a guarded UPDATE of ``checked_at``), so several
workers never ask about the same order at once. What the upstream reports paid goes through
``confirm_payment`` like a callback: same account, exact amount.

Refunds whose channel gave no sure answer (``processing``) are asked about on the same
schedule (``query_refund``) and settled or reversed by what the channel then says; until it
is sure, the amount stays reserved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from openepay.channels.base import ChannelDirectory, Confirmation, UpstreamState, account_ref
from openepay.config import Settings
from openepay.core.orders import channel_view
from openepay.core.payments import confirm_payment
from openepay.core.refunds import ask_channel, resolve_refund
from openepay.core.states import OrderStatus
from openepay.db import Database
from openepay.db.models import UNPAID_ORDER, Order, Refund

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciled:
    asked: int
    credited: int


async def reconcile(
    db: Database, channels: ChannelDirectory, names: list[str], settings: Settings, now: datetime
) -> Reconciled:
    """Ask the upstreams of channels ``names`` about their due orders; credit what they report paid."""
    if not names:
        return Reconciled(0, 0)
    due = await _due_orders(db, names, settings, now)
    asked = credited = 0
    for order in due:
        if not await _claim(db, order, now):
            continue
        channel = channels.channel(order.channel or "")
        account = await channels.account(order.channel or "", account_ref(order.channel_account_id))
        if channel is None or account is None:
            continue
        asked += 1
        try:
            status = await channel.query(account, channel_view(order))
        except Exception as exc:
            log.warning("could not ask %s about %s: %s: %s", account.name, order.trade_no, type(exc).__name__, exc)
            continue
        if status.state != UpstreamState.PAID or status.paid_fen is None:
            continue
        confirmation = Confirmation(order.trade_no, status.paid_fen, status.channel_trade_no, status.buyer)
        decision = await confirm_payment(db, channel.name, confirmation, account_id=order.channel_account_id)
        log.info(
            "reconciliation found a payment",
            extra={"trade_no": order.trade_no, "account": account.name, "decision": decision.value},
        )
        credited += decision.credited
    return Reconciled(asked, credited)


async def _due_orders(db: Database, names: list[str], settings: Settings, now: datetime) -> list[Order]:
    first_ask = now - timedelta(seconds=settings.reconcile_after_seconds)
    again = now - timedelta(seconds=settings.reconcile_interval_seconds)
    async with db.reading() as session:
        return list(
            (
                await session.scalars(
                    select(Order)
                    .where(
                        UNPAID_ORDER,
                        Order.status == OrderStatus.PAYING,
                        Order.channel.in_(names),
                        or_(
                            # One last look before the sweep closes it.
                            (Order.expires_at <= now)
                            & (or_(Order.checked_at.is_(None), Order.checked_at < Order.expires_at)),
                            (Order.created_at <= first_ask)
                            & (or_(Order.checked_at.is_(None), Order.checked_at <= again)),
                        ),
                    )
                    .order_by(Order.id)
                    .limit(settings.reconcile_batch_size)
                )
            ).all()
        )


async def _claim(db: Database, order: Order, now: datetime) -> bool:
    seen = Order.checked_at.is_(None) if order.checked_at is None else Order.checked_at == order.checked_at
    async with db.session() as session:
        claimed = await session.execute(
            update(Order).where(Order.id == order.id, Order.status == OrderStatus.PAYING, seen).values(checked_at=now)
        )
    return bool(claimed.rowcount)


async def reconcile_refunds(db: Database, channels: ChannelDirectory, settings: Settings, now: datetime) -> Reconciled:
    """Ask channels about refunds still processing a while after they were sent; ``credited`` counts those settled."""
    asked = resolved = 0
    for refund in await _due_refunds(db, settings, now):
        if not await _claim_refund(db, refund, now):
            continue
        async with db.session() as session:
            order = await session.get(Order, refund.order_id)
        if order is None:
            continue
        asked += 1
        outcome = await ask_channel(channels, order, refund, again=True)
        await resolve_refund(db, order, refund, outcome)
        if refund.status != "processing":
            log.info(
                "reconciliation settled a refund",
                extra={"trade_no": order.trade_no, "refund_no": refund.refund_no, "status": refund.status},
            )
            resolved += 1
    return Reconciled(asked, resolved)


async def _due_refunds(db: Database, settings: Settings, now: datetime) -> list[Refund]:
    first_ask = now - timedelta(seconds=settings.reconcile_after_seconds)
    again = now - timedelta(seconds=settings.reconcile_interval_seconds)
    async with db.reading() as session:
        return list(
            (
                await session.scalars(
                    select(Refund)
                    .where(
                        Refund.status == "processing",
                        Refund.created_at <= first_ask,
                        or_(Refund.checked_at.is_(None), Refund.checked_at <= again),
                    )
                    .order_by(Refund.id)
                    .limit(settings.reconcile_batch_size)
                )
            ).all()
        )


async def _claim_refund(db: Database, refund: Refund, now: datetime) -> bool:
    seen = Refund.checked_at.is_(None) if refund.checked_at is None else Refund.checked_at == refund.checked_at
    async with db.session() as session:
        claimed = await session.execute(
            update(Refund).where(Refund.id == refund.id, Refund.status == "processing", seen).values(checked_at=now)
        )
    return bool(claimed.rowcount)
