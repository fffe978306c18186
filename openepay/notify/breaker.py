"""Per-merchant circuit breaker: stop knocking on a door that never opens, but keep the mail.

After ``threshold`` failures in a row a merchant's breaker opens: no worker claims its
notifications for a cooldown. Then it is half-open: one probe may go out. A delivered probe
closes the breaker; a failed one opens it again for twice as long (up to a maximum). Attempts
are not counted while the breaker is open, so no notification moves closer to giving up.
State lives in the database so every worker on every machine sees the same breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from openepay.db.models import NotifyBreaker


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int
    cooldown: float
    max_cooldown: float


_CLOSE = (
    update(NotifyBreaker.__table__)
    .where(
        NotifyBreaker.__table__.c.merchant_pid.in_(bindparam("pids", expanding=True)),
        or_(NotifyBreaker.__table__.c.consecutive_failures > 0, NotifyBreaker.__table__.c.open_until.is_not(None)),
    )
    .values(consecutive_failures=0, open_until=None, cooldown_seconds=0.0)
)


async def close_breakers(db: AsyncSession | AsyncConnection, merchant_pids: list[int]) -> None:
    """A delivery to each of these merchants went through: their breakers close.

    The common case: nothing to change, and no row lock taken when a breaker is closed already.
    The statement is built once; the worker runs it on its Core connection.
    """
    await db.execute(_CLOSE, {"pids": merchant_pids})


async def record_outcome(
    session: AsyncSession,
    merchant_pid: int,
    *,
    delivered: bool,
    started_at: datetime,
    now: datetime,
    policy: BreakerPolicy,
) -> None:
    if delivered:
        await close_breakers(session, [merchant_pid])
        return
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(NotifyBreaker)
        .values(merchant_pid=merchant_pid, consecutive_failures=0, cooldown_seconds=0.0)
        .on_conflict_do_nothing(index_elements=["merchant_pid"])
    )
    breaker = await session.scalar(
        select(NotifyBreaker).where(NotifyBreaker.merchant_pid == merchant_pid).with_for_update()
    )
    assert breaker is not None
    breaker.consecutive_failures += 1
    if breaker.open_until is None:
        if breaker.consecutive_failures >= policy.threshold:
            breaker.cooldown_seconds = policy.cooldown
            breaker.open_until = now + timedelta(seconds=policy.cooldown)
    elif started_at >= breaker.open_until:
        # A half-open probe failed; attempts that were already in flight when the breaker
        # opened fail too, but they say nothing new and must not stretch the cooldown.
        breaker.cooldown_seconds = min(breaker.cooldown_seconds * 2, policy.max_cooldown)
        breaker.open_until = now + timedelta(seconds=breaker.cooldown_seconds)
    await session.flush()
