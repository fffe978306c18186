"""Turning a placed order into something the buyer can pay: route, ask the channel, record the offer.

Routing ranks the accounts (``core.routing``); each is counted against its daily caps, then
asked. An account that refuses created nothing upstream, so the next one is tried; an account
that failed in a way that may have created something ends the attempt, because a second
upstream payment for the same order could be paid twice. Failures count against the account's
health either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from openepay.channels.base import ChannelRefused, PayContext, RefusalReason, callback_path
from openepay.core import usage
from openepay.core.orders import OrderNotPayable, attach_payment, channel_view
from openepay.core.routing import Candidate, Router, RoutingLog
from openepay.core.states import OrderStatus
from openepay.db import Database
from openepay.db.models import Order
from openepay.db.types import utcnow

log = logging.getLogger(__name__)


class NoChannel(Exception):
    """No account serves the pay type the buyer or merchant asked for (or every one is at its cap)."""

    def __init__(self, pay_type: str) -> None:
        super().__init__(pay_type)
        self.pay_type = pay_type


def has_live_offer(order: Order, pay_type: str) -> bool:
    return (
        order.status == OrderStatus.PAYING
        and order.pay_type == pay_type
        and order.expires_at > utcnow()
        and bool(order.pay_url or order.qrcode or order.urlscheme)
    )


@dataclass(frozen=True)
class HealthPolicy:
    failures: int
    pause: timedelta


async def start_payment(
    db: Database,
    router: Router,
    order: Order,
    *,
    pay_type: str,
    device: str | None,
    ctx: PayContext,
    zone: ZoneInfo,
    health: HealthPolicy,
) -> Order:
    """Reuse the order's live offer for this pay type, or create one on the first account that takes it.

    Raises ``NoChannel``, ``ChannelRefused`` or ``OrderNotPayable``. A refusal's own words name
    the channel's internals (accounts, phones, test amounts): they are logged here and kept in
    the order's routing record, for the operator; the dialects tell merchants and buyers only
    its reason.
    """
    if has_live_offer(order, pay_type):
        return order
    candidates, routing = await router.candidates(order.merchant_pid, pay_type, order.amount_fen, device)
    day = utcnow().astimezone(zone).date().isoformat()
    view = replace(channel_view(order), pay_type=pay_type, device=device)
    refusal: ChannelRefused | None = None
    for candidate in candidates:
        account = candidate.account
        counted = account.id is not None
        if counted and not await usage.count(db, account.id, day, order.amount_fen, account.rules):
            routing.note(account, "skipped", "daily cap reached")
            continue
        try:
            offer = await candidate.channel.create(account, view, _for_account(ctx, candidate))
        except ChannelRefused as refused:
            await _undo_count(db, candidate, day, order.amount_fen)
            routing.note(account, "refused", refused.message)
            log.warning(
                "channel account %s refused order %s (%s): %s",
                account.name,
                order.trade_no,
                refused.reason.value,
                refused.message,
                extra={"trade_no": order.trade_no},
            )
            if refused.reason == RefusalReason.UPSTREAM_ERROR:
                await router.accounts.record_failure(account, health.failures, health.pause)
            refusal = refused
            continue
        except Exception as exc:
            await _undo_count(db, candidate, day, order.amount_fen)
            await router.accounts.record_failure(account, health.failures, health.pause)
            routing.note(account, "failed", f"outcome unknown, no other account tried: {type(exc).__name__}: {exc}")
            log.exception("channel account %s failed creating %s", account.name, order.trade_no)
            _log_routing(order, routing)
            raise ChannelRefused(RefusalReason.UPSTREAM_ERROR, f"{account.channel}: upstream failed ({exc})") from exc
        await router.accounts.record_success(account)
        routing.note(account, "chosen", _why(candidate, routing))
        try:
            return await attach_payment(
                db,
                order.id,
                channel=account.channel,
                account_id=account.id,
                usage_day=day if counted else None,
                routing=routing.as_json(),
                pay_type=pay_type,
                device=device,
                offer=offer,
            )
        except OrderNotPayable:
            await _undo_count(db, candidate, day, order.amount_fen)
            raise
    _log_routing(order, routing)
    if refusal is not None:
        raise refusal
    raise NoChannel(pay_type)


def _for_account(ctx: PayContext, candidate: Candidate) -> PayContext:
    return replace(ctx, callback_url=ctx.url(callback_path(candidate.channel.name, candidate.account.ref)))


async def _undo_count(db: Database, candidate: Candidate, day: str, amount_fen: int) -> None:
    if candidate.account.id is not None:
        await usage.give_back(db, candidate.account.id, day, amount_fen)


def _why(candidate: Candidate, routing: RoutingLog) -> str:
    rules = candidate.account.rules
    tried = sum(1 for entry in routing.considered if entry["outcome"] in ("refused", "skipped"))
    reason = f"priority {rules.priority}"
    if routing.strategy == "weighted":
        reason += f", weight {rules.weight}"
    reason += f", {routing.strategy}"
    if tried:
        reason += f", after {tried} other account(s) could not take it"
    return reason


def _log_routing(order: Order, routing: RoutingLog) -> None:
    log.info(
        "no account took order %s", order.trade_no, extra={"trade_no": order.trade_no, "routing": routing.as_json()}
    )
