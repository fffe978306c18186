"""The figures on the console's first page: today's and yesterday's takings, notifications waiting and paused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from openepay.core.states import SETTLED_PAID
from openepay.db import Database
from openepay.db.models import PENDING_NOTIFICATION, Merchant, NotifyBreaker, NotifyTask, Order
from openepay.db.types import utcnow


@dataclass(frozen=True)
class Day:
    paid_fen: int
    paid_count: int
    created_count: int
    # Of the orders created that day, the share paid (None when there were none).
    success_rate: float | None


@dataclass(frozen=True)
class PausedMerchant:
    pid: int
    name: str
    until: datetime
    failures: int


@dataclass(frozen=True)
class DayTotal:
    day: date
    paid_fen: int
    paid_count: int


@dataclass(frozen=True)
class Dashboard:
    today: Day
    yesterday: Day
    backlog: int
    oldest_due: datetime | None
    paused: list[PausedMerchant]
    # The last ``CHART_DAYS`` local days, oldest first, today last.
    days: list[DayTotal]


CHART_DAYS = 30


def day_start(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def _day(db: Database, start: datetime, end: datetime) -> Day:
    async with db.reading() as session:
        paid_fen, paid_count = (
            await session.execute(
                select(func.coalesce(func.sum(Order.paid_fen), 0), func.count()).where(
                    Order.paid_at >= start, Order.paid_at < end, Order.status.in_(SETTLED_PAID)
                )
            )
        ).one()
        created, created_paid = (
            await session.execute(
                select(func.count(), func.count().filter(Order.status.in_(SETTLED_PAID))).where(
                    Order.created_at >= start, Order.created_at < end
                )
            )
        ).one()
    return Day(int(paid_fen), int(paid_count), int(created), created_paid / created if created else None)


async def _paid_per_day(db: Database, today: datetime, zone: ZoneInfo) -> list[DayTotal]:
    """Each local day's paid total: one range over the ``paid_at`` index per day."""
    starts = [today]
    for _ in range(CHART_DAYS - 1):
        starts.insert(0, day_start(starts[0] - timedelta(hours=12), zone))
    ends = [*starts[1:], day_start(today + timedelta(hours=36), zone)]
    totals = []
    async with db.reading() as session:
        for start, end in zip(starts, ends, strict=True):
            paid_fen, count = (
                await session.execute(
                    select(func.coalesce(func.sum(Order.paid_fen), 0), func.count()).where(
                        Order.paid_at >= start, Order.paid_at < end, Order.status.in_(SETTLED_PAID)
                    )
                )
            ).one()
            totals.append(DayTotal(start.date(), int(paid_fen), int(count)))
    return totals


async def load(db: Database, zone: ZoneInfo) -> Dashboard:
    now = utcnow()
    today = day_start(now, zone)
    # A day is 24 hours except across a daylight-saving change: take the local midnights themselves.
    yesterday = day_start(today - timedelta(hours=12), zone)
    tomorrow = day_start(today + timedelta(hours=36), zone)
    async with db.reading() as session:
        backlog, oldest = (
            await session.execute(
                select(func.count(), func.min(NotifyTask.next_attempt_at)).where(PENDING_NOTIFICATION)
            )
        ).one()
        paused_rows = (
            await session.execute(
                select(NotifyBreaker, Merchant.name)
                .join(Merchant, Merchant.pid == NotifyBreaker.merchant_pid)
                .where(NotifyBreaker.open_until > now)
                .order_by(NotifyBreaker.open_until)
            )
        ).all()
    if isinstance(oldest, datetime) and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return Dashboard(
        today=await _day(db, today, tomorrow),
        yesterday=await _day(db, yesterday, today),
        backlog=int(backlog),
        oldest_due=oldest,
        paused=[
            PausedMerchant(breaker.merchant_pid, name, breaker.open_until, breaker.consecutive_failures)
            for breaker, name in paused_rows
        ],
        days=await _paid_per_day(db, today, zone),
    )
