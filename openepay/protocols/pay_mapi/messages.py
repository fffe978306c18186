"""Notifications and return redirects of the ``/pay/`` dialect: epay's, plus ``ext`` and ``realmoney``.

GET ``notify_url?pid&trade_no&out_trade_no&type&name&money&trade_status[&ext]&realmoney&sign&sign_type``.
``money`` is the merchant's own string (what they asked for: epay plugins compare it with
their order), ``realmoney`` what the buyer actually paid, which differs on channels that tell
payments apart by amount. Everything but ``sign``/``sign_type`` is signed with the epay MD5 rule.
"""

from __future__ import annotations

from openepay.core.money import format_yuan
from openepay.db.models import Order
from openepay.protocols.epay.messages import ACK_WORDS, TEST_STATUS, md5_signed, trade_success_fields
from openepay.protocols.query_messages import QueryStringMessages


def notification_params(order: Order, key: str) -> dict[str, str]:
    params = trade_success_fields(order)
    if order.param:
        params["ext"] = order.param
    paid_fen = order.paid_fen if order.paid_fen is not None else order.pay_amount_fen
    params["realmoney"] = format_yuan(paid_fen)
    return md5_signed(params, key)


def probe_params(pid: int, key: str, stamp: str) -> dict[str, str]:
    """Shaped like a notification, marked as a test: no ``TRADE_SUCCESS``, order numbers that match no order."""
    params = {
        "pid": str(pid),
        "trade_no": f"TEST{stamp}",
        "out_trade_no": f"OPENEPAY-TEST-{stamp}",
        "type": "alipay",
        "name": "OpenEpay notification test",
        "money": "0.01",
        "trade_status": TEST_STATUS,
        "ext": "test",
        "realmoney": "0.01",
    }
    return md5_signed(params, key)


class PayMapiMessages(QueryStringMessages):
    def notification_params(self, order: Order, key: str) -> dict[str, str]:
        return notification_params(order, key)

    def probe_params(self, pid: int, key: str, stamp: str) -> dict[str, str]:
        return probe_params(pid, key, stamp)

    def acknowledged(self, body: bytes) -> bool:
        return any(word in body for word in ACK_WORDS)
