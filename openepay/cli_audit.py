"""Every ``openepay`` command that changes something is written to the audit log, as the console's writes are.

A command wraps the action it hands to ``with_gateway`` in ``audited``: what the target looked
like before, the change, what it looks like after, one entry by ``cli:<OS user>`` (see
``openepay.admin.audit.CLI``). Targets are named as the console names them
(``merchant:1001``, ``channel:up-1``, ``order:2026…``), and the state recorded never holds a
key or a secret: a merchant's key only as "replaced", a channel's secret fields by name only.
Commands that share a function with the console (disabling a merchant, the qrpool writes,
resending a notification) call that function instead, which records its own entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from openepay.admin import audit
from openepay.core.money import format_yuan
from openepay.db.models import ChannelAccountRecord, Merchant, Order

if TYPE_CHECKING:
    from openepay.gateway import Gateway

T = TypeVar("T")
State = dict[str, Any] | None


async def _merchant(gateway: Gateway, pid: str) -> State:
    async with gateway.db.session() as session:
        merchant = await session.get(Merchant, int(pid))
    if merchant is None:
        return None
    rsa = merchant.rsa_public_key
    return {
        "name": merchant.name,
        "status": merchant.status,
        "refund_enabled": merchant.refund_enabled,
        "dialects": merchant.dialects,
        "pay_types": merchant.pay_types,
        "channel_accounts": merchant.channel_accounts,
        "mapi_answer": merchant.mapi_answer,
        "notify_retry_delays": merchant.notify_retry_delays,
        # A public key: its fingerprint shows whether it changed.
        "rsa_public_key": hashlib.sha256(rsa.encode()).hexdigest()[:16] if rsa else None,
        "rsa_only": merchant.rsa_only,
    }


async def _channel(gateway: Gateway, name: str) -> State:
    async with gateway.db.session() as session:
        record = await session.scalar(select(ChannelAccountRecord).where(ChannelAccountRecord.name == name))
    if record is None:
        return None
    return {
        "channel": record.channel,
        "enabled": record.enabled,
        "config": record.config,
        "secrets": sorted(record.secrets),
        "pay_types": record.pay_types,
        "devices": record.devices,
        "min_fen": record.min_fen,
        "max_fen": record.max_fen,
        "daily_amount_fen": record.daily_amount_fen,
        "daily_count": record.daily_count,
        "priority": record.priority,
        "weight": record.weight,
    }


async def _order(gateway: Gateway, trade_no: str) -> State:
    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
    if order is None:
        return None
    paid = format_yuan(order.paid_fen) if order.paid_fen is not None else None
    return {"status": order.status, "paid": paid}


SNAPSHOTS: dict[str, Callable[[Gateway, str], Awaitable[State]]] = {
    "merchant": _merchant,
    "channel": _channel,
    "order": _order,
}


async def snapshot(gateway: Gateway, target: str) -> State:
    """The recorded state of ``kind:key``; None for a target that does not exist (yet)."""
    kind, _, key = target.partition(":")
    taker = SNAPSHOTS.get(kind)
    return await taker(gateway, key) if taker else None


def audited(
    action: str,
    target: str | Callable[[T], str],
    change: Callable[[Gateway], Awaitable[T]],
    *,
    note: dict[str, Any] | Callable[[T], dict[str, Any]] | None = None,
) -> Callable[[Gateway], Awaitable[T]]:
    """``change``, logged as ``action`` on ``target`` with before and after.

    ``target`` is a callable of the change's result when the change creates it (a new
    merchant's pid). ``note`` (or ``note(result)``) is added to the after state, for what the
    state does not show (``{"key": "replaced"}``, how many notifications were queued). A change
    that raises is not logged: nothing changed.
    """

    async def run(gateway: Gateway) -> T:
        before = await snapshot(gateway, target) if isinstance(target, str) else None
        result = await change(gateway)
        where = target if isinstance(target, str) else target(result)
        after = await snapshot(gateway, where)
        extra = note(result) if callable(note) else note
        if extra:
            after = {**(after or {}), **extra}
        await audit.record(gateway.db, audit.CLI, action, where, before=before, after=after)
        return result

    return run
