"""Unique amounts: which amount on which account an order's buyer must pay.

A payment on a personal code says only "this account received this amount", so while an
amount on an account may still be matched to an order, no other order may be given it. The
partial unique index on ``(account_id, amount_fen)`` over reservations that are not
``released`` is the guard, not any lookup: each try is its own short transaction that looks at
what is held and inserts the first free amount unless the index already holds it, and losing a
race for it means the next try looks again.

A reservation stays non-released exactly as long as a payment may still be matched to it
(reservation scope equals settlement scope, the acg-faka #881 lesson): until the order's
expiry plus the late-payment grace while unpaid, until the cooldown after payment once paid.
Only the sweeper releases it, once ``hold_until`` has passed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.channels.base import ChannelRefused, RefusalReason
from openepay.config import Settings
from openepay.core.money import format_yuan
from openepay.db import Database
from openepay.db.models import NOT_RELEASED, AmountReservation, Order, QrAccount, QrCode

HELD = "held"
PAID = "paid"
RELEASED = "released"


def candidate_amounts(amount_fen: int, settings: Settings) -> Iterator[int]:
    """The requested amount, then one fen further at a time in the configured direction, never to zero."""
    step = 1 if settings.qrpool_amount_direction == "up" else -1
    for offset in range(settings.qrpool_max_offset_fen + 1):
        amount = amount_fen + step * offset
        if amount <= 0:
            return
        yield amount


@dataclass(frozen=True)
class _Codes:
    account_ids: list[int]
    generic: dict[int, QrCode]
    fixed: dict[tuple[int, int], QrCode]

    def for_amount(self, account_id: int, amount_fen: int) -> QrCode | None:
        """The code a buyer scans to pay this amount: a fixed one for it, else the generic one."""
        return self.fixed.get((account_id, amount_fen)) or self.generic.get(account_id)


async def reserve(
    db: Database,
    order_id: int,
    accounts: Sequence[QrAccount],
    amount_fen: int,
    *,
    hold_until: datetime,
    settings: Settings,
) -> tuple[AmountReservation, QrCode]:
    """Hold the smallest free amount at or near ``amount_fen``, trying every account at each offset.

    A repeated offer for the same order (the buyer reloads, the merchant repeats the request)
    gets the reservation it already holds on one of these accounts, held at least until
    ``hold_until``. Raises ``ChannelRefused(NO_CODE_FOR_AMOUNT)`` when no amount is free.
    """
    account_ids = [account.id for account in accounts]
    async with db.session() as session:
        codes = await _codes_of(session, account_ids)
    amounts = list(candidate_amounts(amount_fen, settings))
    # Smallest offset first, and at each offset every account in turn (dicts keep that order).
    slots = {
        (account_id, amount): code
        for amount in amounts
        for account_id in account_ids
        if (code := codes.for_amount(account_id, amount)) is not None
    }
    # Every lost race means another order took one of the slots, so this ends.
    for _ in range(len(slots) + 1):
        try:
            held = await _hold(db, order_id, codes, slots, hold_until)
        except LostRace:
            continue
        if held is None:
            break
        return held
    raise ChannelRefused(RefusalReason.NO_CODE_FOR_AMOUNT, _exhausted(amounts, len(account_ids), bool(slots)))


def _exhausted(amounts: list[int], account_count: int, had_codes: bool) -> str:
    span = f"{format_yuan(amounts[0])} to {format_yuan(amounts[-1])}" if amounts else "the requested amount"
    if not had_codes:
        return f"qrpool: no amount free: no receiving account has a code for any amount from {span}"
    return (
        f"qrpool: no amount free from {span} on {account_count} receiving account(s): "
        "each is held by another order; try again later"
    )


async def _codes_of(session: AsyncSession, account_ids: list[int]) -> _Codes:
    rows = (await session.scalars(select(QrCode).where(QrCode.account_id.in_(account_ids)))).all()
    return _Codes(
        account_ids=account_ids,
        generic={code.account_id: code for code in rows if code.amount_fen is None},
        fixed={(code.account_id, code.amount_fen): code for code in rows if code.amount_fen is not None},
    )


async def _hold(
    db: Database, order_id: int, codes: _Codes, slots: dict[tuple[int, int], QrCode], hold_until: datetime
) -> tuple[AmountReservation, QrCode] | None:
    """One short transaction: the order's own reservation if it has one, else the first free slot.

    Offers for one order made at the same moment (a double click, a plugin's retry) take turns
    on the order's row, so the second finds the first one's amount instead of taking another.
    Across orders the look at what is held only saves doomed inserts: two orders that saw the
    same slot free both insert it, and the unique index lets one through (the other raises
    ``LostRace``). None when no slot is free.
    """
    async with db.session() as session:
        if await session.scalar(select(Order.id).where(Order.id == order_id).with_for_update()) is None:
            raise LookupError(f"order {order_id} is not stored")
        own = await session.scalars(
            select(AmountReservation)
            .where(
                AmountReservation.order_id == order_id,
                AmountReservation.account_id.in_(codes.account_ids),
                AmountReservation.state == HELD,
            )
            .order_by(AmountReservation.id)
        )
        for reservation in own.all():
            code = codes.for_amount(reservation.account_id, reservation.amount_fen)
            if code is None:
                continue
            extended = await session.execute(
                update(AmountReservation)
                .where(AmountReservation.id == reservation.id, AmountReservation.state == HELD)
                .values(hold_until=max(reservation.hold_until, hold_until))
            )
            if extended.rowcount:
                return reservation, code
        if not slots:
            return None
        held = await session.execute(
            select(AmountReservation.account_id, AmountReservation.amount_fen).where(
                AmountReservation.account_id.in_(codes.account_ids),
                AmountReservation.state != RELEASED,
                AmountReservation.amount_fen.between(min(a for _, a in slots), max(a for _, a in slots)),
            )
        )
        taken = {(account_id, amount) for account_id, amount in held}
        free = next((slot for slot in slots if slot not in taken), None)
        if free is None:
            return None
        reservation = await session.scalar(
            _insert_unless_held(db.dialect)(AmountReservation)
            .values(account_id=free[0], order_id=order_id, amount_fen=free[1], state=HELD, hold_until=hold_until)
            .on_conflict_do_nothing(index_elements=["account_id", "amount_fen"], index_where=NOT_RELEASED)
            .returning(AmountReservation)
        )
    if reservation is None:
        raise LostRace(free)
    return reservation, slots[free]


class LostRace(Exception):
    """Another order held the amount first (between our look and our insert): look again."""


def _insert_unless_held(dialect: str):  # type: ignore[no-untyped-def]
    """The database's ``INSERT ... ON CONFLICT DO NOTHING``: a lost race is an empty answer, not an error
    that PostgreSQL would log with the whole statement, once per losing order."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def release_expired(db: Database, now: datetime) -> int:
    """The sweeper: free every amount whose hold has passed, so new orders may take it again."""
    async with db.session() as session:
        result = await session.execute(
            update(AmountReservation)
            .where(AmountReservation.state.in_((HELD, PAID)), AmountReservation.hold_until <= now)
            .values(state=RELEASED)
        )
    return result.rowcount


def paid_hold_until(paid_at: datetime, settings: Settings) -> datetime:
    """How long a paid order keeps its amount: a duplicated phone notification must not pay another order."""
    return paid_at + timedelta(seconds=settings.qrpool_paid_cooldown_seconds)
