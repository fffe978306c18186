"""The ``epay_upstream`` channel: orders relayed to another epay gateway, as Rainbow Epay's ``epay`` plugin does.

Creating a payment asks the upstream's ``mapi.php`` (or builds a ``submit.php`` jump) with our
order number as its ``out_trade_no`` and this account's callback URL as its ``notify_url``;
the buyer pays at the upstream, which notifies us (``callbacks.py``). When no notification
comes, reconciliation asks ``api.php?act=order``. Refunds go through ``api.php?act=refund``.
The epay protocol has no way to close an order upstream: a payment that arrives after we
closed one takes the late-payment edge and is flagged.
"""

from __future__ import annotations

from openepay.channels.base import (
    CallbackOutcome,
    CallbackRequest,
    Channel,
    ChannelAccount,
    ChannelOrder,
    ChannelRefused,
    CredentialCheck,
    PayContext,
    PaymentOffer,
    RefundOutcome,
    RefusalReason,
    UpstreamState,
    UpstreamStatus,
)
from openepay.channels.epay_upstream.callbacks import read_notification
from openepay.channels.epay_upstream.client import (
    EpayClient,
    NotSent,
    Uncertain,
    answer_code,
    answer_message,
)
from openepay.channels.epay_upstream.config import EpayUpstreamConfig
from openepay.core.money import MoneyError, format_yuan, parse_yuan

# An order created without the buyer's address (a browser jump we did not see) still needs one.
UNKNOWN_CLIENT_IP = "127.0.0.1"


class EpayUpstreamChannel(Channel):
    name = "epay_upstream"
    display_name = "Upstream epay gateway"
    pay_types = frozenset({"alipay", "wxpay", "qqpay", "bank", "jdpay"})
    config_schema = EpayUpstreamConfig
    queries_upstream = True

    def client(self, account: ChannelAccount) -> EpayClient:
        assert isinstance(account.config, EpayUpstreamConfig)
        return EpayClient(self.services.http, account.config)

    async def create(self, account: ChannelAccount, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
        client = self.client(account)
        fields = {
            "pid": client.config.pid,
            "type": order.pay_type,
            "out_trade_no": order.trade_no,
            "notify_url": ctx.callback_url,
            "return_url": ctx.return_url,
            "name": order.name,
            "money": format_yuan(order.pay_amount_fen),
        }
        if client.config.mode == "submit":
            return PaymentOffer(pay_url=client.submit_url(fields))
        fields.update(clientip=order.clientip or UNKNOWN_CLIENT_IP, device=order.device or "pc")
        try:
            answer = await client.mapi(fields)
        except NotSent as exc:
            raise ChannelRefused(RefusalReason.UPSTREAM_ERROR, f"epay upstream: {exc}") from exc
        if answer_code(answer) != 1:
            # The upstream said no: it created nothing.
            raise ChannelRefused(RefusalReason.UPSTREAM_ERROR, f"epay upstream refused: {answer_message(answer)}")
        offer = {name: str(answer[name]) for name in ("payurl", "qrcode", "urlscheme") if answer.get(name)}
        if not offer:
            raise Uncertain(f"mapi.php answered code 1 without payurl, qrcode or urlscheme: {answer!r:.300}")
        return PaymentOffer(
            pay_url=offer.get("payurl"),
            qrcode=offer.get("qrcode"),
            urlscheme=offer.get("urlscheme"),
            channel_trade_no=str(answer.get("trade_no") or "")[:64] or None,
        )

    async def query(self, account: ChannelAccount, order: ChannelOrder) -> UpstreamStatus:
        """``api.php?act=order`` by our number; believed only for this account's pid and our order."""
        client = self.client(account)
        answer = await client.api("order", {"out_trade_no": order.trade_no})
        if answer_code(answer) != 1:
            return UpstreamStatus(UpstreamState.PENDING)
        if str(answer.get("out_trade_no")) != order.trade_no or str(answer.get("pid")) != client.config.pid:
            return UpstreamStatus(UpstreamState.UNKNOWN)
        try:
            status = int(answer.get("status"))  # type: ignore[arg-type]
            paid_fen = parse_yuan(str(answer.get("money")))
        except (TypeError, ValueError, MoneyError):
            return UpstreamStatus(UpstreamState.UNKNOWN)
        if status != client.config.paid_status:
            return UpstreamStatus(UpstreamState.PENDING)
        return UpstreamStatus(
            UpstreamState.PAID,
            paid_fen=paid_fen,
            channel_trade_no=str(answer.get("trade_no") or "")[:64] or None,
            buyer=str(answer.get("buyer") or "")[:128] or None,
        )

    async def close(self, account: ChannelAccount, order: ChannelOrder) -> None:
        """The epay protocol cannot close an order upstream; a payment after our close is credited late and flagged."""

    async def refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        client = self.client(account)
        number = {"trade_no": order.channel_trade_no} if order.channel_trade_no else {"out_trade_no": order.trade_no}
        fields = {**number, "money": format_yuan(amount_fen), "out_refund_no": refund_no, "refund_no": refund_no}
        try:
            answer = await client.api("refund", fields, post=True)
        except NotSent as exc:
            return RefundOutcome(False, f"上游无法连接：{exc}")
        if answer_code(answer) != client.config.refund_success_code:
            return RefundOutcome(False, answer_message(answer) or "上游拒绝退款")
        return RefundOutcome(True, answer_message(answer), channel_refund_no=str(answer.get("refund_no") or "") or None)

    async def handle_callback(self, account: ChannelAccount, request: CallbackRequest) -> CallbackOutcome:
        assert isinstance(account.config, EpayUpstreamConfig)
        return read_notification(account.config, request)

    async def check_credentials(self, account: ChannelAccount) -> CredentialCheck:
        """``api.php?act=query`` answers code 1 only to the right pid and key."""
        try:
            answer = await self.client(account).api("query", {})
        except (NotSent, Uncertain) as exc:
            return CredentialCheck(False, str(exc))
        if answer_code(answer) != 1:
            return CredentialCheck(False, f"the upstream refused the pid and key: {answer_message(answer)}")
        active = answer.get("active")
        detail = f"merchant {answer.get('pid')} accepted"
        if active is not None and str(active) != "1":
            return CredentialCheck(False, detail + ", but the upstream says the merchant is not active")
        return CredentialCheck(True, detail)
