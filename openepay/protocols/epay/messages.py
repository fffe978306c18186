"""Epay V1 notifications and return redirects.

GET ``notify_url?pid&trade_no&out_trade_no&type&name&money&trade_status[&param]&sign&sign_type``,
the fields in Rainbow's order and encoding; the return redirect carries the same signed
parameters. ``money`` is the merchant's own string, exactly as they sent it.
"""

from __future__ import annotations

from openepay.core.states import SETTLED_PAID
from openepay.db.models import Order
from openepay.notify.http import OutboundMessage
from openepay.protocols.epay.signing import make_sign
from openepay.protocols.urls import append_query, http_build_query

ACK_WORDS = (b"success", b"SUCCESS", b"Success")


def notification_params(order: Order, key: str) -> dict[str, str]:
    """Only ever for a paid order: a signed ``TRADE_SUCCESS`` is what merchants ship goods on."""
    if order.status not in SETTLED_PAID:
        raise ValueError(f"order {order.trade_no} is {order.status}; only paid orders are notified")
    params = {
        "pid": str(order.merchant_pid),
        "trade_no": order.trade_no,
        "out_trade_no": order.out_trade_no,
        "type": order.pay_type or "",
        "name": order.name,
        "money": order.money,
        "trade_status": "TRADE_SUCCESS",
    }
    # Rainbow leaves param out when PHP's empty() is true, which includes "0".
    if order.param not in (None, "", "0"):
        params["param"] = order.param
    params = {name: value for name, value in params.items() if value != ""}
    params["sign"] = make_sign(params, key)
    params["sign_type"] = "MD5"
    return params


class EpayMessages:
    def notification(self, order: Order, key: str) -> OutboundMessage:
        query = http_build_query(notification_params(order, key))
        return OutboundMessage("GET", append_query(order.notify_url, query))

    def acknowledged(self, body: bytes) -> bool:
        return any(word in body for word in ACK_WORDS)

    def return_url(self, order: Order, key: str) -> str | None:
        if not order.return_url:
            return None
        return append_query(order.return_url, http_build_query(notification_params(order, key)))
