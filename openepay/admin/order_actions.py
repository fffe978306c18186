"""What an operator does to an order: resend its notification, close it, confirm it paid by hand (补单),
refund it.

Each goes through the same core functions the CLI and the channels use, and each is written to
the audit log with who did it.
"""

from __future__ import annotations

from sqlalchemy import select

from openepay.admin import audit
from openepay.channels.base import Confirmation
from openepay.core.orders import close_order, get_order
from openepay.core.payments import mark_paid
from openepay.core.refunds import RefundError, RefundProblem, refund_order
from openepay.core.states import SETTLED_PAID
from openepay.db.models import Order
from openepay.gateway import Gateway
from openepay.notify.outbox import resend


class ActionRefused(Exception):
    """The action cannot be done to this order; ``key`` names the message the console shows."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


async def resend_notification(gateway: Gateway, trade_no: str, actor: audit.Actor) -> int:
    count = await resend(gateway.db, trade_no)
    if count == 0:
        raise ActionRefused("nothing_to_resend")
    await audit.record(gateway.db, actor, "order.resend", f"order:{trade_no}", after={"queued": count})
    return count


async def close(gateway: Gateway, trade_no: str, actor: audit.Actor) -> Order:
    order = await get_order(gateway.db, trade_no)
    if order is None:
        raise ActionRefused("not_found")
    closed = await close_order(gateway.db, order)
    if closed is None:
        raise ActionRefused("not_closable")
    await gateway.after_close(closed)
    await audit.record(
        gateway.db,
        actor,
        "order.close",
        f"order:{trade_no}",
        before={"status": order.status},
        after={"status": closed.status},
    )
    return closed


async def confirm_by_hand(gateway: Gateway, trade_no: str, actor: audit.Actor, reason: str) -> Order:
    """Mark an unpaid (or closed) order paid for the amount it asked, with a reason (补单).

    The order takes the one paid path (ledger, notification outbox); a personal-code order goes
    through its channel's own manual path, which also keeps the amount reserved for the cooldown.
    """
    why = reason.strip()
    if not why:
        raise ActionRefused("reason_required")
    order = await get_order(gateway.db, trade_no)
    if order is None:
        raise ActionRefused("not_found")
    if order.status in SETTLED_PAID:
        raise ActionRefused("not_confirmable")
    if order.channel == "qrpool":
        from openepay.channels.qrpool.review import ReviewRefused, mark_paid_by_hand

        try:
            return await mark_paid_by_hand(gateway.db, gateway.settings, trade_no, actor=actor.name, reason=why)
        except ReviewRefused:
            raise ActionRefused("not_confirmable") from None
    async with gateway.db.session() as session:
        current = await session.scalar(select(Order).where(Order.id == order.id))
        assert current is not None
        decision = await mark_paid(session, current, Confirmation(trade_no, current.pay_amount_fen))
        if not decision.credited:
            raise ActionRefused("not_confirmable")
        audit.add(
            session,
            actor,
            "order.confirm",
            f"order:{trade_no}",
            before={"status": order.status},
            after={"status": "paid", "paid_late": decision.value == "paid_late"},
            reason=why,
        )
    refreshed = await get_order(gateway.db, trade_no)
    assert refreshed is not None
    return refreshed


# What a refund the channel has not confirmed shows: it stays processing, its amount reserved.
REFUND_PROCESSING = "refund_processing"
REFUND_DONE = "refund_done"


def refundable_fen(order: Order) -> int:
    """What is left to refund: paid less refunded (refunds in progress included)."""
    return max((order.paid_fen or 0) - order.refunded_fen, 0)


async def refund(gateway: Gateway, trade_no: str, amount_fen: int, actor: audit.Actor, reason: str) -> str:
    """Refund ``amount_fen`` of the order through the channel, as the merchant API does (``refund_order``:
    its guards refuse an over-refund under any concurrency); returns ``refund_done`` or, when the channel's
    answer is not sure, ``refund_processing``.

    A refund the channel was asked about is audited whatever it answered; one refused before
    anything moved is not.
    """
    why = reason.strip()
    if not why:
        raise ActionRefused("refund_reason_required")
    order = await get_order(gateway.db, trade_no)
    if order is None:
        raise ActionRefused("not_found")
    before = {"status": order.status, "refunded_fen": order.refunded_fen}
    outcome = REFUND_DONE
    try:
        result = await refund_order(gateway.db, gateway, order, amount_fen)
        refund_no, status = result.refund.refund_no, result.refund.status
    except RefundError as exc:
        if exc.problem not in (
            RefundProblem.CHANNEL_PENDING,
            RefundProblem.CHANNEL_FAILED,
            RefundProblem.CHANNEL_CANNOT_REFUND,
        ):
            raise ActionRefused(f"refund_{exc.problem.value}") from None
        refund_no, status = "", "processing" if exc.problem == RefundProblem.CHANNEL_PENDING else "failed"
        outcome = REFUND_PROCESSING if status == "processing" else f"refund_{exc.problem.value}"
    after_order = await get_order(gateway.db, trade_no)
    assert after_order is not None
    await audit.record(
        gateway.db,
        actor,
        "order.refund",
        f"order:{trade_no}",
        before=before,
        after={
            "status": after_order.status,
            "refunded_fen": after_order.refunded_fen,
            "amount_fen": amount_fen,
            "refund": status,
            "refund_no": refund_no,
        },
        reason=why,
    )
    if outcome not in (REFUND_DONE, REFUND_PROCESSING):
        raise ActionRefused(outcome)
    return outcome
