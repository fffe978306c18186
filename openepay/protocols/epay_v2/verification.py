"""Who is asking, and is it really them: Rainbow's ``ApiHelper::verify`` and ``api_verify``.

The checks run in Rainbow's order with Rainbow's texts, because SDKs show them to the
merchant's developers: the merchant (-1), then the signature rules (-3): RSA-only merchants,
the timestamp and its 300 second window, a signature at all, and finally the signature itself,
RSA (``sign_type=RSA``, the merchant's public key) or MD5 (anything else, the V1 rule). The
ban (and a merchant not using V2) comes before the signature rules or after them, by endpoint.
"""

from __future__ import annotations

import re
import time

from starlette.requests import Request

from openepay.core.gate import Door, Refusal, Refused
from openepay.db.models import Merchant
from openepay.gateway import Gateway
from openepay.protocols.epay.signing import signed_content as md5_signed_content
from openepay.protocols.epay.validation import unreadable
from openepay.protocols.epay_v2 import DIALECT
from openepay.protocols.epay_v2.signing import KeyFormatError, rsa_verify, sign_content, stored_public_key
from openepay.protocols.lockout_messages import too_many
from openepay.protocols.params import UnreadableParameter, form_params, php_empty, php_intval

TIMESTAMP_WINDOW = 300
SIGNATURE_ERROR = -3
# A PHP numeric string, which is what Rainbow's ``abs(time() - $timestamp)`` can compute with.
_NUMERIC = re.compile(r"^[ \t\n\r\v\f]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\r\v\f]*$")


class V2Error(Exception):
    """A refusal, answered as ``{"code": code, "msg": msg}`` (or the HTML page of ``pay/submit``)."""

    def __init__(self, msg: str, code: int = -1) -> None:
        super().__init__(msg)
        self.msg = msg
        self.code = code


async def body_params(request: Request) -> dict[str, str]:
    """The form body V2 reads its parameters from, or the ``V2Error`` (V1's texts) for an unreadable one."""
    try:
        return await form_params(request)
    except UnreadableParameter as error:
        raise V2Error(unreadable(error).msg) from None


# ``ApiHelper::verify`` (the merchant API) turns a banned merchant away before the signature
# rules, ``Pay::submit`` and ``Pay::create`` only after them, each with its own words.
API_DOOR = Door(DIALECT, permissions_first=True)
API_BANNED = "商户已被封禁"
PAY_DOOR = Door(DIALECT, permissions_first=False)
PAY_BANNED = "商户已被封禁，无法支付！"


async def authenticate(
    gateway: Gateway, params: dict[str, str], client: str, door: Door, banned: str
) -> tuple[Merchant, str]:
    """The merchant, let in through ``door`` (it exists, is active, uses V2 and signed), and the
    content its signature covers: the request's identity however it was spelled."""
    pid = php_intval(params.get("pid"))
    if pid == 0:
        raise V2Error("商户ID不能为空")
    covered: list[str] = []

    def verify(merchant: Merchant, key: str) -> bool:
        content = signed_content(merchant, key, params)
        if content is not None:
            covered.append(content)
        return content is not None

    try:
        merchant = await gateway.gate.admit(door, pid, client, verify)
    except Refused as refused:
        raise _refusal(refused, params, banned) from None
    return merchant, covered[0]


def _refusal(refused: Refused, params: dict[str, str], banned: str) -> V2Error:
    match refused.reason:
        case Refusal.LOCKED_OUT:
            return V2Error(too_many("签名校验失败", refused.retry_after), SIGNATURE_ERROR)
        case Refusal.NO_SUCH_MERCHANT:
            return V2Error("商户不存在！")
        case Refusal.DISABLED:
            return V2Error(banned)
        case Refusal.DIALECT_NOT_ENABLED:
            return V2Error("商户未开通易支付V2接口")
        case Refusal.BAD_SIGNATURE:
            kind = "RSA" if params.get("sign_type") == "RSA" else "MD5"
            return V2Error(f"{kind}签名校验失败", SIGNATURE_ERROR)


def timestamp_is_fresh(value: str, now: float | None = None) -> bool:
    if len(value) > 64 or not _NUMERIC.match(value):
        return False
    return abs((time.time() if now is None else now) - float(value)) <= TIMESTAMP_WINDOW


def signed_content(merchant: Merchant, key: str, params: dict[str, str]) -> str | None:
    """``api_verify``: a request its rules refuse raises (-3); a wrong signature is None.

    Returns the content the signature covers: the request's identity, however it was spelled.
    """
    uses_rsa = params.get("sign_type") == "RSA"
    if merchant.rsa_only and not uses_rsa:
        raise V2Error("该商户只能使用RSA签名类型", SIGNATURE_ERROR)
    timestamp = params.get("timestamp")
    if timestamp is None or php_empty(timestamp):
        raise V2Error("时间戳(timestamp)字段不能为空", SIGNATURE_ERROR)
    if not timestamp_is_fresh(timestamp):
        raise V2Error("时间戳字段不正确，请检查服务器时间", SIGNATURE_ERROR)
    if "sign" not in params:
        raise V2Error("缺少签名参数", SIGNATURE_ERROR)
    if not uses_rsa:
        return md5_signed_content(params, key)
    try:
        public_key = stored_public_key(merchant.rsa_public_key or "")
    except KeyFormatError:
        raise V2Error("签名校验失败，商户公钥错误", SIGNATURE_ERROR) from None
    return sign_content(params) if rsa_verify(public_key, params, params["sign"]) else None
