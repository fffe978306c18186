"""Refunds: reserve, ask the order's channel account, then settle or undo, every step guarded.

The order's refunded total and the merchant's balance move first, in one transaction whose
guards make over-refunding impossible under any concurrency
(``refunded_fen + amount <= paid_fen``, ``balance_fen >= amount``); only then is the channel
asked. If the channel surely refused, the reservation is reversed. If its answer is uncertain
(a timeout, an unreadable answer, a raised error), the refund stays ``processing`` with the
amount still reserved: freeing it could let the buyer be refunded twice. Reconciliation then
asks the channel (``query_refund``) and settles it either way with ``resolve_refund``.
Settling and reversing are guarded on the refund still processing, so the first answer wins.
A channel that cannot ask its upstream leaves the refund processing until the operator, who
checked it there, settles it (``settle_by_operator``) through the very same steps.

Every transaction here takes the order's row lock first (then the merchant's and the
refund's), the same order ``confirm_payment`` uses, so concurrent refunds of one order
queue up on PostgreSQL instead of deadlocking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.channels.base import ChannelDirectory, RefundOutcome, account_ref
from openepay.core import ledger
from openepay.core.ids import trade_numbers
from openepay.core.orders import channel_view
from openepay.core.states import REFUNDABLE, OrderStatus
from openepay.db import Database
from openepay.db.models import Order, Refund

log = logging.getLogger(__name__)


class RefundProblem(StrEnum):
    ORDER_NOT_FOUND = "order_not_found"
    NOT_PAID = "not_paid"
    EXCEEDS_ORDER = "exceeds_order"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    CHANNEL_FAILED = "channel_failed"
    # The channel cannot refund at all (personal receive codes): asking again will not help.
    CHANNEL_CANNOT_REFUND = "channel_cannot_refund"
    OUT_REFUND_NO_REUSED = "out_refund_no_reused"
    # The channel's answer is not sure yet: the refund stays in progress until reconciliation settles it.
    CHANNEL_PENDING = "channel_pending"
    # A retry of a refund number whose first request is still running, or failed: never a success.
    EARLIER_IN_PROGRESS = "earlier_in_progress"
    EARLIER_FAILED = "earlier_failed"


class RefundError(Exception):
    def __init__(self, problem: RefundProblem, detail: str = "") -> None:
        super().__init__(problem.value, detail)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class RefundResult:
    refund: Refund
    order: Order
    repeated: bool = False


async def refund_order(
    db: Database,
    channels: ChannelDirectory,
    order: Order | None,
    amount_fen: int,
    *,
    out_refund_no: str | None = None,
) -> RefundResult:
    if order is None:
        raise RefundError(RefundProblem.ORDER_NOT_FOUND)
    if out_refund_no:
        earlier = await _find_by_out_refund_no(db, order.merchant_pid, out_refund_no)
        if earlier is not None:
            return _repeat_of(earlier, order, amount_fen)
    if order.status not in REFUNDABLE:
        raise RefundError(RefundProblem.NOT_PAID)
    if amount_fen > (order.paid_fen or 0) - order.refunded_fen:
        raise RefundError(RefundProblem.EXCEEDS_ORDER)

    try:
        refund = await _reserve(db, order, amount_fen, out_refund_no)
    except IntegrityError:
        # A retry racing the first request with the same out_refund_no lost on the UNIQUE
        # constraint (its reservation rolled back); it is answered like any later retry.
        earlier = await _find_by_out_refund_no(db, order.merchant_pid, out_refund_no) if out_refund_no else None
        if earlier is None:
            raise
        return _repeat_of(earlier, order, amount_fen)
    outcome = await ask_channel(channels, order, refund)
    resolved = await resolve_refund(db, order, refund, outcome)
    if refund.status == "processing":
        raise RefundError(RefundProblem.CHANNEL_PENDING, outcome.message)
    if refund.status == "failed":
        raise RefundError(
            RefundProblem.CHANNEL_CANNOT_REFUND if outcome.unsupported else RefundProblem.CHANNEL_FAILED,
            outcome.message,
        )
    return RefundResult(refund, resolved)


async def ask_channel(
    channels: ChannelDirectory, order: Order, refund: Refund, *, again: bool = False
) -> RefundOutcome:
    """The order's channel account refunds (or, ``again``, says what became of the refund).

    An error the channel raises leaves the outcome unknown: pending, never a failure.
    """
    channel = channels.channel(order.channel) if order.channel else None
    account = await channels.account(order.channel, account_ref(order.channel_account_id)) if channel else None
    if channel is None or account is None:
        # Nothing was sent; asking again later may find the channel enabled.
        return RefundOutcome(False, f"channel {order.channel} is not enabled", pending=again)
    try:
        if again:
            return await channel.query_refund(account, channel_view(order), refund.amount_fen, refund.refund_no)
        return await channel.refund(account, channel_view(order), refund.amount_fen, refund.refund_no)
    except Exception as exc:
        log.exception("refund %s: channel error, outcome unknown", refund.refund_no)
        return RefundOutcome(False, str(exc) or type(exc).__name__, pending=True)


# Written in the transaction that settles or reverses a refund, only if this call is the one that does
# (the operator's audit entry).
AlsoRecord = Callable[[AsyncSession], None]


class RefundNotProcessing(Exception):
    """The refund is not (or no longer) waiting for an answer: there is nothing to settle."""

    def __init__(self, refund_no: str, status: str | None) -> None:
        super().__init__(refund_no, status)
        self.refund_no = refund_no
        self.status = status


async def settle_by_operator(
    db: Database, refund_no: str, *, succeeded: bool, reason: str, also: AlsoRecord | None = None
) -> tuple[Order, Refund]:
    """The operator's word on a refund still processing, after checking it with the upstream.

    ``succeeded``: the money reached the buyer, the order counts it as refunded; otherwise the
    reservation goes back to the order and the merchant's balance. Both are exactly what
    reconciliation does with a channel's sure answer (``resolve_refund``), guarded on the
    refund still processing. ``RefundNotProcessing`` when it is unknown or already settled,
    by reconciliation or another operator, meanwhile included.
    """
    async with db.session() as session:
        refund = await session.scalar(select(Refund).where(Refund.refund_no == refund_no))
        order = await session.get(Order, refund.order_id) if refund is not None else None
    if refund is None or order is None:
        raise RefundNotProcessing(refund_no, None)
    if refund.status != "processing":
        raise RefundNotProcessing(refund_no, refund.status)
    outcome = RefundOutcome(succeeded, f"settled by the operator: {reason}")
    order = await resolve_refund(db, order, refund, outcome, also=also)
    if refund.status != ("succeeded" if succeeded else "failed"):
        raise RefundNotProcessing(refund_no, refund.status)
    return order, refund


async def resolve_refund(
    db: Database, order: Order, refund: Refund, outcome: RefundOutcome, *, also: AlsoRecord | None = None
) -> Order:
    """Settle, reverse, or leave processing, as the channel's outcome says; ``refund.status`` tells which happened.

    A refund another worker (or the first request) settled meanwhile is left as it is.
    """
    if outcome.pending:
        # The channel's words are for the operator; the merchant is told only the problem.
        log.warning(
            "refund %s of order %s: channel %s has not confirmed it, it stays in progress: %s",
            refund.refund_no,
            order.trade_no,
            order.channel,
            outcome.message,
            extra={"trade_no": order.trade_no},
        )
        return order
    if not outcome.succeeded:
        log.warning(
            "refund %s of order %s refused by channel %s: %s",
            refund.refund_no,
            order.trade_no,
            order.channel,
            outcome.message,
            extra={"trade_no": order.trade_no},
        )
        await _reverse(db, order, refund, also)
        return order
    return await _settle(db, order, refund, also)


def _repeat_of(earlier: Refund, order: Order, amount_fen: int) -> RefundResult:
    if earlier.order_id != order.id or earlier.amount_fen != amount_fen:
        raise RefundError(RefundProblem.OUT_REFUND_NO_REUSED)
    if earlier.status == "processing":
        raise RefundError(RefundProblem.EARLIER_IN_PROGRESS)
    if earlier.status != "succeeded":
        raise RefundError(RefundProblem.EARLIER_FAILED)
    return RefundResult(earlier, order, repeated=True)


async def _find_by_out_refund_no(db: Database, merchant_pid: int, out_refund_no: str) -> Refund | None:
    async with db.reading() as session:
        return await session.scalar(
            select(Refund).where(Refund.merchant_pid == merchant_pid, Refund.out_refund_no == out_refund_no)
        )


async def _reserve(db: Database, order: Order, amount_fen: int, out_refund_no: str | None) -> Refund:
    refund_no = trade_numbers.next()
    async with db.session() as session:
        reserved = await session.scalar(
            update(Order)
            .where(
                Order.id == order.id,
                Order.status.in_(REFUNDABLE),
                Order.refunded_fen + amount_fen <= Order.paid_fen,
            )
            .values(refunded_fen=Order.refunded_fen + amount_fen)
            .returning(Order.id)
        )
        if reserved is None:
            raise RefundError(RefundProblem.EXCEEDS_ORDER)
        try:
            await ledger.post(session, order.merchant_pid, -amount_fen, "refund", refund_no)
        except ledger.InsufficientBalance:
            raise RefundError(RefundProblem.INSUFFICIENT_BALANCE) from None
        refund = Refund(
            refund_no=refund_no,
            order_id=order.id,
            merchant_pid=order.merchant_pid,
            out_refund_no=out_refund_no,
            amount_fen=amount_fen,
            status="processing",
        )
        session.add(refund)
    return refund


class _AlreadyResolved(Exception):
    """The refund left ``processing`` before this transaction: roll it back, change nothing."""


async def _claim(session: AsyncSession, refund: Refund, status: str, also: AlsoRecord | None) -> None:
    claimed = await session.scalar(
        update(Refund)
        .where(Refund.id == refund.id, Refund.status == "processing")
        .values(status=status)
        .returning(Refund.id)
    )
    if claimed is None:
        raise _AlreadyResolved
    if also is not None:
        also(session)


async def _current_status(db: Database, refund: Refund) -> str:
    async with db.session() as session:
        return await session.scalar(select(Refund.status).where(Refund.id == refund.id)) or refund.status


async def _reverse(db: Database, order: Order, refund: Refund, also: AlsoRecord | None) -> None:
    """Give the reservation back.

    A refund settled while this one was in flight counted this reservation and may have
    marked the order fully refunded; without it the order is only partly refunded again.
    """
    remaining = Order.refunded_fen - refund.amount_fen
    try:
        async with db.session() as session:
            await session.execute(
                update(Order)
                .where(Order.id == order.id)
                .values(
                    refunded_fen=remaining,
                    status=case(
                        (
                            (Order.status == OrderStatus.REFUNDED) & (remaining < Order.paid_fen),
                            OrderStatus.PARTIALLY_REFUNDED,
                        ),
                        else_=Order.status,
                    ),
                )
            )
            await _claim(session, refund, "failed", also)
            await ledger.post(session, order.merchant_pid, refund.amount_fen, "refund_undo", refund.refund_no)
    except _AlreadyResolved:
        refund.status = await _current_status(db, refund)
        return
    refund.status = "failed"


async def _settle(db: Database, order: Order, refund: Refund, also: AlsoRecord | None) -> Order:
    try:
        async with db.session() as session:
            settled = await session.scalar(
                update(Order)
                .where(Order.id == order.id, Order.status.in_(REFUNDABLE))
                .values(
                    status=case(
                        (Order.refunded_fen >= Order.paid_fen, OrderStatus.REFUNDED),
                        else_=OrderStatus.PARTIALLY_REFUNDED,
                    )
                )
                .returning(Order)
                .execution_options(populate_existing=True)
            )
            await _claim(session, refund, "succeeded", also)
    except _AlreadyResolved:
        refund.status = await _current_status(db, refund)
        return order
    refund.status = "succeeded"
    if settled is None:
        # Another refund emptied the order first (it is ``refunded`` now): report the order as stored,
        # not the caller's copy from before either refund.
        async with db.session() as session:
            settled = await session.get(Order, order.id)
    return settled or order
