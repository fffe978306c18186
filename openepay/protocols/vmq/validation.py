"""Checking V免签 requests: which merchant, what is missing, the signature, then the values.

The order of the createOrder checks is V免签's own (payId, type, price, sign present, then the
signature), followed by what V免签 never checked (URLs, lengths, limits). Messages are V免签's
texts where it has one, so plugins and buyers see what they are used to; every answer is
``{"code": -1, "msg": ..., "data": null}`` like V免签's ``getReturn``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from openepay.core.gate import Door, Refusal, Refused, Verifier
from openepay.core.money import MoneyError, format_yuan, parse_yuan, yuan_to_fen
from openepay.core.orders import NewOrder
from openepay.db.models import Merchant
from openepay.gateway import Gateway
from openepay.notify.targets import url_block_reason
from openepay.protocols.epay.validation import MAX_URL
from openepay.protocols.lockout_messages import too_many
from openepay.protocols.params import UnreadableParameter
from openepay.protocols.vmq import DIALECT
from openepay.protocols.vmq.signing import close_sign, create_sign, matches

FAILURE = -1
SUCCESS = 1
SUCCESS_MSG = "成功"

# V免签's type codes (1 WeChat Pay, 2 Alipay) and our pay types.
PAY_TYPES = {"1": "wxpay", "2": "alipay"}

NO_DEFAULT_MERCHANT = "本网关未设置V免签默认商户，请把网关地址设为 https://网关域名/vmq/商户ID/"
UNKNOWN_MERCHANT = "商户不存在或已停用"
MISSING_PAY_ID = "请传入商户订单号"
MISSING_TYPE = "请传入支付方式=>1|微信 2|支付宝"
BAD_TYPE = "支付方式错误=>1|微信 2|支付宝"
MISSING_PRICE = "请传入订单金额"
PRICE_NOT_POSITIVE = "订单金额必须大于0"
BAD_PRICE = "订单金额格式错误，须为最多两位小数的元金额，如 9.90"
MISSING_SIGN = "请传入签名"
BAD_CREATE_SIGN = "签名错误"
MISSING_NOTIFY_URL = "请传入异步通知地址(notifyUrl)"
BAD_NOTIFY_URL = "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址"
BAD_RETURN_URL = "同步跳转地址(returnUrl)不合法，请填写http或https地址"
DUPLICATE_PAY_ID = "商户订单号已存在"
BAD_CLOSE_SIGN = "签名校验不通过"
NO_SUCH_ORDER = "云端订单编号不存在"
NOT_PAID = "订单未支付"
EXPIRED = "订单已过期"
REFUNDED = "订单已退款"
NOT_CLOSABLE = "订单状态不允许关闭"
BUSY = "系统繁忙，请稍后再试"
# The parameters, named as the texts above name them.
LABELS = {
    "payId": "商户订单号(payId)",
    "orderId": "云端订单编号(orderId)",
    "param": "附加参数(param)",
    "type": "支付方式(type)",
    "price": "订单金额(price)",
    "sign": "签名(sign)",
    "notifyUrl": "异步通知地址(notifyUrl)",
    "returnUrl": "同步跳转地址(returnUrl)",
}

# All patterns are used with ``fullmatch``: ``$`` alone would let a trailing newline through.
PAY_ID = re.compile(r"[a-zA-Z0-9._\-|]+")
MAX_PAY_ID = 64
# V免签 keeps ``param`` in a varchar(255).
MAX_PARAM = 255
# A number written plainly, sign allowed: what "must be greater than 0" is about ("0", "-1", "0.00").
DECIMAL = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)")
# Spaces and control characters: a URL is sent raw to the buyer's browser and to our HTTP client.
URL_JUNK = re.compile(r"[\x00-\x20\x7f]")
PID = re.compile(r"[0-9]{1,10}")
MAX_PID = 2**31 - 1


# Unknown, disabled and not-on-V免签 merchants look alike, and are turned away before the signature.
DOOR = Door(DIALECT, permissions_first=True)


class VmqError(Exception):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg

    def answer(self) -> dict[str, object]:
        return {"code": FAILURE, "msg": self.msg, "data": None}


def unreadable(error: UnreadableParameter) -> VmqError:
    """A parameter no database can store."""
    return VmqError(f"{LABELS.get(error.name, f'参数({error.name})')}含有非法字符")


async def admit(
    gateway: Gateway, path_pid: str | None, client: str, verify: Verifier | None, bad_signature: str = BAD_CREATE_SIGN
) -> Merchant:
    """The merchant of the path ``/vmq/{pid}/...`` (on the root paths the configured default one), let in by the gate.

    Every endpoint needs the merchant active and using V免签; ``verify`` checks the signature of
    those that are signed, and a wrong one is answered ``bad_signature``.
    """
    if path_pid is None:
        if gateway.settings.vmq_default_pid is None:
            raise VmqError(NO_DEFAULT_MERCHANT)
        number = gateway.settings.vmq_default_pid
    elif PID.fullmatch(path_pid) and 0 < int(path_pid) <= MAX_PID:
        number = int(path_pid)
    else:
        raise VmqError(UNKNOWN_MERCHANT)
    try:
        return await gateway.gate.admit(DOOR, number, client, verify)
    except Refused as refused:
        if refused.reason == Refusal.LOCKED_OUT:
            raise VmqError(too_many("签名错误", refused.retry_after)) from None
        if refused.reason == Refusal.BAD_SIGNATURE:
            raise VmqError(bad_signature) from None
        raise VmqError(UNKNOWN_MERCHANT) from None


def _check_present(params: dict[str, str]) -> None:
    """V免签's own checks before the signature; none of them tells an unsigned caller anything."""
    if params.get("payId", "") == "":
        raise VmqError(MISSING_PAY_ID)
    type_code = params.get("type", "")
    if type_code == "":
        raise VmqError(MISSING_TYPE)
    if type_code not in PAY_TYPES:
        raise VmqError(BAD_TYPE)
    price = params.get("price", "")
    if price == "":
        raise VmqError(MISSING_PRICE)
    if DECIMAL.fullmatch(price) and Decimal(price) <= 0:
        raise VmqError(PRICE_NOT_POSITIVE)
    if params.get("sign", "") == "":
        raise VmqError(MISSING_SIGN)


