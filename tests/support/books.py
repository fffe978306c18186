"""The money rules every state of the database keeps, whatever requests came before.

An order never has more refunded than was paid, and its refunded amount is what its live
refunds add up to; a merchant's balance is the sum of its journal, and each journal line's
running balance follows from the one before. The fuzz tests check them after every request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from openepay.db.models import BalanceEntry, Merchant, Order, Refund

LIVE_REFUNDS = ("processing", "succeeded")


async def _broken_rules(database_url: str) -> list[str]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            orders = (await conn.execute(select(Order.trade_no, Order.id, Order.paid_fen, Order.refunded_fen))).all()
            refunds = (await conn.execute(select(Refund.order_id, Refund.amount_fen, Refund.status))).all()
            merchants = (await conn.execute(select(Merchant.pid, Merchant.balance_fen))).all()
            journal = (
                await conn.execute(
                    select(BalanceEntry.merchant_pid, BalanceEntry.delta_fen, BalanceEntry.balance_after_fen).order_by(
                        BalanceEntry.id
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    broken = []
    refunded: dict[int, int] = defaultdict(int)
    for order_id, amount_fen, status in refunds:
        if status in LIVE_REFUNDS:
            refunded[order_id] += amount_fen
    for trade_no, order_id, paid_fen, refunded_fen in orders:
        if not 0 <= refunded_fen <= (paid_fen or 0):
            broken.append(f"order {trade_no}: {refunded_fen} fen refunded of {paid_fen} paid")
        if refunded_fen != refunded[order_id]:
            broken.append(f"order {trade_no}: refunded {refunded_fen} fen, its refunds add up to {refunded[order_id]}")
    running: dict[int, int] = defaultdict(int)
    for pid, delta_fen, balance_after_fen in journal:
        running[pid] += delta_fen
        if balance_after_fen != running[pid]:
            broken.append(f"merchant {pid}: a journal line ends at {balance_after_fen} fen, its sum is {running[pid]}")
    for pid, balance_fen in merchants:
        if balance_fen != running[pid]:
            broken.append(f"merchant {pid}: balance {balance_fen} fen, journal sum {running[pid]}")
    return broken


def assert_money_kept(database_url: str) -> None:
    """Fail with every broken rule, read on a connection of its own (callable from a test that is not async)."""
    loop = asyncio.new_event_loop()
    try:
        broken = loop.run_until_complete(_broken_rules(database_url))
    finally:
        loop.close()
    assert not broken, broken
