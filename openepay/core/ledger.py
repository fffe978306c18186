"""Merchant balances: every change is a guarded update plus a journal row, in the caller's transaction.

``(kind, ref)`` is unique in the journal, so the same payment or refund can never post twice
even if its code path runs twice. A balance stays between zero and what its 64-bit column
holds: PostgreSQL would fail on an overflowing sum, and SQLite would silently store it as a
float, after which no amount in it is exact.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.core.money import MAX_STORED_FEN
from openepay.db.models import BalanceEntry, Merchant


class InsufficientBalance(Exception):
    pass


class BalanceOutOfRange(Exception):
    """The change would take the balance past what its column holds; nothing was changed."""


async def post(session: AsyncSession, merchant_pid: int, delta_fen: int, kind: str, ref: str) -> int:
    """Apply ``delta_fen`` to the balance (never below zero, never past ``MAX_STORED_FEN``) and
    journal it; returns the new balance.

    The guard compares before it adds (``balance <= MAX - delta``), so the database never
    computes a sum it cannot hold.
    """
    if abs(delta_fen) > MAX_STORED_FEN:
        raise BalanceOutOfRange(merchant_pid, delta_fen)
    statement = (
        update(Merchant)
        .where(Merchant.pid == merchant_pid)
        .values(balance_fen=Merchant.balance_fen + delta_fen)
        .returning(Merchant.balance_fen)
    )
    if delta_fen < 0:
        statement = statement.where(Merchant.balance_fen >= -delta_fen)
    else:
        statement = statement.where(Merchant.balance_fen <= MAX_STORED_FEN - delta_fen)
    balance = await session.scalar(statement)
    if balance is None and delta_fen >= 0:
        raise BalanceOutOfRange(merchant_pid, delta_fen)
    if balance is None:
        raise InsufficientBalance(merchant_pid)
    session.add(
        BalanceEntry(merchant_pid=merchant_pid, kind=kind, ref=ref, delta_fen=delta_fen, balance_after_fen=balance)
    )
    await session.flush()
    return balance
