"""The sandbox channel: a simulated upstream that signs its callbacks like a real one.

Its "upstream" is a page of ours (``/sandbox/pay/{handle}``, named like the cashier by the
buyer's handle) with a button that plays the buyer paying. Pressing it makes the simulated
upstream send a signed callback, which goes through ``receive_callback`` and
``confirm_payment`` exactly like a real upstream's would. Switched on by ``OPENEPAY_SANDBOX=1``
(``openepay demo`` does it), with a built-in account that routing tries after every real one;
``openepay channel add sandbox NAME`` adds more accounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sqlalchemy import select

from openepay.channels.base import (
    CallbackOutcome,
    CallbackRequest,
    Channel,
    ChannelAccount,
    ChannelOrder,
    ChannelRefused,
    ChannelServices,
    CredentialCheck,
    PayContext,
    PaymentOffer,
    RefundOutcome,
    RefusalReason,
    RoutingRules,
    UpstreamState,
    UpstreamStatus,
)
from openepay.channels.sandbox.callbacks import read_callback
from openepay.channels.sandbox.client import SandboxUpstream
from openepay.channels.sandbox.config import SandboxConfig
from openepay.db.models import ChannelCallback
from openepay.secretbox import derive_key

if TYPE_CHECKING:
    from fastapi import APIRouter

    from openepay.config import Settings

# Test amounts in fen: the channel refuses as paused, has no code for the amount, or asks the
# buyer to pay one fen more (as amount-matching personal-QR channels do).
PAUSED_AMOUNT = 702
NO_CODE_AMOUNT = 703
FLUCTUATING_AMOUNT = 709
_CREDITED = ("paid", "paid_late", "already_paid")


def pay_page_path(handle: str) -> str:
    """The simulated upstream's pay page, named by the buyer's handle like the cashier."""
    return f"/sandbox/pay/{handle}"


class SandboxChannel(Channel):
    name = "sandbox"
    display_name = "Sandbox"
    pay_types = frozenset({"alipay", "wxpay", "qqpay"})
    config_schema = SandboxConfig
    implicit_account = True
    # Its "upstream" is simulated inside the gateway: an offer places nothing anywhere.
    offers_before_order = True
    # Simulated money comes after every real account.
    implicit_rules = RoutingRules(priority=-100)

    def __init__(self, services: ChannelServices) -> None:
        super().__init__(services)
        self.upstream = SandboxUpstream(derive_key(services.settings.resolve_secret_key(), "sandbox upstream"))

    @classmethod
    def enabled_by(cls, settings: Settings) -> bool:
        return settings.sandbox

    def payment_callback(self, trade_no: str, amount_fen: int) -> dict[str, str]:
        return self.upstream.payment_callback(trade_no, amount_fen)

    async def create(self, account: ChannelAccount, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
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

    async def query(self, account: ChannelAccount, order: ChannelOrder) -> UpstreamStatus:
        """The simulated upstream's own record is the log of callbacks it sent us."""
        async with self.services.db.session() as session:
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

    async def close(self, account: ChannelAccount, order: ChannelOrder) -> None:
        """Nothing to do upstream: the simulated upstream refuses to take money for closed orders itself."""

    async def refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        return RefundOutcome(succeeded=True, channel_refund_no="SBR" + refund_no)

    async def handle_callback(self, account: ChannelAccount, request: CallbackRequest) -> CallbackOutcome:
        return read_callback(self.upstream, request)

    async def check_credentials(self, account: ChannelAccount) -> CredentialCheck:
        return CredentialCheck(True, "the sandbox needs no credentials: its upstream is simulated by this gateway")

    def router(self) -> APIRouter:
        from openepay.channels.sandbox.routes import router

        return router
