"""Validating ``submit.php`` and ``mapi.php`` requests in Rainbow's order, with Rainbow's texts.

Merchant plugins show these messages to buyers and some match on them, so the wording and
the order of the checks follow the real gateway; checks Rainbow lacks come after its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from openepay.core.gate import Door, Refusal, Refused
from openepay.core.money import MoneyError, format_yuan, parse_yuan, yuan_to_fen
from openepay.core.orders import NewOrder
from openepay.db.models import Merchant
from openepay.gateway import Gateway
from openepay.notify.targets import url_block_reason
from openepay.protocols.epay import DIALECT
from openepay.protocols.epay.signing import verify
from openepay.protocols.lockout_messages import too_many
from openepay.protocols.params import UnreadableParameter, php_empty, php_intval

OUT_TRADE_NO = re.compile(r"^[a-zA-Z0-9._\-|]+$")
DEVICES = {"pc", "mobile", "qq", "wechat", "alipay", "jump"}
MOBILE_APPS = {"qq", "wechat", "alipay"}

MAX_OUT_TRADE_NO = 64
MAX_URL = 2048
MAX_NAME = 1024
MAX_PARAM = 4096
MAX_CLIENTIP = 64

# How Rainbow names a field in its messages.
LABELS = {
    "pid": "商户ID(pid)",
    "type": "支付方式(type)",
    "out_trade_no": "订单号(out_trade_no)",
    "notify_url": "通知地址(notify_url)",
    "return_url": "回调地址(return_url)",
    "name": "商品名称(name)",
    "money": "金额(money)",
    "param": "业务扩展参数(param)",
    "sitename": "网站名称(sitename)",
    "clientip": "用户IP地址(clientip)",
}


# Rainbow's order: the merchant, the signature, then the ban.
DOOR = Door(DIALECT, permissions_first=False)
REFUSALS = {
    Refusal.NO_SUCH_MERCHANT: "商户不存在！",
    Refusal.BAD_SIGNATURE: "签名校验失败，请返回重试！",
    Refusal.DISABLED: "商户已封禁，无法支付！",
    Refusal.DIALECT_NOT_ENABLED: "商户未开通易支付V1接口",
}


class EpayError(Exception):
    def __init__(self, msg: str, code: int = -1) -> None:
        super().__init__(msg)
        self.msg = msg
        self.code = code


def unreadable(error: UnreadableParameter) -> EpayError:
    """A parameter no database can store, in Rainbow's words for an invalid field."""
    return EpayError(f"{LABELS.get(error.name, f'参数({error.name})')}不合法")


@dataclass(frozen=True)
class PayRequest:
    merchant: Merchant
    order: NewOrder
    pay_type: str | None
    device: str


def _money_limit_text(fen: int) -> str:
    text = format_yuan(fen)
    return text[:-3] if text.endswith(".00") else text


async def authenticate(gateway: Gateway, params: dict[str, str], client: str) -> Merchant:
    pid = php_intval(params.get("pid"))
    if pid == 0:
        raise EpayError("商户ID不能为空")
    try:
        return await gateway.gate.admit(DOOR, pid, client, lambda merchant, key: verify(params, key))
    except Refused as refused:
        if refused.reason == Refusal.LOCKED_OUT:
            raise EpayError(too_many("签名校验失败", refused.retry_after)) from None
        raise EpayError(REFUSALS[refused.reason]) from None


async def validate_pay_request(gateway: Gateway, params: dict[str, str], client: str, *, api: bool) -> PayRequest:
    return check_order_fields(gateway, await authenticate(gateway, params, client), params, api=api)


def check_order_fields(gateway: Gateway, merchant: Merchant, params: dict[str, str], *, api: bool) -> PayRequest:
    """The order fields of an authenticated request, in Rainbow's order and with its texts (V2 shares them)."""
    get = params.get
    out_trade_no, notify_url, return_url = get("out_trade_no", ""), get("notify_url", ""), get("return_url", "")
    name, money, pay_type = get("name", ""), get("money", ""), get("type", "")
    clientip = get("clientip", "")

    # PHP's empty(): Rainbow also calls a field of "0" missing.
    if php_empty(out_trade_no):
        raise EpayError("订单号(out_trade_no)不能为空")
    if php_empty(notify_url):
        raise EpayError("通知地址(notify_url)不能为空")
    if not api and php_empty(return_url):
        raise EpayError("回调地址(return_url)不能为空")
    if php_empty(name):
        raise EpayError("商品名称(name)不能为空")
    if php_empty(money):
        raise EpayError("金额(money)不能为空")
    if api and php_empty(pay_type):
        raise EpayError("支付方式(type)不能为空")
    if api and php_empty(clientip):
        raise EpayError("用户IP地址(clientip)不能为空")
    try:
        amount_fen = parse_yuan(money)
    except MoneyError:
        raise EpayError("金额不合法") from None
    settings = gateway.settings
    if amount_fen > (most := _limit_fen(settings.pay_max_money)):
        raise EpayError(f"最大支付金额是{_money_limit_text(most)}元")
    if amount_fen < (least := _limit_fen(settings.pay_min_money)):
        raise EpayError(f"最小支付金额是{_money_limit_text(least)}元")
    if not OUT_TRADE_NO.fullmatch(out_trade_no) or len(out_trade_no) > MAX_OUT_TRADE_NO:
        raise EpayError("订单号(out_trade_no)格式不正确")

    if len(notify_url) > MAX_URL or _unusable_notify_url(notify_url, settings.notify_allow_private):
        raise EpayError("通知地址(notify_url)不合法，请填写公网可以访问的http或https地址")
    if return_url and (len(return_url) > MAX_URL or not return_url.startswith(("http://", "https://"))):
        raise EpayError("回调地址(return_url)不合法，请填写http或https地址")
    if len(name) > MAX_NAME:
        raise EpayError("商品名称(name)过长")
    param = get("param") or None
    if param is not None and len(param) > MAX_PARAM:
        raise EpayError("业务扩展参数(param)过长")
    if len(clientip) > MAX_CLIENTIP:
        raise EpayError("用户IP地址(clientip)不合法")

    device = get("device", "")
    if device not in DEVICES:
        device = "pc"
    order = NewOrder(
        merchant_pid=merchant.pid,
        dialect=DIALECT,
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        money=money,
        name=name,
        notify_url=notify_url,
        return_url=return_url or None,
        param=param,
        sitename=get("sitename") or None,
        clientip=clientip or None,
        device=device,
    )
    chosen_type = None if php_empty(pay_type) else pay_type
    return PayRequest(merchant=merchant, order=order, pay_type=chosen_type, device=device)


# A configured limit in fen, remembered: ``Decimal`` arithmetic on the same two settings for every order.
_limit_fen = lru_cache(maxsize=16)(yuan_to_fen)


@lru_cache(maxsize=256)
def _unusable_notify_url(url: str, allow_private: bool) -> bool:
    """``url_block_reason`` gave a reason, remembered: a merchant sends every order the same notify
    address, and reading it (a URL parse and the address checks) was a tenth of the validation.
    The answer depends on the text alone (no DNS), so it cannot go stale."""
    return url_block_reason(url, allow_private=allow_private) is not None


def already_paid(out_trade_no: str) -> str:
    return f"该订单({out_trade_no})已完成支付，请勿重复发起支付"


def terms_changed(out_trade_no: str) -> str:
    return f"该订单({out_trade_no})支付参数有变化，请更换订单号重新发起支付"
