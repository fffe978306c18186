"""V免签 notifications and return redirects: ``payId, param, type, price, reallyPrice, sign``.

GET ``notify_url?payId=&param=&type=&price=&reallyPrice=&sign=`` with
``sign = md5(payId + param + type + price + reallyPrice + key)``. ``price`` is the merchant's
string as sent (what they signed and compare with their order), ``type`` their type code,
``param`` their text or empty, ``reallyPrice`` what the buyer paid with two decimals. Unlike
V免签, the values are URL-encoded (an ``&`` in ``param`` would otherwise cut it short) and
appended with ``&`` to a URL that already has a query string. The merchant's script must
answer exactly ``success``; the buyer's return carries the same fields.
"""

from __future__ import annotations

from openepay.core.money import format_yuan
from openepay.core.states import SETTLED_PAID
from openepay.db.models import Order
from openepay.protocols.query_messages import QueryStringMessages
from openepay.protocols.vmq.signing import notify_sign

ACK = b"success"
TEST_PRICE = "0.01"
TEST_TYPE = "2"


def signed_fields(pay_id: str, param: str, type_code: str, price: str, really_price: str, key: str) -> dict[str, str]:
    return {
        "payId": pay_id,
        "param": param,
        "type": type_code,
        "price": price,
        "reallyPrice": really_price,
        "sign": notify_sign(pay_id, param, type_code, price, really_price, key),
    }


def notification_params(order: Order, key: str) -> dict[str, str]:
    if order.status not in SETTLED_PAID:
        raise ValueError(f"order {order.trade_no} is {order.status}; only paid orders are notified")
    paid_fen = order.paid_fen if order.paid_fen is not None else order.pay_amount_fen
    return signed_fields(
        order.out_trade_no, order.param or "", str(order.attrs["type"]), order.money, format_yuan(paid_fen), key
    )


def probe_params(key: str, stamp: str) -> dict[str, str]:
    """Signed like a notification, for an order no shop has: ``payId`` and ``param`` both say it is a test."""
    marker = f"OPENEPAY-TEST-{stamp}"
    return signed_fields(marker, marker, TEST_TYPE, TEST_PRICE, TEST_PRICE, key)


class VmqMessages(QueryStringMessages):
    # V免签's pay page sends the buyer back as soon as the order shows paid, notification or not;
    # its plugins allow for that (dujiaoka's return waits a second, then shows the order).
    return_after_notify: float | None = None

    def notification_params(self, order: Order, key: str) -> dict[str, str]:
        return notification_params(order, key)

    def probe_params(self, pid: int, key: str, stamp: str) -> dict[str, str]:
        return probe_params(key, stamp)

    def acknowledged(self, body: bytes) -> bool:
        return body.strip() == ACK
