"""Reading the simulated upstream's callback: every field present, the signature, a whole amount."""

from __future__ import annotations

from openepay.channels.base import CallbackOutcome, CallbackRequest, Confirmation, Reply
from openepay.channels.sandbox.client import SIGNED_FIELDS, SandboxUpstream

ACK = Reply("success")
NACK = Reply("fail", status_code=400)
BUYER = "sandbox-buyer"


def read_callback(upstream: SandboxUpstream, request: CallbackRequest) -> CallbackOutcome:
    fields = request.form or request.query
    trade_no = fields.get("trade_no")
    if any(not fields.get(name) for name in (*SIGNED_FIELDS, "sign")):
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="missing fields")
    if not upstream.signature_valid(fields):
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="bad signature")
    if not fields["amount_fen"].isdigit():
        return CallbackOutcome(False, ACK, NACK, trade_no=trade_no, note="bad amount")
    confirmation = Confirmation(
        trade_no=fields["trade_no"],
        paid_fen=int(fields["amount_fen"]),
        channel_trade_no=fields["sandbox_trade_no"],
        buyer=BUYER,
    )
    return CallbackOutcome(True, ACK, NACK, trade_no=trade_no, confirmation=confirmation)
