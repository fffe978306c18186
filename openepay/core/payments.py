"""The one path by which an order becomes paid.

Whatever confirms a payment (an upstream's signed callback, the sandbox's simulated upstream,
a query during reconciliation) ends in ``confirm_payment``. In one transaction it checks the
confirmation against the order (channel and amount), makes the guarded transition, credits
the merchant's balance and writes the outbox row, so there is never a paid order without its
notification nor a notification without a paid order.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.channels.base import CallbackRequest, Channel, ChannelAccount, Confirmation, Reply
from openepay.core import ledger
from openepay.core.states import UNPAID, OrderStatus
from openepay.db import Database
from openepay.db.models import ChannelCallback, Order
from openepay.db.types import utcnow
from openepay.notify.outbox import PAID_EVENT, enqueue

log = logging.getLogger(__name__)


class PaymentDecision(StrEnum):
    PAID = "paid"
    PAID_LATE = "paid_late"
    ALREADY_PAID = "already_paid"
    UNKNOWN_ORDER = "unknown_order"
    WRONG_CHANNEL = "wrong_channel"
    AMOUNT_MISMATCH = "amount_mismatch"

    @property
    def credited(self) -> bool:
        return self in (PaymentDecision.PAID, PaymentDecision.PAID_LATE)


_SETTLED_DECISIONS = {PaymentDecision.PAID, PaymentDecision.PAID_LATE, PaymentDecision.ALREADY_PAID}


async def confirm_payment(
    db: Database, channel: str, confirmation: Confirmation, *, account_id: int | None = None
) -> PaymentDecision:
    """Credit a confirmed payment to its order, if the order is on this channel account and the amount is exact.

    ``account_id`` is the account whose credentials verified the confirmation (None: the
    channel's built-in account); another account's key never confirms this order.
    """
    async with db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == confirmation.trade_no))
        if order is None:
            return PaymentDecision.UNKNOWN_ORDER
        if order.channel != channel or order.channel_account_id != account_id:
            return PaymentDecision.WRONG_CHANNEL
        decision = await mark_paid(session, order, confirmation)
    if decision.credited:
        log.info(
            "order paid",
            extra={"trade_no": order.trade_no, "merchant": order.merchant_pid, "decision": decision.value},
        )
    return decision


async def mark_paid(
    session: AsyncSession,
    order: Order,
    confirmation: Confirmation,
    *,
    late: bool = False,
    expected_fen: int | None = None,
) -> PaymentDecision:
    """Make ``order`` paid inside the caller's transaction: guarded transition, ledger, outbox row.

    For callers that decide more in the same transaction (the personal-QR matcher moves the
    amount reservation with the order). Without ``late`` the order's state decides: an unpaid
    order is paid, a closed one takes the explicit late edge and is flagged ``paid_late``.
    With ``late`` the caller knows the money came after the order stopped being payable, and
    the order is flagged whether or not the sweeper has closed it yet. ``expected_fen`` is the
    amount this payment had to be when the caller knows better than the order's current offer
    (a buyer who switched pay types may pay the amount an earlier offer reserved).
    """
    if confirmation.paid_fen != (order.pay_amount_fen if expected_fen is None else expected_fen):
        return PaymentDecision.AMOUNT_MISMATCH
    now = utcnow()
    values: dict[str, object] = {"status": OrderStatus.PAID, "paid_at": now, "paid_fen": confirmation.paid_fen}
    # The upstream's number may have come with the offer already; a confirmation without one keeps it.
    if confirmation.channel_trade_no is not None:
        values["channel_trade_no"] = confirmation.channel_trade_no
    if confirmation.buyer is not None:
        values["buyer"] = confirmation.buyer
    if late:
        paid_id = await session.scalar(
            update(Order)
            .where(Order.id == order.id, Order.status.in_((*UNPAID, OrderStatus.CLOSED)))
            .values(**values, paid_late=True)
            .returning(Order.id)
        )
        decision = PaymentDecision.PAID_LATE
    else:
        decision = PaymentDecision.PAID
        paid_id = await session.scalar(
            update(Order).where(Order.id == order.id, Order.status.in_(UNPAID)).values(**values).returning(Order.id)
        )
        if paid_id is None:
            # Money arrived after we closed the order: take it through the explicit late edge.
            paid_id = await session.scalar(
                update(Order)
                .where(Order.id == order.id, Order.status == OrderStatus.CLOSED)
                .values(**values, paid_late=True)
                .returning(Order.id)
            )
            decision = PaymentDecision.PAID_LATE
    if paid_id is None:
        return PaymentDecision.ALREADY_PAID

    await ledger.post(session, order.merchant_pid, confirmation.paid_fen, "payment", order.trade_no)
    await enqueue(session, order_id=order.id, merchant_pid=order.merchant_pid, event=PAID_EVENT, now=now)
    return decision


async def receive_callback(db: Database, channel: Channel, account: ChannelAccount, request: CallbackRequest) -> Reply:
    """Handle one upstream callback to an account: the channel verifies and interprets, the core decides.

    Every callback is stored with its decision, trusted or not, so an operator can see what
    upstream said and why we did or did not act on it.
    """
    name = channel.name
    outcome = await channel.handle_callback(account, request)
    decision = outcome.note or ("unverified" if not outcome.verified else "no_payment")
    reply = outcome.ack if outcome.verified else outcome.nack
    try:
        if outcome.verified and outcome.confirmation is not None:
            decision = (await confirm_payment(db, name, outcome.confirmation, account_id=account.id)).value
    except Exception:
        log.exception("could not record a payment confirmed by %s", name, extra={"trade_no": outcome.trade_no})
        decision, reply = "error", outcome.nack
    payload = request.body.decode("utf-8", "replace") or urlencode(dict(request.query))
    async with db.session() as session:
        session.add(
            ChannelCallback(
                channel=name,
                trade_no=(outcome.trade_no or "")[:32] or None,
                verified=outcome.verified,
                decision=decision[:32],
                detail=outcome.note or None,
                payload=payload[:8192],
            )
        )
    if outcome.verified and outcome.confirmation is not None and decision not in _SETTLED_DECISIONS:
        log.warning("upstream confirmation not credited", extra={"trade_no": outcome.trade_no, "decision": decision})
    return reply
