"""Validating ``/pay/mapi.php`` and ``/pay/submit.php`` requests, with the seed's codes and texts.

Merchants of this dialect branch on ``code`` and show ``msg`` to buyers as it is, so the
messages are the seed's, word for word; ``detail`` (English) names the field when that helps
the merchant's developer. The order of the checks is part of the protocol: a request missing
fields gets 700 before anyone looks at the merchant, an unsigned one never learns more than
800/701, and only a signed request hears what is wrong with its values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum

from openepay.core.gate import Door, Refusal, Refused
from openepay.core.money import MoneyError, format_yuan, parse_yuan, yuan_to_fen
from openepay.core.orders import NewOrder
from openepay.db.models import Merchant
from openepay.gateway import Gateway
from openepay.notify.targets import url_block_reason
from openepay.protocols.epay.signing import verify
from openepay.protocols.epay.validation import MAX_NAME, MAX_OUT_TRADE_NO, MAX_URL
from openepay.protocols.lockout_messages import too_many_en
from openepay.protocols.params import UnreadableParameter
from openepay.protocols.pay_mapi import DIALECT


class Code(IntEnum):
    SUCCESS = 200
    MISSING_PARAMETERS = 700
    BAD_SIGNATURE = 701
    CHANNEL_MAINTENANCE = 702
    NO_CODE_FOR_AMOUNT = 703
    AMOUNT_TOO_SMALL = 704
    DUPLICATE_ORDER = 705
    INVALID_MERCHANT = 800
    NO_CHANNEL = 901


MESSAGES = {
    Code.SUCCESS: "success",
    Code.MISSING_PARAMETERS: "Missing parameters",
    Code.BAD_SIGNATURE: "Signature verification failed",
    Code.CHANNEL_MAINTENANCE: "Channel is under maintenance, please try again later",
    Code.NO_CODE_FOR_AMOUNT: (
        "No payment code matched for the corresponding amount, please change the amount and try again"
    ),
    Code.AMOUNT_TOO_SMALL: "Amount cannot be less than 0.01 yuan",
    Code.DUPLICATE_ORDER: "Duplicate order number",
    Code.INVALID_MERCHANT: "Invalid merchant or secret key, please check",
    Code.NO_CHANNEL: "No available channel, please check",
}

REQUIRED = ("pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money", "sign")
PAY_TYPES = ("alipay", "qqpay", "wxpay")
OUT_TRADE_NO = re.compile(r"^[a-zA-Z0-9._\-|]+$")
# A number written plainly, sign allowed: what 704 is about ("0", "0.00", "0.001", "-1").
DECIMAL = re.compile(r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)$")
MIN_AMOUNT = Decimal("0.01")
MAX_PID = 2**31 - 1
MAX_EXT = 100
MAX_SITENAME = 1024


DOOR = Door(DIALECT, permissions_first=True)


class PayMapiError(Exception):
    def __init__(self, code: Code, detail: str | None = None) -> None:
        super().__init__(f"{int(code)} {detail or MESSAGES[code]}")
        self.code = code
        self.msg = MESSAGES[code]
        self.detail = detail

    def answer(self) -> dict[str, object]:
        answer: dict[str, object] = {"code": int(self.code), "msg": self.msg}
        if self.detail:
            answer["detail"] = self.detail
        return answer


def unreadable(error: UnreadableParameter) -> PayMapiError:
    """A parameter no database can store: 700, the seed's code for a request it cannot take as sent."""
    return PayMapiError(Code.MISSING_PARAMETERS, f"{error.name} must not contain NUL bytes")


@dataclass(frozen=True)
class PayMapiRequest:
    order: NewOrder
    pay_type: str


def _missing(params: dict[str, str]) -> None:
    for field in REQUIRED:
        if params.get(field, "") == "":
            raise PayMapiError(Code.MISSING_PARAMETERS, f"{field} is required")


async def _authenticate(gateway: Gateway, params: dict[str, str], client: str) -> Merchant:
    """The merchant behind ``pid``, if it signed; unknown, disabled and not-on-``/pay/`` merchants look alike (800)."""
    text = params["pid"]
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_PID):
        raise PayMapiError(Code.INVALID_MERCHANT, "pid must be a positive integer")
    try:
        return await gateway.gate.admit(DOOR, int(text), client, lambda merchant, key: _signature_ok(params, key))
    except Refused as refused:
        if refused.reason == Refusal.LOCKED_OUT:
            raise PayMapiError(Code.BAD_SIGNATURE, too_many_en(refused.retry_after)) from None
        if refused.reason == Refusal.BAD_SIGNATURE:
            raise PayMapiError(Code.BAD_SIGNATURE) from None
        raise PayMapiError(Code.INVALID_MERCHANT) from None