def create_signature_ok(params: dict[str, str], key: str) -> bool:
    """V免签's presence checks (each raising its message), then ``md5(payId + param + type + price + key)``."""
    _check_present(params)
    expected = create_sign(params["payId"], params.get("param", ""), params["type"], params["price"], key)
    return matches(expected, params["sign"])


def close_signature_ok(params: dict[str, str], key: str) -> bool:
    """``sign = md5(orderId + key)``."""
    return matches(close_sign(params.get("orderId", ""), key), params.get("sign", ""))


def _limit_text(fen: int) -> str:
    text = format_yuan(fen)
    return text[:-3] if text.endswith(".00") else text


def _amount_fen(gateway: Gateway, price: str) -> int:
    try:
        amount_fen = parse_yuan(price)
    except MoneyError:
        raise VmqError(BAD_PRICE) from None
    settings = gateway.settings
    least = yuan_to_fen(settings.pay_min_money)
    if amount_fen < least:
        raise VmqError(f"订单金额不能低于{_limit_text(least)}元")
    if amount_fen > yuan_to_fen(settings.pay_max_money):
        raise VmqError(f"订单金额不能高于{_limit_text(yuan_to_fen(settings.pay_max_money))}元")
    return amount_fen


def _check_url(gateway: Gateway, url: str, *, notify: bool) -> None:
    # Return URLs are the buyer's browser's business: any public or private http(s) address will do.
    allow_private = gateway.settings.notify_allow_private or not notify
    if len(url) > MAX_URL or URL_JUNK.search(url) or url_block_reason(url, allow_private=allow_private):
        raise VmqError(BAD_NOTIFY_URL if notify else BAD_RETURN_URL)


def _check_values(gateway: Gateway, params: dict[str, str]) -> None:
    pay_id = params["payId"]
    if len(pay_id) > MAX_PAY_ID or not PAY_ID.fullmatch(pay_id):
        raise VmqError(f"商户订单号(payId)格式不正确，须为1到{MAX_PAY_ID}个字母、数字或 . _ - | 字符")
    param = params.get("param", "")
    if len(param) > MAX_PARAM:
        raise VmqError(f"附加参数(param)不能超过{MAX_PARAM}个字符")
    notify_url = params.get("notifyUrl", "")
    if notify_url == "":
        raise VmqError(MISSING_NOTIFY_URL)
    _check_url(gateway, notify_url, notify=True)
    if return_url := params.get("returnUrl"):
        _check_url(gateway, return_url, notify=False)


def validate_create(
    gateway: Gateway, merchant: Merchant, params: dict[str, str], *, device: str, clientip: str | None
) -> NewOrder:
    """The order a createOrder of an admitted merchant asks for, or the ``VmqError`` to answer."""
    _check_values(gateway, params)
    price = params["price"]
    amount_fen = _amount_fen(gateway, price)
    type_code = params["type"]
    pay_id = params["payId"]
    return NewOrder(
        merchant_pid=merchant.pid,
        dialect=DIALECT,
        out_trade_no=pay_id,
        amount_fen=amount_fen,
        money=price,
        name=f"订单 {pay_id}",
        notify_url=params["notifyUrl"],
        return_url=params.get("returnUrl") or None,
        # Kept even when empty: the notification always carries ``param``, as V免签's does.
        param=params.get("param", ""),
        pay_type=PAY_TYPES[type_code],
        clientip=clientip[:64] if clientip else None,
        device=device,
        attrs={"type": type_code},
    )
