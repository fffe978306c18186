"""Rows set up or read straight in the database, where going through the gateway's API is beside the point."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

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