def _signature_ok(params: dict[str, str], key: str) -> bool:
    if (sign_type := params.get("sign_type")) and sign_type.upper() != "MD5":
        raise PayMapiError(Code.BAD_SIGNATURE, "sign_type must be MD5")
    return verify(params, key)


def _minimum(gateway: Gateway) -> Decimal:
    return max(MIN_AMOUNT, gateway.settings.pay_min_money)


def _check_small_amount(gateway: Gateway, money: str) -> None:
    """704 for any plainly written number below the minimum, including ones finer than a fen."""
    if not DECIMAL.fullmatch(money):
        return
    try:
        value = Decimal(money)
    except InvalidOperation:
        return
    minimum = _minimum(gateway)
    if value < MIN_AMOUNT:
        raise PayMapiError(Code.AMOUNT_TOO_SMALL)
    if value < minimum:
        raise PayMapiError(Code.AMOUNT_TOO_SMALL, f"money must be at least {format_yuan(yuan_to_fen(minimum))}")


def _amount_fen(gateway: Gateway, money: str) -> int:
    try:
        amount_fen = parse_yuan(money)
    except MoneyError:
        raise PayMapiError(
            Code.MISSING_PARAMETERS, "money must be a number of yuan with at most two decimals, such as 1.00"
        ) from None
    maximum = gateway.settings.pay_max_money
    if amount_fen > yuan_to_fen(maximum):
        raise PayMapiError(Code.MISSING_PARAMETERS, f"money must be at most {format_yuan(yuan_to_fen(maximum))}")
    return amount_fen


def _check_url(gateway: Gateway, field: str, url: str) -> None:
    if len(url) > MAX_URL:
        reason: str | None = f"longer than {MAX_URL} characters"
    else:
        reason = url_block_reason(url, allow_private=gateway.settings.notify_allow_private)
    if reason:
        raise PayMapiError(Code.MISSING_PARAMETERS, f"{field} must be a reachable http or https URL ({reason})")


def _check_values(gateway: Gateway, params: dict[str, str]) -> None:
    out_trade_no = params["out_trade_no"]
    if len(out_trade_no) > MAX_OUT_TRADE_NO or not OUT_TRADE_NO.fullmatch(out_trade_no):
        raise PayMapiError(
            Code.MISSING_PARAMETERS,
            f"out_trade_no must be 1 to {MAX_OUT_TRADE_NO} letters, digits or the characters . _ - |",
        )
    _check_url(gateway, "notify_url", params["notify_url"])
    _check_url(gateway, "return_url", params["return_url"])
    if len(params["name"]) > MAX_NAME:
        raise PayMapiError(Code.MISSING_PARAMETERS, f"name must be at most {MAX_NAME} characters")
    if len(params.get("ext", "")) > MAX_EXT:
        raise PayMapiError(Code.MISSING_PARAMETERS, f"ext must be at most {MAX_EXT} characters")
    if len(params.get("sitename", "")) > MAX_SITENAME:
        raise PayMapiError(Code.MISSING_PARAMETERS, f"sitename must be at most {MAX_SITENAME} characters")


async def validate_pay_request(gateway: Gateway, params: dict[str, str], client: str, *, device: str) -> PayMapiRequest:
    """The order to place, or the ``PayMapiError`` the merchant must hear, in the dialect's order of checks."""
    _missing(params)
    merchant = await _authenticate(gateway, params, client)
    money = params["money"]
    _check_small_amount(gateway, money)
    amount_fen = _amount_fen(gateway, money)
    _check_values(gateway, params)
    pay_type = params["type"]
    if pay_type not in PAY_TYPES:
        raise PayMapiError(Code.NO_CHANNEL, "type must be one of alipay, qqpay, wxpay")
    order = NewOrder(
        merchant_pid=merchant.pid,
        dialect=DIALECT,
        out_trade_no=params["out_trade_no"],
        amount_fen=amount_fen,
        money=money,
        name=params["name"],
        notify_url=params["notify_url"],
        pay_type=pay_type,
        return_url=params["return_url"],
        param=params.get("ext") or None,
        sitename=params.get("sitename") or None,
        device=device,
    )
    return PayMapiRequest(order=order, pay_type=pay_type)
