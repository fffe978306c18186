"""What each channel account has taken today, counted so that daily caps never overshoot.

An order counts against its account's usage row for the business day it was routed on, from
the moment routing picks the account until the order closes unpaid (or the channel refuses
it). The cap is the guard of the one statement that counts: an upsert whose ``DO UPDATE ...
WHERE`` only adds while the new totals stay within the caps, so concurrent orders on
PostgreSQL queue on the row and the last one that would overshoot adds nothing.
"""

from __future__ import annotations

from sqlalchemy import and_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.channels.base import RoutingRules
from openepay.core.states import OrderStatus
from openepay.db import Database
from openepay.db.models import ChannelAccountUsage, Order

RELEASE_BATCH = 500


async def count(db: Database, account_id: int, day: str, amount_fen: int, rules: RoutingRules) -> bool:
    """Count one order of ``amount_fen`` on the account's day; False when that would pass a cap."""
    if rules.daily_amount_fen is not None and amount_fen > rules.daily_amount_fen:
        return False
    if rules.daily_count is not None and rules.daily_count < 1:
        return False
    insert = (postgresql.insert if db.dialect == "postgresql" else sqlite.insert)(ChannelAccountUsage)
    row = ChannelAccountUsage.__table__.c
    statement = insert.values(account_id=account_id, day=day, amount_fen=amount_fen, count=1)
    guards = []
    if rules.daily_amount_fen is not None:
        guards.append(row.amount_fen + amount_fen <= rules.daily_amount_fen)
    if rules.daily_count is not None:
        guards.append(row.count + 1 <= rules.daily_count)
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "day"],
        set_={"amount_fen": row.amount_fen + amount_fen, "count": row.count + 1},
        where=and_(true(), *guards),
    ).returning(row.account_id)
    async with db.session() as session:
        return (await session.scalar(statement)) is not None


async def uncount(session: AsyncSession, account_id: int, day: str, amount_fen: int) -> None:
    await session.execute(
        update(ChannelAccountUsage)
        .where(ChannelAccountUsage.account_id == account_id, ChannelAccountUsage.day == day)
        .values(amount_fen=ChannelAccountUsage.amount_fen - amount_fen, count=ChannelAccountUsage.count - 1)
    )


async def give_back(db: Database, account_id: int, day: str, amount_fen: int) -> None:
    """Undo ``count`` for an order the account did not take after all."""
    async with db.session() as session:
        await uncount(session, account_id, day, amount_fen)


async def release_order(session: AsyncSession, order_id: int, *, only_closed: bool) -> None:
    """Stop counting an order against its account (closed unpaid, or moved to another account).

    The guarded UPDATE of the order's ``usage_day`` makes this happen once, whoever gets there.
    """
    counted = (
        await session.execute(
            select(Order.channel_account_id, Order.amount_fen, Order.usage_day).where(Order.id == order_id)
        )
    ).first()
    if counted is None or counted.usage_day is None or counted.channel_account_id is None:
        return
    query = update(Order).where(Order.id == order_id, Order.usage_day == counted.usage_day)
    if only_closed:
        query = query.where(Order.status == OrderStatus.CLOSED)
    if (await session.execute(query.values(usage_day=None))).rowcount:
        await uncount(session, counted.channel_account_id, counted.usage_day, counted.amount_fen)


async def release_closed(db: Database, limit: int = RELEASE_BATCH) -> int:
    """Give back the usage of orders that closed unpaid, however they were closed (the sweeper's job)."""
    async with db.session() as session:
        ids = (
            await session.scalars(
                select(Order.id).where(Order.usage_day.is_not(None), Order.status == OrderStatus.CLOSED).limit(limit)
            )
        ).all()
    for order_id in ids:
        async with db.session() as session:
            await release_order(session, order_id, only_closed=True)
    return len(ids)


async def used_today(db: Database, day: str) -> dict[int, tuple[int, int]]:
    """Account id -> (amount in fen, number of orders) counted on ``day``."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(ChannelAccountUsage.account_id, ChannelAccountUsage.amount_fen, ChannelAccountUsage.count).where(
                    ChannelAccountUsage.day == day
                )
            )
        ).all()
    return {row.account_id: (row.amount_fen, row.count) for row in rows}
