"""``openepay refund ...``: the refunds a channel could not confirm, and the operator's word on them.

A refund whose upstream answer was lost stays *processing*, its amount reserved. Reconciliation
settles those whose channel can ask its upstream; the others (an upstream epay gateway has no
refund query) wait for the operator, who checks the refund in the upstream's own console and
then settles it here. Every settlement is written to the audit log with the operator's reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from sqlalchemy import select

from openepay.cli_runtime import fail, with_gateway
from openepay.config import Settings
from openepay.core.money import format_yuan
from openepay.db.models import Order, Refund

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from openepay.gateway import Gateway

refund_app = typer.Typer(help="Refunds a channel has not confirmed.", no_args_is_help=True)


@refund_app.command("list")
def refund_list(
    merchant: int | None = typer.Option(None, help="Only this merchant's refunds (pid)."),
    limit: int = typer.Option(50, help="Show at most this many, oldest first."),
) -> None:
    """Refunds still processing: their amount is reserved until the channel, or the operator, settles them."""

    async def load(gateway: Gateway) -> list[tuple[Refund, Order]]:
        conditions = [Refund.status == "processing"]
        if merchant is not None:
            conditions.append(Refund.merchant_pid == merchant)
        statement = select(Refund, Order).join(Order, Order.id == Refund.order_id).where(*conditions)
        async with gateway.db.session() as session:
            rows = await session.execute(statement.order_by(Refund.id).limit(limit))
            return [(refund, order) for refund, order in rows.all()]

    rows = with_gateway(Settings(), load)
    if not rows:
        typer.echo("no refund is processing")
    for refund, order in rows:
        typer.echo(
            f"{refund.refund_no}  order {order.trade_no}  merchant {refund.merchant_pid}  "
            f"{format_yuan(refund.amount_fen)} yuan  channel {order.channel}  since {refund.created_at:%Y-%m-%d %H:%M}Z"
        )


@refund_app.command("settle")
def refund_settle(
    refund_no: str = typer.Argument(..., metavar="REFUND_NO", help="Our refund number (refund list shows it)."),
    succeeded: bool | None = typer.Option(
        None,
        "--succeeded/--failed",
        help="--succeeded: the upstream refunded the buyer; --failed: it did not, the amount is given back.",
    ),
    reason: str = typer.Option(..., help="What you checked, for the audit log (e.g. the upstream's refund record)."),
) -> None:
    """Settle a refund still processing, after checking it with the upstream, exactly as reconciliation would."""
    from openepay.admin import audit
    from openepay.core.refunds import RefundNotProcessing, settle_by_operator

    if succeeded is None:
        raise fail("say what the upstream shows: --succeeded or --failed")
    if not reason.strip():
        raise fail("give a --reason: what you checked with the upstream")
    outcome = "succeeded" if succeeded else "failed"

    async def settle(gateway: Gateway) -> tuple[Order, Refund]:
        trade_no = await _trade_no_of(gateway, refund_no)

        def record(session: AsyncSession) -> None:
            audit.add(
                session,
                audit.CLI,
                "refund.settle",
                f"order:{trade_no}",
                before={"refund_no": refund_no, "status": "processing"},
                after={"refund_no": refund_no, "status": outcome},
                reason=reason.strip(),
            )

        return await settle_by_operator(gateway.db, refund_no, succeeded=succeeded, reason=reason.strip(), also=record)

    try:
        order, refund = with_gateway(Settings(), settle)
    except RefundNotProcessing as exc:
        if exc.status is None:
            raise fail(f"there is no refund {refund_no}") from None
        raise fail(f"refund {refund_no} is {exc.status}, not processing: nothing changed") from None
    amount = format_yuan(refund.amount_fen)
    if succeeded:
        typer.echo(f"refund {refund_no} succeeded: {amount} yuan refunded, order {order.trade_no} is {order.status}")
    else:
        typer.echo(f"refund {refund_no} failed: {amount} yuan given back to order {order.trade_no} and the merchant")


async def _trade_no_of(gateway: Gateway, refund_no: str) -> str:
    async with gateway.db.session() as session:
        found = await session.scalar(
            select(Order.trade_no).join(Refund, Refund.order_id == Order.id).where(Refund.refund_no == refund_no)
        )
    return found or ""
