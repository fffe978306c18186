"""Finding orders for the console: the filter, totals for it, pages, the CSV export, and one order's timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select

from openepay.core.money import format_yuan
from openepay.db import Database
from openepay.db.models import (
    AuditEntry,
    ChannelAccountRecord,
    ChannelCallback,
    NotifyAttempt,
    NotifyTask,
    Order,
    Refund,
)

PER_PAGE = 50
EXPORT_LIMIT = 100_000


@dataclass(frozen=True)
class OrderFilter:
    trade_no: str | None = None
    out_trade_no: str | None = None
    merchant: int | None = None
    status: str | None = None
    channel: str | None = None
    pay_type: str | None = None
    # Local calendar days in the operator's time zone, both included.
    date_from: date | None = None
    date_to: date | None = None

    def conditions(self, zone: ZoneInfo) -> list[Any]:
        found: list[Any] = []
        if self.trade_no:
            found.append(Order.trade_no == self.trade_no)
        if self.out_trade_no:
            found.append(Order.out_trade_no == self.out_trade_no)
        if self.merchant is not None:
            found.append(Order.merchant_pid == self.merchant)
        if self.status:
            found.append(Order.status == self.status)
        if self.channel:
            found.append(Order.channel == self.channel)
        if self.pay_type:
            found.append(Order.pay_type == self.pay_type)
        if self.date_from:
            found.append(Order.created_at >= datetime.combine(self.date_from, time(), zone))
        if self.date_to:
            found.append(Order.created_at < datetime.combine(self.date_to + timedelta(days=1), time(), zone))
        return found


@dataclass(frozen=True)
class Totals:
    count: int
    amount_fen: int
    paid_fen: int


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    totals: Totals
    page: int
    pages: int


async def search(db: Database, wanted: OrderFilter, zone: ZoneInfo, page: int = 1) -> OrderPage:
    where = wanted.conditions(zone)
    async with db.reading() as session:
        count, amount, paid = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(Order.amount_fen), 0),
                    func.coalesce(func.sum(Order.paid_fen), 0),
                ).where(*where)
            )
        ).one()
        pages = max(1, -(-int(count) // PER_PAGE))
        page = min(max(page, 1), pages)
        orders = (
            await session.scalars(
                select(Order).where(*where).order_by(Order.id.desc()).offset((page - 1) * PER_PAGE).limit(PER_PAGE)
            )
        ).all()
    return OrderPage(list(orders), Totals(int(count), int(amount), int(paid)), page, pages)


async def export(db: Database, wanted: OrderFilter, zone: ZoneInfo) -> AsyncIterator[Order]:
    """The filter's orders, newest first, read in batches (at most ``EXPORT_LIMIT``)."""
    query: Select[tuple[Order]] = (
        select(Order).where(*wanted.conditions(zone)).order_by(Order.id.desc()).limit(EXPORT_LIMIT)
    )
    async with db.reading() as session:
        result = await session.stream_scalars(query.execution_options(yield_per=500))
        async for order in result:
            yield order


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    text: str
    detail: list[str] = field(default_factory=list)
    ok: bool | None = None


@dataclass(frozen=True)
class OrderStory:
    order: Order
    account: str | None
    events: list[Event]
    notification_states: list[NotifyTask]


def _routing_event(order: Order, account: str | None) -> Event | None:
    routing = order.routing
    if not order.channel:
        return None
    try:
        at = datetime.fromisoformat(str(routing.get("at"))) if routing and routing.get("at") else order.created_at
    except ValueError:
        at = order.created_at
    if at.tzinfo is None:
        at = at.replace(tzinfo=order.created_at.tzinfo)
    # Routing notes its time to the second; it never comes before the order it routed.
    at = max(at, order.created_at)
    detail = [
        f"{entry.get('outcome')} {entry.get('account')} ({entry.get('channel')}): {entry.get('reason')}"
        for entry in (routing or {}).get("considered", [])
    ]
    how = f" · {routing.get('strategy')}" if routing and routing.get("strategy") else ""
    return Event(at, "ev_routed", f"{order.channel} · {account or 'built-in'}{how}", detail)


async def story(db: Database, trade_no: str) -> OrderStory | None:
    """The order and everything that happened to it, oldest first."""
    async with db.reading() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
        if order is None:
            return None
        account = (
            await session.scalar(
                select(ChannelAccountRecord.name).where(ChannelAccountRecord.id == order.channel_account_id)
            )
            if order.channel_account_id is not None
            else None
        )
        tasks = list((await session.scalars(select(NotifyTask).where(NotifyTask.order_id == order.id))).all())
        attempts = (
            await session.scalars(
                select(NotifyAttempt)
                .where(NotifyAttempt.task_id.in_([task.id for task in tasks]))
                .order_by(NotifyAttempt.started_at, NotifyAttempt.id)
            )
        ).all()
        callbacks = (
            await session.scalars(
                select(ChannelCallback).where(ChannelCallback.trade_no == trade_no).order_by(ChannelCallback.id)
            )
        ).all()
        refunds = (await session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))).all()
        actions = (
            await session.scalars(
                select(AuditEntry)
                .where(or_(AuditEntry.trade_no == trade_no, AuditEntry.target == f"order:{trade_no}"))
                .order_by(AuditEntry.id)
            )
        ).all()
    events = [Event(order.created_at, "ev_created", f"{order.dialect} · {order.out_trade_no}")]
    routed = _routing_event(order, account)
    if routed is not None:
        events.append(routed)
    for callback in callbacks:
        events.append(
            Event(callback.received_at, "ev_callback", f"{callback.channel}: {callback.decision}", ok=callback.verified)
        )
    if order.paid_at is not None:
        events.append(
            Event(order.paid_at, "ev_paid_late" if order.paid_late else "ev_paid", order.channel_trade_no or "")
        )
    if order.closed_at is not None:
        events.append(Event(order.closed_at, "ev_closed", ""))
    for attempt in attempts:
        answer = f"HTTP {attempt.http_status}" if attempt.http_status is not None else (attempt.error_class or "")
        detail = [f"{attempt.body_head!r}" if attempt.body_head is not None else ""]
        if attempt.error_class:
            detail.append(f"{attempt.error_class}: {attempt.error_detail or ''}")
        events.append(
            Event(
                attempt.started_at,
                "ev_attempt",
                f"#{attempt.number} {attempt.target_host} · {answer} · {attempt.latency_ms} ms",
                [line for line in detail if line],
                ok=attempt.delivered,
            )
        )
    for made in refunds:
        # A refund is told by its state now: processing (reserved, the channel not yet sure), succeeded, failed.
        events.append(
            Event(made.created_at, f"ev_refund_{made.status}", f"{made.refund_no} · ¥{format_yuan(made.amount_fen)}")
        )
    for action in actions:
        events.append(
            Event(action.at, "ev_audit", f"{action.actor}: {action.action}", [action.reason] if action.reason else [])
        )
    events.sort(key=lambda event: event.at)
    return OrderStory(order, account, events, tasks)
