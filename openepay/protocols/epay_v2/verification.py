"""Who is asking, and is it really them: Rainbow's ``ApiHelper::verify`` and ``api_verify``.

The checks run in Rainbow's order with Rainbow's texts, because SDKs show them to the
merchant's developers: the merchant (-1), then the signature rules (-3): RSA-only merchants,
the timestamp and its 300 second window, a signature at all, and finally the signature itself,
RSA (``sign_type=RSA``, the merchant's public key) or MD5 (anything else, the V1 rule).
"""

from __future__ import annotations

import re
import time

from starlette.requests import Request

from openepay.core.merchants import MerchantNotFound
from openepay.core.states import MerchantStatus
from openepay.db.models import Merchant
from openepay.gateway import Gateway
from openepay.protocols.epay.signing import signed_content as md5_signed_content
from openepay.protocols.epay.validation import unreadable
from openepay.protocols.epay_v2.signing import KeyFormatError, rsa_verify, sign_content, stored_public_key
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


async def find_merchant(gateway: Gateway, params: dict[str, str]) -> Merchant:
    pid = php_intval(params.get("pid"))
    if pid == 0:
        raise V2Error("商户ID不能为空")
    try:
        return await gateway.merchants.get(pid)
    except MerchantNotFound:
        raise V2Error("商户不存在！") from None


async def authenticate(gateway: Gateway, params: dict[str, str]) -> tuple[Merchant, str]:
    """``ApiHelper::verify``: the merchant must exist and be active, then ``check_signature``.

    Returns the merchant and the content its signature covers.
    """
    merchant = await find_merchant(gateway, params)
    if merchant.status != MerchantStatus.ACTIVE:
        raise V2Error("商户已被封禁")
    return merchant, check_signature(gateway, merchant, params)


def timestamp_is_fresh(value: str, now: float | None = None) -> bool:
    if len(value) > 64 or not _NUMERIC.match(value):
        return False
    return abs((time.time() if now is None else now) - float(value)) <= TIMESTAMP_WINDOW


def check_signature(gateway: Gateway, merchant: Merchant, params: dict[str, str]) -> str:
    """``api_verify``; every refusal is code -3.

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
    if uses_rsa:
        try:
            public_key = stored_public_key(merchant.rsa_public_key or "")
        except KeyFormatError:
            raise V2Error("签名校验失败，商户公钥错误", SIGNATURE_ERROR) from None
        if not rsa_verify(public_key, params, params["sign"]):
            raise V2Error("RSA签名校验失败", SIGNATURE_ERROR)
        return sign_content(params)
    signed = md5_signed_content(params, gateway.merchants.key_of(merchant))
    if signed is None:
        raise V2Error("MD5签名校验失败", SIGNATURE_ERROR)
    return signed
