"""The ``wxpay`` channel: WeChat Pay API v3 for a direct merchant, in WeChat Pay public-key mode.

Creating a payment places a WeChat order with our order number as ``out_trade_no``, the
order's amount in fen and this account's callback URL as ``notify_url``: a JSAPI order when
the merchant names the buyer's openid (the buyer pays on the merchant's page inside WeChat,
which hands our signed parameters to ``WeixinJSBridge``), a Native order (its ``code_url`` is
the QR the buyer scans) for desktops, an H5 order (its ``h5_url`` is the page a mobile browser
opens) for phones when the account has H5 pay. WeChat notifies us when the
buyer pays (``callbacks.py``); reconciliation asks WeChat when no notification came, and an
expired order is closed at WeChat so it can no longer be paid.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import quote

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
from openepay.channels.wxpay.callbacks import read_notification
from openepay.channels.wxpay.client import Answer, NotSent, Uncertain, WxPayClient, rsa_sign
from openepay.channels.wxpay.config import WxPayConfig

# WeChat's own clock: ``time_expire`` is written in China Standard Time.
CHINA = timezone(timedelta(hours=8), "CST")
# An order created without the buyer's address (a browser jump we did not see) still needs one for H5.
UNKNOWN_CLIENT_IP = "127.0.0.1"
MAX_DESCRIPTION = 127
PENDING_STATES = {"NOTPAY", "USERPAYING"}
CLOSED_STATES = {"CLOSED", "REVOKED", "PAYERROR"}
# A refund WeChat accepted: PROCESSING ends in SUCCESS (or, rarely, ABNORMAL for the operator to handle).
REFUND_ACCEPTED = {"SUCCESS", "PROCESSING"}


# What each kind of WeChat order answers with: the QR content, the H5 page, the prepay id.
ANSWER_FIELD = {"native": "code_url", "h5": "h5_url", "jsapi": "prepay_id"}


def jsapi_parameters(config: WxPayConfig, prepay_id: str, *, now: int | None = None) -> dict[str, str]:
    """What the page inside WeChat passes to ``WeixinJSBridge.invoke("getBrandWCPayRequest", ...)``.

    WeChat's rule: ``paySign`` is SHA256withRSA, with the merchant API private key, over
    ``appId\ntimeStamp\nnonceStr\npackage\n``; the AppID is the one the order was placed with.
    """
    parameters = {
        "appId": config.appid,
        "timeStamp": str(int(time.time()) if now is None else now),
        "nonceStr": secrets.token_hex(16),
        "package": f"prepay_id={prepay_id}",
        "signType": "RSA",
    }
    message = "".join(f"{parameters[name]}\n" for name in ("appId", "timeStamp", "nonceStr", "package"))
    return {**parameters, "paySign": rsa_sign(config.signing_key, message)}


class WxPayError(Exception):
    """WeChat answered, and said no."""


class WxPayChannel(Channel):
    name = "wxpay"
    display_name = "WeChat Pay (API v3)"
    pay_types = frozenset({"wxpay"})
    config_schema = WxPayConfig
    queries_upstream = True

    def client(self, account: ChannelAccount) -> WxPayClient:
        assert isinstance(account.config, WxPayConfig)
        return WxPayClient(self.services.http, account.config)

    async def create(self, account: ChannelAccount, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
        client = self.client(account)
        config = client.config
        if order.openid and order.appid and order.appid != config.appid:
            # An openid belongs to one app: WeChat refuses it under another AppID, so another account may serve it.
            refusal = f"wxpay: sub_appid {order.appid} is not this account's AppID"
            raise ChannelRefused(RefusalReason.NOT_SERVED, refusal)
        kind = "jsapi" if order.openid else "h5" if config.h5 and order.device == "mobile" else "native"
        expires = order.expires_at.astimezone(CHINA).isoformat(timespec="seconds")
        fields: dict[str, Any] = {
            "appid": config.appid,
            "mchid": config.mchid,
            "description": order.name[:MAX_DESCRIPTION] or order.trade_no,
            "out_trade_no": order.trade_no,
            "time_expire": expires,
            "notify_url": ctx.callback_url,
            "amount": {"total": order.pay_amount_fen, "currency": "CNY"},
        }
        if kind == "jsapi":
            fields["payer"] = {"openid": order.openid}
        if kind == "h5":
            fields["scene_info"] = {
                "payer_client_ip": order.clientip or UNKNOWN_CLIENT_IP,
                "h5_info": {"type": "Wap"},
            }
        try:
            answer = await client.post(f"/v3/pay/transactions/{kind}", fields)
        except NotSent as exc:
            raise ChannelRefused(RefusalReason.UPSTREAM_ERROR, f"wxpay: {exc}") from exc
        if 400 <= answer.status < 500:
            # WeChat refused the order (signature, parameters, product not activated): nothing was created.
            raise ChannelRefused(RefusalReason.UPSTREAM_ERROR, f"wxpay refused: {answer.message}")
        link = answer.body.get(ANSWER_FIELD[kind])
        if not answer.ok or not isinstance(link, str) or not link:
            raise Uncertain(f"wxpay answered HTTP {answer.status} without a pay link: {answer.message}")
        if kind == "jsapi":
            return PaymentOffer(pay_info=json.dumps(jsapi_parameters(config, link), separators=(",", ":")))
        if kind == "h5":
            return PaymentOffer(pay_url=f"{link}&redirect_url={quote(ctx.return_url, safe='')}")
        return PaymentOffer(qrcode=link)

    async def query(self, account: ChannelAccount, order: ChannelOrder) -> UpstreamStatus:
        """WeChat's record of our order; believed only when it names this account and our number."""
        client = self.client(account)
        config = client.config
        answer = await client.get(f"/v3/pay/transactions/out-trade-no/{quote(order.trade_no)}?mchid={config.mchid}")
        if answer.status == 404:
            # WeChat never took the order (creation failed on the way): it can never be paid.
            return UpstreamStatus(UpstreamState.CLOSED)
        if not answer.ok:
            return UpstreamStatus(UpstreamState.UNKNOWN)
        body = answer.body
        if (body.get("out_trade_no"), body.get("mchid"), body.get("appid")) != (
            order.trade_no,
            config.mchid,
            config.appid,
        ):
            return UpstreamStatus(UpstreamState.UNKNOWN)
        state = body.get("trade_state")
        if state in PENDING_STATES:
            return UpstreamStatus(UpstreamState.PENDING)
        if state in CLOSED_STATES:
            return UpstreamStatus(UpstreamState.CLOSED)
        amount = body.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        # REFUND: it was paid, and some of it has been refunded since.
        if state not in ("SUCCESS", "REFUND") or type(total) is not int:
            return UpstreamStatus(UpstreamState.UNKNOWN)
        payer = body.get("payer")
        openid = payer.get("openid") if isinstance(payer, dict) else None
        return UpstreamStatus(
            UpstreamState.PAID,
            paid_fen=total,
            channel_trade_no=str(body.get("transaction_id") or "")[:64] or None,
            buyer=openid[:128] if isinstance(openid, str) and openid else None,
        )

    async def close(self, account: ChannelAccount, order: ChannelOrder) -> None:
        """WeChat stops taking money for the order; a payment made before it closed still arrives and counts."""
        client = self.client(account)
        path = f"/v3/pay/transactions/out-trade-no/{quote(order.trade_no)}/close"
        answer = await client.post(path, {"mchid": client.config.mchid})
        if not answer.ok:
            raise WxPayError(f"close of {order.trade_no} refused: {answer.message}")

    async def refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        """``out_refund_no`` is our refund number, so WeChat refunds once however often this is asked.

        When the answer is lost or WeChat failed on its side, the refund may still have been
        made: WeChat's record of our number decides at once when it has one; otherwise the
        refund stays pending for reconciliation (``query_refund``).
        """
        client = self.client(account)
        sent = await _send_refund(client, order, amount_fen, refund_no)
        if sent is not None:
            return sent
        found = await _look_up_refund(client, order, amount_fen, refund_no)
        return found or RefundOutcome(False, "WeChat Pay failed on its side and shows no refund yet", pending=True)

    async def query_refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        """WeChat's record of our refund number; with none, the refund is sent again under the same number.

        WeChat refunds one ``out_refund_no`` once, so sending it again cannot refund twice.
        """
        client = self.client(account)
        found = await _look_up_refund(client, order, amount_fen, refund_no)
        if found is not None:
            return found
        sent = await _send_refund(client, order, amount_fen, refund_no)
        return sent or RefundOutcome(False, "WeChat Pay failed on its side again", pending=True)

    async def handle_callback(self, account: ChannelAccount, request: CallbackRequest) -> CallbackOutcome:
        assert isinstance(account.config, WxPayConfig)
        return read_notification(account.config, request)

    async def check_credentials(self, account: ChannelAccount) -> CredentialCheck:
        """Ask for an order that does not exist: only a correctly signed request gets a signed ORDER_NOT_EXIST.

        That proves the merchant id, the serial number and private key (WeChat accepted our
        signature) and the WeChat Pay public key (we verified WeChat's); the AppID and the APIv3
        key are first used by the first order and its notification.
        """
        client = self.client(account)
        probe = f"OPENEPAY-TEST-{secrets.token_hex(6)}"
        try:
            answer = await client.get(f"/v3/pay/transactions/out-trade-no/{probe}?mchid={client.config.mchid}")
        except (NotSent, Uncertain) as exc:
            return CredentialCheck(False, str(exc))
        if answer.status == 404 and answer.signed:
            return CredentialCheck(True, f"merchant {client.config.mchid} accepted; WeChat Pay's signature verified")
        return CredentialCheck(False, f"WeChat Pay refused the request: {answer.message}")


