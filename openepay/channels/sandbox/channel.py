"""The sandbox channel: a simulated upstream that signs its callbacks like a real one.

Its "upstream" is a page of ours (``/sandbox/pay/{handle}``, named like the cashier by the
buyer's handle) with a button that plays the buyer paying. Pressing it makes the simulated
upstream send a signed callback, which goes through ``receive_callback`` and
``confirm_payment`` exactly like Alipay's would.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sqlalchemy import select

from openepay.channels.base import (
    CallbackOutcome,
    CallbackRequest,
    Channel,
    ChannelOrder,
    ChannelRefused,
    Confirmation,
    PayContext,
    PaymentOffer,
    RefundOutcome,
    RefusalReason,
    Reply,
    UpstreamState,
    UpstreamStatus,
)
from openepay.db import Database
from openepay.db.models import ChannelCallback

SIGNED_FIELDS = ("amount_fen", "paid_at", "sandbox_trade_no", "trade_no")
# Test amounts in fen: the channel refuses as paused, has no code for the amount, or asks the
# buyer to pay one fen more (as amount-matching personal-QR channels do).
PAUSED_AMOUNT = 702
NO_CODE_AMOUNT = 703
FLUCTUATING_AMOUNT = 709
_CREDITED = ("paid", "paid_late", "already_paid")

if TYPE_CHECKING:
    from fastapi import APIRouter


def pay_page_path(handle: str) -> str:
    """The simulated upstream's pay page, named by the buyer's handle like the cashier."""
    return f"/sandbox/pay/{handle}"


class SandboxChannel(Channel):
    name = "sandbox"
    display_name = "Sandbox"
    pay_types = frozenset({"alipay", "wxpay", "qqpay"})

    def __init__(self, db: Database, signing_key: bytes) -> None:
        self._db = db
        self._key = signing_key

    def _sign(self, fields: Mapping[str, str]) -> str:
        content = "&".join(f"{name}={fields[name]}" for name in SIGNED_FIELDS)
        return hmac.new(self._key, content.encode(), hashlib.sha256).hexdigest()

    def payment_callback(self, trade_no: str, amount_fen: int) -> dict[str, str]:
        """The form the simulated upstream posts when the buyer pays."""
        fields = {
            "trade_no": trade_no,
            "amount_fen": str(amount_fen),
            "sandbox_trade_no": "SB" + secrets.token_hex(10).upper(),
            "paid_at": str(int(time.time())),
        }
        return {**fields, "sign": self._sign(fields)}

    async def create(self, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
        """Like any sandbox, a few amounts act out what real upstreams do (docs/dialects.md)."""
        if order.pay_amount_fen == PAUSED_AMOUNT:
            raise ChannelRefused(RefusalReason.PAUSED, "sandbox: channel paused (test amount 7.02)")
        if order.pay_amount_fen == NO_CODE_AMOUNT:
            raise ChannelRefused(
                RefusalReason.NO_CODE_FOR_AMOUNT, "sandbox: no code for this amount (test amount 7.03)"
            )
        url = ctx.url(pay_page_path(ctx.handle(order.trade_no)))
        pay_amount = order.pay_amount_fen + 1 if order.pay_amount_fen == FLUCTUATING_AMOUNT else None
        return PaymentOffer(pay_url=url, qrcode=url, pay_amount_fen=pay_amount)

    async def query(self, order: ChannelOrder) -> UpstreamStatus:
        """The simulated upstream's own record is the log of callbacks it sent us."""
        async with self._db.session() as session:
            payloads = (
                await session.scalars(
                    select(ChannelCallback.payload).where(
                        ChannelCallback.channel == self.name,
                        ChannelCallback.trade_no == order.trade_no,
                        ChannelCallback.verified.is_(True),
                        ChannelCallback.decision.in_(_CREDITED),
                    )
                )
            ).all()
        for payload in payloads:
            fields = dict(parse_qsl(payload, keep_blank_values=True))
            return UpstreamStatus(
                UpstreamState.PAID,
                paid_fen=int(fields["amount_fen"]),
                channel_trade_no=fields["sandbox_trade_no"],
            )
        return UpstreamStatus(UpstreamState.PENDING)

    async def close(self, order: ChannelOrder) -> None:
        """Nothing to do upstream: the simulated upstream refuses to take money for closed orders itself."""

    async def refund(self, order: ChannelOrder, amount_fen: int, refund_no: str) -> RefundOutcome:
        return RefundOutcome(succeeded=True, channel_refund_no="SBR" + refund_no)

    async def handle_callback(self, request: CallbackRequest) -> CallbackOutcome:
        fields = request.form or request.query
        ack, nack = Reply("success"), Reply("fail", status_code=400)
        trade_no = fields.get("trade_no")
        if any(not fields.get(name) for name in (*SIGNED_FIELDS, "sign")):
            return CallbackOutcome(False, ack, nack, trade_no=trade_no, note="missing fields")
        expected = self._sign(fields)
        if not hmac.compare_digest(expected.encode(), fields["sign"].encode("utf-8", "replace")):
            return CallbackOutcome(False, ack, nack, trade_no=trade_no, note="bad signature")
        if not fields["amount_fen"].isdigit():
            return CallbackOutcome(False, ack, nack, trade_no=trade_no, note="bad amount")
        confirmation = Confirmation(
            trade_no=fields["trade_no"],
            paid_fen=int(fields["amount_fen"]),
            channel_trade_no=fields["sandbox_trade_no"],
            buyer="sandbox-buyer",
        )
        return CallbackOutcome(True, ack, nack, trade_no=trade_no, confirmation=confirmation)

    def router(self) -> APIRouter:
        # Imported here because the pages use the simulator, which uses this class.
        from openepay.channels.sandbox.routes import router

        return router
