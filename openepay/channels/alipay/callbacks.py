"""Reading an Alipay asynchronous notification (``notify_url``).

Alipay POSTs a form (``app_id, out_trade_no, trade_no, trade_status, total_amount, buyer_*,
notify_id, sign, sign_type`` and more). It is believed only if the RSA2 signature verifies
with this account's Alipay public key over every field but ``sign`` and ``sign_type`` (empty
ones kept), sorted; then ``app_id`` must be this account's (and ``seller_id`` its PID when one
is configured). A signature alone proves only that Alipay sent it for *some* application.
The core then checks that ``out_trade_no`` is an order of this account and that
``total_amount`` is exactly what the buyer had to pay.

``TRADE_SUCCESS`` and ``TRADE_FINISHED`` (sent again when the refund window ends) confirm a
payment; both are idempotent in the core. Other statuses change nothing. The answer is the
seven bytes ``success``, which stops Alipay's retries (about eight over 25 hours); anything
unverified gets ``fail``.
"""

from __future__ import annotations

import hmac

from openepay.channels.alipay.client import AlipayClient, notification_content, rsa2_valid
from openepay.channels.base import CallbackOutcome, CallbackRequest, Confirmation, Reply
from openepay.core.money import MoneyError, parse_yuan

ACK = Reply("success")
NACK = Reply("fail")
REQUIRED = ("app_id", "out_trade_no", "trade_no", "trade_status", "total_amount", "sign")
PAID_STATUSES = ("TRADE_SUCCESS", "TRADE_FINISHED")


def read_notification(client: AlipayClient, request: CallbackRequest) -> CallbackOutcome:
    fields = dict(request.form) if request.form else dict(request.query)
    trade_no = fields.get("out_trade_no")
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note=f"missing {', '.join(missing)}")
    if not rsa2_valid(client.alipay_key, notification_content(fields), fields["sign"]):
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="bad signature")
    config = client.config
    if not hmac.compare_digest(fields["app_id"].encode(), config.app_id.encode()):
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="another app_id")
    if config.seller_id and fields.get("seller_id") != config.seller_id:
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="another seller_id")
    try:
        paid_fen = parse_yuan(fields["total_amount"])
    except MoneyError:
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="bad total_amount")
    status = fields["trade_status"]
    if status not in PAID_STATUSES:
        # Signed but not a payment (WAIT_BUYER_PAY, TRADE_CLOSED): acknowledged, nothing changes.
        return CallbackOutcome(True, ACK, NACK, trade_no=trade_no, note=f"status {status[:20]}")
    buyer = fields.get("buyer_logon_id") or fields.get("buyer_id") or fields.get("buyer_open_id") or None
    confirmation = Confirmation(
        trade_no=fields["out_trade_no"],
        paid_fen=paid_fen,
        channel_trade_no=fields["trade_no"][:64],
        buyer=buyer[:128] if buyer else None,
    )
    return CallbackOutcome(True, ACK, NACK, trade_no=trade_no, confirmation=confirmation)
