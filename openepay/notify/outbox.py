"""The notification outbox: rows written with the payment, claimed by workers under a lease.

A worker claims due rows by stamping a lease on them (on PostgreSQL after selecting them
``FOR UPDATE SKIP LOCKED``, so any number of workers on any number of machines share the
work), delivers outside any transaction, then records the attempt. A worker that dies leaves
its lease to run out, and the row is claimed again: delivery is at least once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.core.states import NotifyStatus
from openepay.db import Database
from openepay.db.models import NotifyAttempt, NotifyTask, Order
from openepay.db.types import utcnow

PAID_EVENT = "paid"


async def enqueue(
    session: AsyncSession, *, order_id: int, merchant_pid: int, event: str, now: datetime
) -> None:
    session.add(
        NotifyTask(
            order_id=order_id,
            merchant_pid=merchant_pid,
            event=event,
            status=NotifyStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
        )
    )
    await session.flush()


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    order_id: int
    merchant_pid: int
    event: str
    attempts: int


async def claim(db: Database, owner: str, *, limit: int, lease: timedelta) -> list[ClaimedTask]:
    now = utcnow()
    async with db.session() as session:
        due = (
            select(NotifyTask.id)
            .where(
                NotifyTask.status == NotifyStatus.PENDING,
                NotifyTask.next_attempt_at <= now,
                or_(NotifyTask.lease_expires_at.is_(None), NotifyTask.lease_expires_at <= now),
            )
            .order_by(NotifyTask.next_attempt_at, NotifyTask.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await session.scalars(due)).all())
        if not ids:
            return []
        rows = await session.execute(
            update(NotifyTask)
            .where(NotifyTask.id.in_(ids))
            .values(lease_owner=owner, lease_expires_at=now + lease)
            .returning(
                NotifyTask.id,
                NotifyTask.order_id,
                NotifyTask.merchant_pid,
                NotifyTask.event,
                NotifyTask.attempts,
            )
        )
        return sorted((ClaimedTask(*row) for row in rows.all()), key=lambda task: task.id)


@dataclass(frozen=True)
class AttemptRecord:
    started_at: datetime
    target_host: str
    latency_ms: int
    delivered: bool
    http_status: int | None = None
    body_head: str | None = None
    error_class: str | None = None
    error_detail: str | None = None


async def record_attempt(
    db: Database, task: ClaimedTask, owner: str, attempt: AttemptRecord, retry_delays: tuple[float, ...]
) -> NotifyStatus:
    """Log the attempt and schedule the next one (or give up after the last delay)."""
    now = utcnow()
    attempts = task.attempts + 1
    if attempt.delivered:
        values: dict[str, object] = {"status": NotifyStatus.SUCCEEDED, "delivered_at": now, "last_error": None}
        status = NotifyStatus.SUCCEEDED
    elif attempts > len(retry_delays):
        values = {"status": NotifyStatus.FAILED, "last_error": _describe(attempt)}
        status = NotifyStatus.FAILED
    else:
        values = {
            "next_attempt_at": now + timedelta(seconds=retry_delays[attempts - 1]),
            "last_error": _describe(attempt),
        }
        status = NotifyStatus.PENDING
    async with db.session() as session:
        number = 1 + (
            await session.scalar(select(func.count()).where(NotifyAttempt.task_id == task.id)) or 0
        )
        session.add(
            NotifyAttempt(
                task_id=task.id,
                number=number,
                started_at=attempt.started_at,
                target_host=attempt.target_host[:255],
                http_status=attempt.http_status,
                body_head=attempt.body_head,
                latency_ms=attempt.latency_ms,
                error_class=attempt.error_class,
                error_detail=attempt.error_detail,
                delivered=attempt.delivered,
            )
        )
        await session.execute(
            update(NotifyTask)
            .where(NotifyTask.id == task.id, NotifyTask.lease_owner == owner)
            .values(attempts=attempts, lease_owner=None, lease_expires_at=None, **values)
        )
    return status


def _describe(attempt: AttemptRecord) -> str:
    """One line an operator can act on: why, and what the merchant answered when it answered."""
    parts = [attempt.error_class or "not delivered"]
    if attempt.error_detail:
        parts.append(attempt.error_detail)
    if attempt.http_status is not None:
        parts.append(f"HTTP {attempt.http_status} {attempt.body_head or ''!r}")
    return ": ".join(parts)[:300]


async def resend(db: Database, trade_no: str) -> int:
    """Queue every notification of an order again, now, with a fresh retry schedule.

    Any lease is dropped: "now" must not wait for a stuck worker's lease to run out, and a
    worker still delivering must not overwrite the fresh schedule when it records its attempt.
    """
    async with db.session() as session:
        order_id = select(Order.id).where(Order.trade_no == trade_no).scalar_subquery()
        result = await session.execute(
            update(NotifyTask)
            .where(NotifyTask.order_id == order_id)
            .values(
                status=NotifyStatus.PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        return result.rowcount or 0
