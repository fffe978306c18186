"""Checking a payFor request, in the order merchants can act on: missing, merchant, key, values.

Every failure carries the dialect's non-positive ``code`` and a Chinese message naming the
parameter at fault, so a merchant reading ``{"code": -3, "msg": ...}`` knows what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from openepay.core.gate import Door, Refusal, Refused
from openepay.core.money import MoneyError, format_yuan, parse_yuan, yuan_to_fen
from openepay.core.orders import NewOrder
from openepay.db.models import Merchant
from openepay.gateway import Gateway
from openepay.notify.targets import url_block_reason
from openepay.protocols.lockout_messages import too_many
from openepay.protocols.params import UnreadableParameter
from openepay.protocols.payfor import DIALECT
from openepay.protocols.payfor.signing import verify_request


class Code:
    MISSING = 0
    MERCHANT = -1
    KEY = -2
    INVALID = -3
    ORDER_USED = -4
    CHANNEL = -5
    BUSY = -9


# Unknown, disabled and not-on-payFor merchants look alike, and are told apart before the key.
DOOR = Door(DIALECT, permissions_first=True)
MERCHANT_UNKNOWN = "商户(uid)不存在或已停用"
BAD_KEY = "签名(key)校验失败"
BUSY = "系统繁忙，请稍后再试"

REQUIRED = ("uid", "price", "type", "notify_url", "return_url", "order_id", "key")
# The seed's codes: 1 WeChat Pay, 2 Alipay (the reverse of PaysApi's istype).
PAY_TYPES = {"1": "wxpay", "2": "alipay"}

# Spaces and control characters: "不要 urlencode" means raw, not broken.
URL_JUNK = re.compile(r"[\x00-\x20\x7f]")
UID = re.compile(r"^[0-9]{1,10}$")
ORDER_ID = re.compile(r"^[a-zA-Z0-9._\-|]+$")
MAX_ORDER_ID = 50
# Free text we store: its label in messages and the seed's string(N) length, in characters.
TEXT_FIELDS = {
    "notify_url": ("通知地址(notify_url)", 255),
    "return_url": ("跳转网址(return_url)", 255),
    "order_uid": ("客户号(order_uid)", 100),
    "order_name": ("商品名称(order_name)", 100),
}


# The seed's other parameters, named as in its messages.
LABELS = {
    "uid": "商户(uid)",
    "price": "金额(price)",
    "type": "支付渠道(type)",
    "order_id": "订单号(order_id)",
    "key": "签名(key)",
    **{name: label for name, (label, _) in TEXT_FIELDS.items()},
}


class PayForError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class PayForRequest:
    order: NewOrder
    pay_type: str
    type_code: int


def _limit_text(fen: int) -> str:
    text = format_yuan(fen)
    return text[:-3] if text.endswith(".00") else text


def check_present(params: dict[str, str]) -> None:
    for name in REQUIRED:
        if params.get(name, "") == "":
            raise PayForError(Code.MISSING, f"缺少参数：{name}")


async def authenticate(gateway: Gateway, params: dict[str, str], client: str) -> Merchant:
    uid = params["uid"]
    if not UID.fullmatch(uid):
        raise PayForError(Code.MERCHANT, MERCHANT_UNKNOWN)
    try:
        return await gateway.gate.admit(DOOR, int(uid), client, lambda merchant, key: verify_request(params, key))
    except Refused as refused:
        if refused.reason == Refusal.LOCKED_OUT:
            raise PayForError(Code.KEY, too_many("签名(key)校验失败", refused.retry_after)) from None
        if refused.reason == Refusal.BAD_SIGNATURE:
            raise PayForError(Code.KEY, BAD_KEY) from None
        raise PayForError(Code.MERCHANT, MERCHANT_UNKNOWN) from None


def _amount(gateway: Gateway, price: str) -> int:
    try:
        amount_fen = parse_yuan(price)
    except MoneyError:
        raise PayForError(Code.INVALID, "金额(price)不合法") from None
    settings = gateway.settings
    least = yuan_to_fen(settings.pay_min_money)
    if amount_fen < least:
        raise PayForError(Code.INVALID, f"金额(price)不能低于{_limit_text(least)}元")
    if amount_fen > yuan_to_fen(settings.pay_max_money):
        raise PayForError(Code.INVALID, f"金额(price)不能高于{_limit_text(yuan_to_fen(settings.pay_max_money))}元")
    return amount_fen


def _check_text(params: dict[str, str]) -> None:
    for name, (label, limit) in TEXT_FIELDS.items():
        value = params.get(name, "")
        if len(value) > limit:
            raise PayForError(Code.INVALID, f"{label}不能超过{limit}个字符")


def _plain_url(url: str) -> bool:
    """An http(s) URL with a host and nothing a browser or HTTP client would have to guess about."""
    if URL_JUNK.search(url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def validate_pay_request(
    gateway: Gateway, params: dict[str, str], client: str, *, clientip: str | None, as_json: bool
) -> PayForRequest:
    """``client`` is who sent the request (the lockout counts it), ``clientip`` the buyer's IP for the channel."""
    check_present(params)
    merchant = await authenticate(gateway, params, client)
    price, type_code, order_id = params["price"], params["type"], params["order_id"]
    notify_url, return_url = params["notify_url"], params["return_url"]

    amount_fen = _amount(gateway, price)
    pay_type = PAY_TYPES.get(type_code)
    if pay_type is None:
        raise PayForError(Code.INVALID, "支付渠道(type)只能是1（微信支付）或2（支付宝）")
    if len(order_id) > MAX_ORDER_ID or not ORDER_ID.fullmatch(order_id):
        raise PayForError(Code.INVALID, "订单号(order_id)格式不正确")
    _check_text(params)
    if not _plain_url(notify_url) or url_block_reason(notify_url, allow_private=gateway.settings.notify_allow_private):
        raise PayForError(Code.INVALID, "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址")
    if not _plain_url(return_url):
        raise PayForError(Code.INVALID, "跳转网址(return_url)不合法，请填写http或https地址")

    order = NewOrder(
        merchant_pid=merchant.pid,
        dialect=DIALECT,
        out_trade_no=order_id,
        amount_fen=amount_fen,
        money=price,
        name=params.get("order_name") or f"订单 {order_id}",
        notify_url=notify_url,
        return_url=return_url,
        param=params.get("order_uid") or None,
        pay_type=pay_type,
        clientip=clientip[:64] if clientip else None,
        # The key is echoed in the notification; both it and the type code make a repeat
        # with other parameters "different terms" (the key covers every sent value). A JSON
        # order's buyer is not sent back ("用 Json 方式发起支付的，不会有主动跳转"), so the
        # mode is a term too.
        attrs={"key": params["key"], "type": type_code, "json": as_json},
    )
    return PayForRequest(order=order, pay_type=pay_type, type_code=int(type_code))


def unreadable(error: UnreadableParameter) -> PayForError:
    """A parameter no database can store: -3, with the dialect's words for a value with characters it refuses."""
    return PayForError(Code.INVALID, f"{LABELS.get(error.name, f'参数({error.name})')}含有非法字符")


def already_paid() -> PayForError:
    return PayForError(Code.ORDER_USED, "该订单(order_id)已支付，请勿重复支付")


def terms_changed() -> PayForError:
    return PayForError(Code.ORDER_USED, "订单号(order_id)已存在且参数不同，请更换订单号")
