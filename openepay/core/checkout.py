"""Turning a placed order into something the buyer can pay: route, ask the channel, record the offer."""

from __future__ import annotations

import logging
from dataclasses import replace

from openepay.channels.base import ChannelRefused, PayContext
from openepay.channels.registry import ChannelRegistry
from openepay.core.orders import attach_payment, channel_view
from openepay.core.routing import choose_channel
from openepay.core.states import OrderStatus
from openepay.db import Database
from openepay.db.models import Order
from openepay.db.types import utcnow

log = logging.getLogger(__name__)


class NoChannel(Exception):
    """No enabled channel serves the pay type the buyer or merchant asked for."""

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


async def start_payment(
    db: Database,
    channels: ChannelRegistry,
    order: Order,
    *,
    pay_type: str,
    device: str | None,
    ctx: PayContext,
) -> Order:
    """Reuse the order's live offer for this pay type, or create one with a channel.

    Raises ``NoChannel``, ``ChannelRefused`` (from the channel) or ``OrderNotPayable``. A
    refusal's own words name the channel's internals (accounts, phones, test amounts): they are
    logged here, for the operator, and the dialects tell merchants and buyers only its reason.
    """
    if has_live_offer(order, pay_type):
        return order
    channel = choose_channel(channels, pay_type, order.pay_amount_fen)
    if channel is None:
        raise NoChannel(pay_type)
    view = replace(channel_view(order), pay_type=pay_type, device=device)
    try:
        offer = await channel.create(view, ctx)
    except ChannelRefused as refused:
        log.warning(
            "channel %s refused order %s (%s): %s",
            channel.name,
            order.trade_no,
            refused.reason.value,
            refused.message,
            extra={"trade_no": order.trade_no},
        )
        raise
    return await attach_payment(db, order.id, channel=channel.name, pay_type=pay_type, device=device, offer=offer)
