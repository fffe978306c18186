"""The ``alipay`` channel: official Alipay OpenAPI, RSA2, in public-key or certificate mode.

Creating a payment picks the product by the buyer's device (the account says which): 当面付
``alipay.trade.precreate`` gives a ``qr_code`` to scan; 电脑网站支付 ``alipay.trade.page.pay``
and 手机网站支付 ``alipay.trade.wap.pay`` are signed URLs the buyer's browser opens at the
gateway. Each passes our order number as ``out_trade_no``, the exact amount, the order's
expiry as ``time_expire`` (Alipay stops taking money then) and this account's callback URL.

Reconciliation asks ``alipay.trade.query``; an expired order is closed with
``alipay.trade.close``. Refunds use ``alipay.trade.refund`` with our refund number as
``out_request_no``, which Alipay refunds at most once however often it is sent; that is what
lets an uncertain refund be asked about (``alipay.trade.fastpay.refund.query``) and, when
Alipay has no record of it, sent again safely.
"""

from __future__ import annotations

import secrets

from openepay.channels.alipay.callbacks import read_notification
from openepay.channels.alipay.client import UNKNOWN_CODE, AlipayClient, Answer, NotSent, Uncertain, alipay_time
from openepay.channels.alipay.config import AlipayConfig
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
from openepay.core.money import MoneyError, format_yuan, parse_yuan

PAGE_PRODUCTS = {
    "page": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    "wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
}
PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")
# Before the buyer scans a precreate QR, Alipay has no trade to query or close.
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
# A refund answer that says nothing sure: Alipay asks for the same request again.
RETRY_SUB_CODES = ("ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR")
MAX_SUBJECT_CHARS = 128
# Alipay refuses a subject with these (its docs: 不可使用特殊字符，如 /，=，&).
SUBJECT_FORBIDDEN = str.maketrans({"/": " ", "=": " ", "&": " "})


