"""The state of the notification queue as an operator asks about it: what is waiting, and who is paused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from openepay.db import Database
from openepay.db.models import FAILED_NOTIFICATION, PENDING_NOTIFICATION, NotifyBreaker, NotifyTask, NotifyWorkerBeat
from openepay.db.types import utcnow
from openepay.metrics import WORKER_ALIVE


@dataclass(frozen=True)
class PausedMerchant:
    """A merchant whose breaker is open: no notification goes to it until ``until``."""

    pid: int
    consecutive_failures: int
    until: datetime
    waiting: int


@dataclass(frozen=True)
class NotifyOverview:
    due: int  # pending and due now
    oldest_due: datetime | None
    scheduled: int  # pending, due later (a retry's wait)
    failed: int  # gave up; waiting for a resend
    workers: int  # seen alive lately
    paused: list[PausedMerchant]


async def notify_overview(db: Database, now: datetime | None = None) -> NotifyOverview:
    now = now or utcnow()
    pending = PENDING_NOTIFICATION
    async with db.reading() as session:
        due, oldest = (
            await session.execute(
                select(func.count(), func.min(NotifyTask.next_attempt_at)).where(
                    pending, NotifyTask.next_attempt_at <= now
                )
            )
        ).one()
        scheduled = await session.scalar(select(func.count()).where(pending, NotifyTask.next_attempt_at > now))
        failed = await session.scalar(select(func.count()).select_from(NotifyTask).where(FAILED_NOTIFICATION))
        workers = await session.scalar(select(func.count()).where(NotifyWorkerBeat.last_seen_at > now - WORKER_ALIVE))
        waiting = (
            select(func.count())
            .where(pending, NotifyTask.merchant_pid == NotifyBreaker.merchant_pid)
            .correlate(NotifyBreaker)
            .scalar_subquery()
        )
        rows = (
            await session.execute(
                select(
                    NotifyBreaker.merchant_pid, NotifyBreaker.consecutive_failures, NotifyBreaker.open_until, waiting
                )
                .where(NotifyBreaker.open_until > now)
                .order_by(NotifyBreaker.open_until)
            )
        ).all()
    return NotifyOverview(
        due=due,
        oldest_due=oldest,
        scheduled=scheduled or 0,
        failed=failed or 0,
        workers=workers or 0,
        paused=[PausedMerchant(pid, failures, until, count) for pid, failures, until, count in rows],
    )
