"""The sandbox's simulated upstream taking a buyer's money.

Used by the sandbox pay page's button and by ``openepay order pay``. It refuses what a real
upstream would refuse (closed, paid or foreign orders), then sends its signed callback into
``receive_callback``, the same entry every real upstream callback goes through. Whether the
payment counts is read back from the order afterwards: the callback's answer alone cannot say
that the gateway failed to record it.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from openepay.channels.base import CallbackRequest, ChannelHost, account_ref
from openepay.channels.sandbox.channel import SandboxChannel
from openepay.core.orders import close_if_expired, get_order
from openepay.core.payments import receive_callback
from openepay.core.states import SETTLED_PAID, UNPAID
from openepay.db.models import Order

log = logging.getLogger(__name__)

NOT_RECORDED = "支付未能记录：网关暂时无法保存支付结果，订单仍未支付，请稍后重试"
UNCONFIRMED = "暂时无法确认支付结果，请稍后返回收银台查看订单状态"


class SandboxRefusal(Exception):
    """The simulated upstream will not take money for this order."""


class SandboxPaymentFailed(Exception):
    """The simulated upstream took the money but the gateway did not record the payment."""


def refusal_reason(host: ChannelHost, order: Order | None) -> str | None:
    if order is None:
        return "订单不存在"
    if order.channel != SandboxChannel.name:
        return "该订单不是 Sandbox 通道的订单"
    if not isinstance(host.channel(SandboxChannel.name), SandboxChannel):
        return "Sandbox 通道未启用（OPENEPAY_SANDBOX=1）"
    if order.status in SETTLED_PAID:
        return "该订单已支付"
    if order.status not in UNPAID:
        return "订单已关闭，模拟上游拒绝收款"
    return None


async def simulate_buyer_payment(host: ChannelHost, trade_no: str) -> Order:
    """The order, paid. Raises ``SandboxRefusal`` or ``SandboxPaymentFailed`` with the text to show."""
    order = await get_order(host.db, trade_no)
    if order is not None:
        order = await close_if_expired(host.db, order)
    reason = refusal_reason(host, order)
    if reason:
        raise SandboxRefusal(reason)
    assert order is not None
    channel = host.channel(SandboxChannel.name)
    assert isinstance(channel, SandboxChannel)
    account = await host.account(SandboxChannel.name, account_ref(order.channel_account_id))
    if account is None:
        raise SandboxRefusal("该订单的 Sandbox 账户已不存在")
    fields = channel.payment_callback(order.trade_no, order.pay_amount_fen)
    request = CallbackRequest(
        method="POST", query={}, form=fields, body=urlencode(fields).encode(), headers={}, client_ip=None
    )
    try:
        await receive_callback(host.db, channel, account, request)
    except Exception:
        # Storing the callback failed; the payment itself may or may not have been recorded before that.
        log.exception("the sandbox's payment callback failed", extra={"trade_no": trade_no})
    try:
        after = await get_order(host.db, trade_no)
    except Exception as exc:
        log.warning("cannot read back sandbox order %s (%s)", trade_no, type(exc).__name__)
        raise SandboxPaymentFailed(UNCONFIRMED) from None
    if after is None or after.status not in SETTLED_PAID:
        raise SandboxPaymentFailed(NOT_RECORDED)
    return after
