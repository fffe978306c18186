"""``openepay qrpool review``: the queue of payments nobody was credited for, and what an operator does about them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from openepay.admin.audit import CLI
from openepay.channels.qrpool.matching import REVIEW_QUEUE, Decision
from openepay.channels.qrpool.review import QueuedEvent, ReviewRefused, attach_event, mark_paid_by_hand, review_queue
from openepay.cli_runtime import fail, with_gateway
from openepay.config import Settings
from openepay.core.money import format_yuan
from openepay.db.models import Order

if TYPE_CHECKING:
    from openepay.gateway import Gateway

review_app = typer.Typer(
    help="Payments reported by the phones that paid no order: look at them, attach them, or mark orders paid.",
    no_args_is_help=True,
)

T = TypeVar("T")


def _run(action: Callable[[Gateway], Awaitable[T]]) -> T:
    try:
        return with_gateway(Settings(), action)
    except ReviewRefused as exc:
        raise fail(exc.message) from None


def _default_actor() -> str:
    return CLI.name


ACTOR = typer.Option(None, "--actor", help="Who does this, for the audit log (default: cli:<your OS user name>).")


def _row(item: QueuedEvent, settings: Settings) -> dict[str, object]:
    event = item.event
    return {
        "event": event.id,
        "received_at": event.received_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S"),
        "decision": event.decision,
        "pay_type": event.pay_type,
        "amount": format_yuan(event.amount_fen) if event.amount_fen is not None else None,
        "amount_text": event.amount_text,
        "account": item.account,
        "device": event.device_id,
        "source": event.source,
        "order": item.trade_no,
        "reason": event.reason,
    }


@review_app.command("list")
def review_list(
    decision: list[Decision] | None = typer.Option(
        None, help="Only events with this decision (repeatable); default: every decision waiting for review."
    ),
    limit: int = typer.Option(50, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Unmatched, suspected duplicate, late refused and rejected payment reports, newest first."""
    decisions = [d.value for d in decision] if decision else [d.value for d in REVIEW_QUEUE]

    async def load(gateway: Gateway) -> list[dict[str, object]]:
        return [_row(item, gateway.settings) for item in await review_queue(gateway.db, decisions, limit)]

    rows = _run(load)
    if not rows:
        typer.echo("nothing to review")
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
            continue
        amount = row["amount"] or f"{row['amount_text']!r}"
        concerns = f"  order {row['order']}" if row["order"] else ""
        typer.echo(
            f"event {row['event']}  {row['received_at']}  {row['decision']:<19}  {row['pay_type'] or '?'} {amount}"
            f"  account {row['account']!r} (device {row['device']}, {row['source']}){concerns}\n    {row['reason']}"
        )


def _paid_line(order: Order) -> str:
    late = " (paid late)" if order.paid_late else ""
    return (
        f"order {order.trade_no} is {order.status}{late}: {format_yuan(order.paid_fen or 0)}; the merchant is notified"
    )


@review_app.command("attach")
def review_attach(
    event_id: int = typer.Argument(..., help="The event's number, from `review list`."),
    trade_no: str = typer.Argument(..., help="Our number of the order the payment is for."),
    reason: str = typer.Option("", help="Why this event is this order's payment (kept in the audit log)."),
    actor: str | None = ACTOR,
) -> None:
    """Credit a reported payment to the order it pays (the amounts must be equal)."""

    async def attach(gateway: Gateway) -> Order:
        return await attach_event(
            gateway.db, gateway.settings, event_id, trade_no, actor=actor or _default_actor(), reason=reason
        )

    typer.echo(_paid_line(_run(attach)))


@review_app.command("mark-paid")
def review_mark_paid(
    trade_no: str = typer.Argument(..., help="Our number of the order."),
    reason: str = typer.Option(..., help="Why, with the evidence (kept in the audit log); required."),
    actor: str | None = ACTOR,
) -> None:
    """Mark an order paid with no payment event, for example after finding the payment in the wallet's history."""

    async def mark(gateway: Gateway) -> Order:
        return await mark_paid_by_hand(
            gateway.db, gateway.settings, trade_no, actor=actor or _default_actor(), reason=reason
        )

    typer.echo(_paid_line(_run(mark)))