class AlipayChannel(Channel):
    name = "alipay"
    display_name = "Alipay (支付宝开放平台)"
    pay_types = frozenset({"alipay"})
    config_schema = AlipayConfig
    queries_upstream = True

    def client(self, account: ChannelAccount) -> AlipayClient:
        assert isinstance(account.config, AlipayConfig)
        return AlipayClient(self.services.http, account.config)

    async def create(self, account: ChannelAccount, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
        client = self.client(account)
        config = client.config
        method = config.pc_method if (order.device or "pc") == "pc" else config.mobile_method
        biz = {
            "out_trade_no": order.trade_no,
            "total_amount": format_yuan(order.pay_amount_fen),
            "subject": _subject(order),
            "time_expire": alipay_time(order.expires_at),
        }
        if method in PAGE_PRODUCTS:
            api, product = PAGE_PRODUCTS[method]
            biz["product_code"] = product
            if method == "wap":
                biz["quit_url"] = ctx.return_url
            return PaymentOffer(
                pay_url=client.page_url(api, biz, notify_url=ctx.callback_url, return_url=ctx.return_url)
            )
        try:
            answer = await client.call("alipay.trade.precreate", biz, notify_url=ctx.callback_url)
        except NotSent as exc:
            raise ChannelRefused(RefusalReason.UPSTREAM_ERROR, f"alipay: {exc}") from exc
        if answer.code != "10000" and answer.code != UNKNOWN_CODE:
            # A business or gateway refusal (bad key, app not signed up for 当面付): nothing was created.
            raise ChannelRefused(RefusalReason.UPSTREAM_ERROR, f"alipay refused precreate: {answer.message}")
        if not answer.ok or not answer.get("qr_code") or answer.get("out_trade_no") != order.trade_no:
            raise Uncertain(f"precreate answered without a signed qr_code for our order: {answer.message}")
        return PaymentOffer(qrcode=answer.get("qr_code"))

    async def query(self, account: ChannelAccount, order: ChannelOrder) -> UpstreamStatus:
        """``alipay.trade.query`` by our number; believed only when signed and about our order."""
        answer = await self.client(account).call("alipay.trade.query", {"out_trade_no": order.trade_no})
        if answer.signed and answer.get("sub_code") == NOT_EXIST:
            return UpstreamStatus(UpstreamState.PENDING)
        if not answer.ok or answer.get("out_trade_no") != order.trade_no:
            return UpstreamStatus(UpstreamState.UNKNOWN)
        status = answer.get("trade_status")
        if status == "TRADE_CLOSED":
            return UpstreamStatus(UpstreamState.CLOSED)
        if status not in PAID:
            return UpstreamStatus(UpstreamState.PENDING)
        try:
            paid_fen = parse_yuan(answer.get("total_amount"))
        except MoneyError:
            return UpstreamStatus(UpstreamState.UNKNOWN)
        buyer = answer.get("buyer_logon_id") or answer.get("buyer_user_id") or answer.get("buyer_open_id")
        return UpstreamStatus(
            UpstreamState.PAID,
            paid_fen=paid_fen,
            channel_trade_no=answer.get("trade_no")[:64] or None,
            buyer=buyer[:128] or None,
        )

    async def close(self, account: ChannelAccount, order: ChannelOrder) -> None:
        """``alipay.trade.close``; an unscanned precreate QR has no trade yet, and ``time_expire`` stops it anyway."""
        answer = await self.client(account).call("alipay.trade.close", {"out_trade_no": order.trade_no})
        if not answer.ok and answer.get("sub_code") != NOT_EXIST:
            raise Uncertain(f"alipay could not close {order.trade_no}: {answer.message}")

    async def refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        biz = {"out_trade_no": order.trade_no, "refund_amount": format_yuan(amount_fen), "out_request_no": refund_no}
        try:
            answer = await self.client(account).call("alipay.trade.refund", biz)
        except NotSent as exc:
            return RefundOutcome(False, f"支付宝无法连接：{exc}")
        except Uncertain as exc:
            return RefundOutcome(False, f"支付宝未明确答复：{exc}", pending=True)
        return _refund_outcome(answer, order, amount_fen)

    async def query_refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        """``alipay.trade.fastpay.refund.query``; a refund Alipay has no record of is sent again with the same number.

        Alipay's rule: a refund query that returns the refund (status empty or
        ``REFUND_SUCCESS``) means refunded; one that returns nothing means not refunded, and
        the refund may be retried with the same ``out_request_no``, which never refunds twice.
        """
        biz = {"out_trade_no": order.trade_no, "out_request_no": refund_no, "query_options": ["gmt_refund_pay"]}
        try:
            answer = await self.client(account).call("alipay.trade.fastpay.refund.query", biz)
        except (NotSent, Uncertain) as exc:
            return RefundOutcome(False, f"支付宝退款查询失败：{exc}", pending=True)
        if not answer.ok:
            return RefundOutcome(False, f"支付宝退款查询未成功：{answer.message}", pending=True)
        if not answer.get("out_request_no"):
            return await self.refund(account, order, amount_fen, refund_no)
        if answer.get("out_request_no") != refund_no or answer.get("out_trade_no") != order.trade_no:
            return RefundOutcome(False, "支付宝退款查询答复了另一笔退款", pending=True)
        if answer.get("refund_status") not in ("", "REFUND_SUCCESS") or not _same_amount(
            answer.get("refund_amount"), amount_fen
        ):
            return RefundOutcome(False, f"支付宝退款状态：{answer.get('refund_status')[:40]}", pending=True)
        return RefundOutcome(True, "支付宝退款已成功", channel_refund_no=refund_no)

    async def handle_callback(self, account: ChannelAccount, request: CallbackRequest) -> CallbackOutcome:
        return read_notification(self.client(account), request)

    async def check_credentials(self, account: ChannelAccount) -> CredentialCheck:
        """A signed ``alipay.trade.query`` for a number that does not exist.

        Only the right APPID and application private key get past Alipay's gateway (which
        answers ``isv.invalid-signature`` / ``isv.invalid-app-id`` otherwise), and only the
        right Alipay public key verifies its "trade does not exist" answer.
        """
        probe = "OPENEPAY-CHECK-" + secrets.token_hex(6)
        client = self.client(account)
        try:
            answer = await client.call("alipay.trade.query", {"out_trade_no": probe})
        except (NotSent, Uncertain) as exc:
            return CredentialCheck(False, str(exc))
        if answer.code in ("10000", "40004") and not answer.signed:
            return CredentialCheck(False, "Alipay's answer does not verify with the configured Alipay public key")
        if answer.code in ("10000", "40004"):
            return CredentialCheck(True, f"app {client.config.app_id}: key accepted, Alipay's signature verified")
        return CredentialCheck(False, f"Alipay refused the app id or private key: {answer.message}")


def _subject(order: ChannelOrder) -> str:
    """The order's name as Alipay takes it: its forbidden characters as spaces, at most 128 characters."""
    return " ".join(order.name.translate(SUBJECT_FORBIDDEN).split())[:MAX_SUBJECT_CHARS] or order.trade_no


def _same_amount(text: str, amount_fen: int) -> bool:
    try:
        return parse_yuan(text) == amount_fen
    except MoneyError:
        return False


def _refund_outcome(answer: Answer, order: ChannelOrder, amount_fen: int) -> RefundOutcome:
    """Sure only when Alipay signed it: an unsigned "no" could hide a refund that went through."""
    if answer.ok:
        if answer.get("out_trade_no") != order.trade_no:
            return RefundOutcome(False, "支付宝退款答复了另一笔订单", pending=True)
        if answer.get("fund_change") != "Y":
            # Alipay: no money moved by this request; only a refund query tells whether an earlier one did.
            return RefundOutcome(False, "支付宝答复本次未发生资金变动，待退款查询确认", pending=True)
        return RefundOutcome(True, answer.get("msg"), channel_refund_no=answer.get("trade_no") or None)
    if not answer.signed or answer.code == UNKNOWN_CODE or answer.get("sub_code") in RETRY_SUB_CODES:
        return RefundOutcome(False, f"支付宝未明确答复：{answer.message}", pending=True)
    return RefundOutcome(False, f"支付宝拒绝退款：{answer.message}")
