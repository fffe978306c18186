"""Merchant balances: every change is a guarded update plus a journal row, in the caller's transaction.

``(kind, ref)`` is unique in the journal, so the same payment or refund can never post twice
even if its code path runs twice.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.db.models import BalanceEntry, Merchant


class InsufficientBalance(Exception):
    pass


async def post(session: AsyncSession, merchant_pid: int, delta_fen: int, kind: str, ref: str) -> int:
    """Apply ``delta_fen`` to the balance (never below zero) and journal it; returns the new balance."""
    statement = (
        update(Merchant)
        .where(Merchant.pid == merchant_pid)
        .values(balance_fen=Merchant.balance_fen + delta_fen)
        .returning(Merchant.balance_fen)
    )
    if delta_fen < 0:
        statement = statement.where(Merchant.balance_fen >= -delta_fen)
    balance = await session.scalar(statement)
    if balance is None:
        raise InsufficientBalance(merchant_pid)
    session.add(
        BalanceEntry(merchant_pid=merchant_pid, kind=kind, ref=ref, delta_fen=delta_fen, balance_after_fen=balance)
    )
    await session.flush()
    return balance
