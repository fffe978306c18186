"""Reading an upstream epay gateway's notification.

The upstream GETs our callback URL with ``pid, trade_no, out_trade_no, type, name, money,
trade_status, sign, sign_type`` (and sometimes ``param``, ``api_trade_no``, ``buyer``). It is
believed only if the MD5 signature verifies with this account's key, the ``pid`` is this
account's and ``trade_status`` is ``TRADE_SUCCESS``; the core then checks that our order number
belongs to this account and that ``money`` is exactly what the buyer had to pay. The answer
is ``success``, which stops the upstream's retries; anything unverified gets ``fail``.
"""

from __future__ import annotations

from openepay.channels.base import CallbackOutcome, CallbackRequest, Confirmation, Reply
from openepay.channels.epay_upstream.client import signature_valid
from openepay.channels.epay_upstream.config import EpayUpstreamConfig
from openepay.core.money import MoneyError, parse_yuan

ACK = Reply("success")
NACK = Reply("fail")
REQUIRED = ("pid", "trade_no", "out_trade_no", "money", "trade_status", "sign")


def read_notification(config: EpayUpstreamConfig, request: CallbackRequest) -> CallbackOutcome:
    fields = dict(request.query) if request.query.get("sign") else dict(request.form)
    trade_no = fields.get("out_trade_no")
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note=f"missing {', '.join(missing)}")
    if not signature_valid(fields, config.key.get_secret_value()):
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="bad signature")
    if fields["pid"] != config.pid:
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="another merchant's pid")
    try:
        paid_fen = parse_yuan(fields["money"])
    except MoneyError:
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="bad money")
    if fields["trade_status"] != "TRADE_SUCCESS":
        # Signed but not a payment: acknowledged so the upstream stops, and nothing changes.
        return CallbackOutcome(True, ACK, NACK, trade_no=trade_no, note=f"status {fields['trade_status'][:20]}")
    confirmation = Confirmation(
        trade_no=fields["out_trade_no"],
        paid_fen=paid_fen,
        channel_trade_no=fields["trade_no"][:64],
        buyer=(fields.get("buyer") or None) and fields["buyer"][:128],
    )
    return CallbackOutcome(True, ACK, NACK, trade_no=trade_no, confirmation=confirmation)
