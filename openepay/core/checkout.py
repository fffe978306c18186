"""Turning a placed order into something the buyer can pay: route, ask the channel, record the offer.

Routing ranks the accounts (``core.routing``); each is counted against its daily caps, then
asked. An account that refuses created nothing upstream, so the next one is tried; an account
that failed in a way that may have created something ends the attempt, because a second
upstream payment for the same order could be paid twice. Failures count against the account's
health either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from openepay.channels.base import ChannelRefused, PayContext, RefusalReason, callback_path
from openepay.core import usage
from openepay.core.ids import trade_numbers
from openepay.core.orders import (
    NewOrder,
    OrderNotPayable,
    attach_payment,
    detached_order,
    discard_unoffered,
    draft_view,
    find_merchant_order,
    insert_order,
    offer_values,
    order_values,
    payment_view,
    place_order,
)
from openepay.core.routing import Candidate, Router, RoutingLog
from openepay.core.states import OrderStatus
from openepay.db import Database
from openepay.db.models import Order
from openepay.db.types import utcnow

log = logging.getLogger(__name__)


class NoChannel(Exception):
    """No account serves the pay type the buyer or merchant asked for (or every one is at its cap).

    ``order`` is the stored order the payment was for (None when none was kept)."""

    def __init__(self, pay_type: str, order: Order | None = None) -> None:
        super().__init__(pay_type)
        self.pay_type = pay_type
        self.order = order


def has_live_offer(order: Order, pay_type: str) -> bool:
    return (
        order.status == OrderStatus.PAYING
        and order.pay_type == pay_type
        and order.expires_at > utcnow()
        and bool(order.pay_url or order.qrcode or order.urlscheme or order.pay_info)
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
    payment = _Payment(db, router, order, None, pay_type=pay_type, device=device, ctx=ctx, zone=zone, health=health)
    return await payment.start(keep_unoffered=True)


async def place_and_start_payment(
    db: Database,
    router: Router,
    new: NewOrder,
    *,
    timeout: timedelta,
    reopen_identical: bool,
    keep_unoffered: bool,
    pay_type: str,
    device: str | None,
    ctx_for: Callable[[str], PayContext],
    zone: ZoneInfo,
    health: HealthPolicy,
) -> Order:
    """A new order and its offer, written once: the create path of the merchant APIs.

    Accounts whose channel ``offers_before_order`` are asked before the order exists, so a new
    order is one ``INSERT`` that carries its offer; the order is written without one only when
    an account needs the stored row (a channel that places an order upstream, which must not
    happen for a merchant's repeated number that the INSERT would refuse; qrpool, which reserves
    amounts against it) or, with
    ``keep_unoffered``, when no account took it (the dialect then answers with the cashier or a
    refusal, as for an order placed first). Without ``keep_unoffered`` an order no account took
    is not kept. A merchant's repeated ``out_trade_no`` (the insert finds it taken) goes the
    long way: ``place_order``'s rules for repeats, then ``start_payment``.

    Raises what ``place_order`` and ``start_payment`` raise; ``NoChannel.order`` is the stored
    order when one was kept.
    """
    values = order_values(new, trade_numbers.next(), utcnow(), timeout)
    draft = detached_order(values)
    payment = _Payment(
        db,
        router,
        draft,
        values,
        pay_type=pay_type,
        device=device,
        ctx=ctx_for(draft.trade_no),
        zone=zone,
        health=health,
    )
    try:
        return await payment.start(keep_unoffered=keep_unoffered)
    except _Taken:
        pass
    placed = await place_order(db, new, timeout=timeout, reopen_identical=reopen_identical, now=draft.created_at)
    if has_live_offer(placed.order, pay_type):
        return placed.order
    again = _Payment(
        db,
        router,
        placed.order,
        None,
        pay_type=pay_type,
        device=device,
        ctx=ctx_for(placed.order.trade_no),
        zone=zone,
        health=health,
    )
    again.stored_here = not placed.reused
    return await again.start(keep_unoffered=keep_unoffered)


class _Taken(Exception):
    """The merchant already has an order with this ``out_trade_no`` (or our number was taken)."""


async def _insert_draft(db: Database, values: dict[str, Any]) -> Order | None:
    """``insert_order``; None also when another process drew the same ``trade_no``, which the long
    way (``place_order``, which draws again) then deals with."""
    try:
        return await insert_order(db, values)
    except IntegrityError:
        return None


class _Payment:
    """One attempt to get an order paid: routing, each account in turn, and the offer recorded.

    The order is either stored (``draft`` None) or a draft not written yet (``draft`` holds its
    columns), which is written with the offer, or without one when it must exist first.
    """

    def __init__(
        self,
        db: Database,
        router: Router,
        order: Order,
        draft: dict[str, Any] | None,
        *,
        pay_type: str,
        device: str | None,
        ctx: PayContext,
        zone: ZoneInfo,
        health: HealthPolicy,
    ) -> None:
        self.db = db
        self.router = router
        self.order = order
        self.draft = draft
        self.pay_type = pay_type
        self.device = device
        self.ctx = ctx
        self.zone = zone
        self.health = health
        self.stored_here = False

    async def _store(self) -> None:
        """Write the draft without an offer (raises ``_Taken`` when its ``out_trade_no`` is taken)."""
        if self.draft is None:
            return
        inserted = await _insert_draft(self.db, self.draft)
        if inserted is None:
            raise _Taken
        self.order, self.draft, self.stored_here = inserted, None, True

    async def start(self, *, keep_unoffered: bool) -> Order:
        """The order with its offer; without ``keep_unoffered`` an order written here and left without
        an offer is forgotten again, so the merchant may retry the same number."""
        try:
            return await self._start(keep_unoffered)
        except _Taken:
            raise
        except Exception:
            if self.stored_here and not keep_unoffered:
                await discard_unoffered(self.db, self.order.id)
            elif self.draft is not None and await self._number_taken():
                # A repeated number is refused as such before anything a channel said.
                raise _Taken from None
            raise

    async def _number_taken(self) -> bool:
        order = self.order
        return await find_merchant_order(self.db, order.merchant_pid, out_trade_no=order.out_trade_no) is not None

    async def _start(self, keep_unoffered: bool) -> Order:
        order, pay_type, device, db, router = self.order, self.pay_type, self.device, self.db, self.router
        candidates, routing = await router.candidates(order.merchant_pid, pay_type, order.amount_fen, device)
        # The day an account's caps count in, read once an account with caps is tried (the built-in
        # ones have none, and turning the clock into the zone's date was a part of every create).
        day = ""
        draft = self.draft
        view = payment_view(order, pay_type, device) if draft is None else draft_view(draft, pay_type, device)
        refusal: ChannelRefused | None = None
        for candidate in candidates:
            account = candidate.account
            if self.draft is not None and not candidate.channel.offers_before_order:
                await self._store()
                view = payment_view(self.order, pay_type, device)
            counted = account.id is not None
            if counted and not day:
                day = utcnow().astimezone(self.zone).date().isoformat()
            if counted and not await usage.count(db, account.id, day, order.amount_fen, account.rules):
                routing.note(account, "skipped", "daily cap reached")
                continue
            try:
                offer = await candidate.channel.create(account, view, _for_account(self.ctx, candidate))
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
                    await router.accounts.record_failure(account, self.health.failures, self.health.pause)
                refusal = refused
                continue
            except Exception as exc:
                await _undo_count(db, candidate, day, order.amount_fen)
                await router.accounts.record_failure(account, self.health.failures, self.health.pause)
                routing.note(account, "failed", f"outcome unknown, no other account tried: {type(exc).__name__}: {exc}")
                log.exception("channel account %s failed creating %s", account.name, order.trade_no)
                _log_routing(order, routing)
                if keep_unoffered:
                    await self._store()
                raise ChannelRefused(
                    RefusalReason.UPSTREAM_ERROR, f"{account.channel}: upstream failed ({exc})"
                ) from exc
            await router.accounts.record_success(account)
            routing.note(account, "chosen", _why(candidate, routing))
            offered: dict[str, Any] = {
                "channel": account.channel,
                "account_id": account.id,
                "usage_day": day if counted else None,
                "routing": routing.as_json(),
                "pay_type": pay_type,
                "device": device,
                "offer": offer,
            }
            try:
                if self.draft is not None:
                    inserted = await _insert_draft(db, {**self.draft, **offer_values(**offered)})
                    if inserted is None:
                        raise _Taken
                    return inserted
                return await attach_payment(db, self.order.id, **offered)
            except (OrderNotPayable, _Taken):
                await _undo_count(db, candidate, day, order.amount_fen)
                raise
        _log_routing(order, routing)
        if keep_unoffered:
            await self._store()
        if refusal is not None:
            raise refusal
        raise NoChannel(pay_type, self.order if self.draft is None else None)


def _for_account(ctx: PayContext, candidate: Candidate) -> PayContext:
    # Built field by field: ``dataclasses.replace`` reads the class's fields anew on every call.
    return PayContext(
        ctx.base_url,
        ctx.links,
        callback_url=ctx.url(callback_path(candidate.channel.name, candidate.account.ref)),
        return_url=ctx.return_url,
    )


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
