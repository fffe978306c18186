"""payFor notifications (a POST form) and the buyer's return, which waits for the notification.

``pay_num, transaction_id, order_id, price, [order_uid,] code=0000, key, sign`` with
``sign = md5(order_id + price + token)``. The sign covers neither ``code`` nor ``pay_num``,
so anyone holding one signed message could restyle it as any status: only paid orders are
ever notified, always with ``code=0000``. ``price`` is the merchant's string as sent (``9.90``
and ``9.9`` sign differently) and ``key`` is the key of the merchant's own request, echoed.
"""

from __future__ import annotations

from openepay.core.states import SETTLED_PAID
from openepay.db import Database
from openepay.db.models import Order
from openepay.notify.http import OutboundMessage
from openepay.protocols.payfor.signing import notify_sign, request_key
from openepay.protocols.urls import append_query, http_build_query
from openepay.secretbox import SecretBox

SUCCESS_CODE = "0000"
TEST_CODE = "TEST"
TEST_PRICE = "0.01"
# The seed: "您的服务器只要返回小写字符串 success", so nothing else counts.
ACK = b"success"


def notification_params(order: Order, key: str) -> dict[str, str]:
    if order.status not in SETTLED_PAID:
        raise ValueError(f"order {order.trade_no} is {order.status}; only paid orders are notified")
    params = {
        "pay_num": order.trade_no,
        "transaction_id": order.channel_trade_no or "",
        "order_id": order.out_trade_no,
        "price": order.money,
    }
    if order.param is not None:
        params["order_uid"] = order.param
    params["code"] = SUCCESS_CODE
    params["key"] = str(order.attrs.get("key", ""))
    params["sign"] = notify_sign(order.out_trade_no, order.money, key)
    return params


def probe_params(pid: int, key: str, url: str, stamp: str) -> dict[str, str]:
    """Shaped and signed like a notification, but ``code=TEST`` and an order number no shop has.

    The echoed ``key`` is the one the merchant would have computed for such an order.
    """
    order_id = f"OPENEPAY-TEST-{stamp}"
    request = {"uid": str(pid), "price": TEST_PRICE, "type": "2", "notify_url": url, "order_id": order_id}
    return {
        "pay_num": f"TEST{stamp}",
        "transaction_id": "",
        "order_id": order_id,
        "price": TEST_PRICE,
        "code": TEST_CODE,
        "key": request_key(request, key),
        "sign": notify_sign(order_id, TEST_PRICE, key),
    }


class PayForMessages:
    # "我们会先……通知您服务器付款成功，再过 1-3 秒后将用户跳转到……return_url".
    return_after_notify: float | None = 1.0

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def notification(self, order: Order, key: str) -> OutboundMessage:
        return OutboundMessage("POST", order.notify_url, form=notification_params(order, key))

    def acknowledged(self, body: bytes) -> bool:
        return body.strip() == ACK

    async def test_notification(self, pid: int, key: str, url: str, stamp: str) -> OutboundMessage:
        return OutboundMessage("POST", url, form=probe_params(pid, key, url, stamp))

    async def return_url(self, order: Order, key: str) -> str | None:
        """None for orders made with ``format=json``: the seed says those buyers are never sent back."""
        if not order.return_url or order.attrs.get("json"):
            return None
        return append_query(order.return_url, http_build_query(notification_params(order, key)))
