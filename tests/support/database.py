"""Rows set up or read straight in the database, where going through the gateway's API is beside the point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import func, select, text, update

from openepay.core.merchants import _key_context
from openepay.db.models import Merchant, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway


async def merchant_with_key(gateway: Gateway, pid: int, key: str) -> None:
    """A merchant holding the key of a reference vector, so the vector's literal signature applies."""
    await gateway.merchants.create(f"Vector merchant {pid}", pid=pid)
    async with gateway.db.session() as session:
        await session.execute(
            update(Merchant).where(Merchant.pid == pid).values(key_sealed=gateway.box.seal(key, _key_context(pid)))
        )


async def order_count(gateway: Gateway, pid: int) -> int:
    async with gateway.db.session() as session:
        return await session.scalar(select(func.count()).select_from(Order).where(Order.merchant_pid == pid))


async def expire(gateway: Gateway, trade_no: str) -> None:
    """Let the order's time run out, as if the buyer had walked away half an hour ago."""
    async with gateway.db.session() as session:
        await session.execute(
            update(Order).where(Order.trade_no == trade_no).values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def stored_order(gateway: Gateway, trade_no: str) -> Order:
    async with gateway.db.session() as session:
        return (await session.scalars(select(Order).where(Order.trade_no == trade_no))).one()


@asynccontextmanager
async def refused_writes(gateway: Gateway, event: str, table: str, condition: str) -> AsyncIterator[None]:
    """While open, the database fails every ``event`` (INSERT or UPDATE) on ``table`` whose NEW row meets
    ``condition``, the way a full disk or a lost connection fails a write: a real error inside the transaction."""
    if gateway.db.dialect == "postgresql":
        setup = [
            "CREATE FUNCTION test_refused_write() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'could not write (test fault)'; END $$",
            f"CREATE TRIGGER test_refused_write BEFORE {event} ON {table} FOR EACH ROW WHEN ({condition}) "
            "EXECUTE FUNCTION test_refused_write()",
        ]
        teardown = [f"DROP TRIGGER test_refused_write ON {table}", "DROP FUNCTION test_refused_write()"]
    else:
        setup = [
            f"CREATE TRIGGER test_refused_write BEFORE {event} ON {table} WHEN {condition} "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error (test fault)'); END"
        ]
        teardown = ["DROP TRIGGER test_refused_write"]
    async with gateway.db.session() as session:
        for statement in setup:
            await session.execute(text(statement))
    try:
        yield
    finally:
        async with gateway.db.session() as session:
            for statement in teardown:
                await session.execute(text(statement))