async def _send_refund(
    client: WxPayClient, order: ChannelOrder, amount_fen: int, refund_no: str
) -> RefundOutcome | None:
    """WeChat's answer to a refund, or None when the request may have been taken but the answer says nothing."""
    fields = {
        "out_trade_no": order.trade_no,
        "out_refund_no": refund_no,
        "amount": {"refund": amount_fen, "total": order.pay_amount_fen, "currency": "CNY"},
    }
    try:
        answer = await client.post("/v3/refund/domestic/refunds", fields)
    except NotSent as exc:
        return RefundOutcome(False, f"微信支付无法连接：{exc}")
    except Uncertain:
        return None
    if answer.status >= 500:
        return None
    if not answer.ok:
        # WeChat refused it (insufficient balance, wrong amount, ...): no money moved.
        return RefundOutcome(False, answer.message)
    return _refund_outcome(answer, order, amount_fen, refund_no)


async def _look_up_refund(
    client: WxPayClient, order: ChannelOrder, amount_fen: int, refund_no: str
) -> RefundOutcome | None:
    """What WeChat's record of our refund number says; None when WeChat has no refund of that number."""
    try:
        answer = await client.get(f"/v3/refund/domestic/refunds/{quote(refund_no)}")
    except (NotSent, Uncertain) as exc:
        return RefundOutcome(False, f"微信支付退款查询失败：{exc}", pending=True)
    if answer.status == 404:
        return None
    if not answer.ok:
        return RefundOutcome(False, f"微信支付退款查询未成功：{answer.message}", pending=True)
    return _refund_outcome(answer, order, amount_fen, refund_no)


def _refund_outcome(answer: Answer, order: ChannelOrder, amount_fen: int, refund_no: str) -> RefundOutcome:
    """A refund WeChat answered with: accepted, closed (no money moved), or for a person to look at."""
    body = answer.body
    amount = body.get("amount")
    refunded = amount.get("refund") if isinstance(amount, dict) else None
    if (body.get("out_refund_no"), body.get("out_trade_no"), refunded) != (refund_no, order.trade_no, amount_fen):
        return RefundOutcome(False, "WeChat Pay answered about another refund", pending=True)
    status = str(body.get("status") or "")
    refund_id = str(body.get("refund_id") or "")[:64] or None
    if status in REFUND_ACCEPTED:
        return RefundOutcome(True, status, channel_refund_no=refund_id)
    if status == "CLOSED":
        return RefundOutcome(False, "refund CLOSED", channel_refund_no=refund_id)
    # ABNORMAL: the buyer's account could not take the money; it is settled in the merchant platform.
    problem = f"refund {status[:20] or 'without a status'}"
    return RefundOutcome(False, problem, channel_refund_no=refund_id, pending=True)
