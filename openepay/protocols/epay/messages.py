"""Epay V1 notifications and return redirects.

GET ``notify_url?pid&trade_no&out_trade_no&type&name&money&trade_status[&param]&sign&sign_type``,
the fields in Rainbow's order and encoding; the return redirect carries the same signed
parameters. ``money`` is the merchant's own string, exactly as they sent it.
"""

from __future__ import annotations

from openepay.core.states import SETTLED_PAID
from openepay.db.models import Order
from openepay.protocols.epay.signing import make_sign
from openepay.protocols.query_messages import QueryStringMessages

ACK_WORDS = (b"success", b"SUCCESS", b"Success")


def trade_success_fields(order: Order) -> dict[str, str]:
    """The fields every epay-style notification starts with; only ever for a paid order, because a
    signed ``TRADE_SUCCESS`` is what merchants ship goods on."""
    if order.status not in SETTLED_PAID:
        raise ValueError(f"order {order.trade_no} is {order.status}; only paid orders are notified")
    return {
        "pid": str(order.merchant_pid),
        "trade_no": order.trade_no,
        "out_trade_no": order.out_trade_no,
        "type": order.pay_type or "",
        "name": order.name,
        "money": order.money,
        "trade_status": "TRADE_SUCCESS",
    }


def md5_signed(params: dict[str, str], key: str) -> dict[str, str]:
    """The non-empty fields with ``sign`` and ``sign_type=MD5`` appended, as Rainbow sends them."""
    params = {name: value for name, value in params.items() if value != ""}
    return {**params, "sign": make_sign(params, key), "sign_type": "MD5"}


def notification_params(order: Order, key: str) -> dict[str, str]:
    params = trade_success_fields(order)
    # Rainbow leaves param out when PHP's empty() is true, which includes "0".
    if order.param not in (None, "", "0"):
        params["param"] = order.param
    return md5_signed(params, key)


TEST_STATUS = "TEST_NOTIFY"


def probe_params(pid: int, key: str, stamp: str) -> dict[str, str]:
    """A signed message shaped like a notification, marked as a test everywhere it can be.

    ``trade_status`` is not ``TRADE_SUCCESS`` and the order numbers match no real order, so a
    plugin that skips the status check still finds nothing to ship.
    """
    params = {
        "pid": str(pid),
        "trade_no": f"TEST{stamp}",
        "out_trade_no": f"OPENEPAY-TEST-{stamp}",
        "type": "alipay",
        "name": "OpenEpay 通知测试 (notification test)",
        "money": "0.01",
        "trade_status": TEST_STATUS,
    }
    return md5_signed(params, key)


class EpayMessages(QueryStringMessages):
    def notification_params(self, order: Order, key: str) -> dict[str, str]:
        return notification_params(order, key)

    def probe_params(self, pid: int, key: str, stamp: str) -> dict[str, str]:
        return probe_params(pid, key, stamp)

    def acknowledged(self, body: bytes) -> bool:
        return any(word in body for word in ACK_WORDS)
