"""The signature checker: why does the gateway say a merchant's signature is wrong?

An operator (or the merchant) pastes what was sent (a query string, a form body, a whole URL or
JSON), picks the dialect, and sees the parameters as read, the exact string that is signed with
the key masked, our signature next to theirs, and, when they differ, which of the usual client
mistakes explains it. Every rule is the dialect's own ``signing`` module; the mistakes are
tried by changing the input and signing it again with that same code, never by a second copy
of the rules. The key itself is never part of the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

from openepay.protocols import epay, epay_v2, pay_mapi, payfor, vmq
from openepay.protocols.epay import signing as epay_signing
from openepay.protocols.params import UnreadableParameter, parse_query
from openepay.protocols.payfor import signing as payfor_signing
from openepay.protocols.vmq import signing as vmq_signing

MASK = "****"
# The dialects the checker knows, in the order a form lists them, with the rule each one signs by.
DIALECTS = (epay.DIALECT, pay_mapi.DIALECT, epay_v2.DIALECT, payfor.DIALECT, vmq.DIALECT)
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
NUL = "\x00"
_DECIMAL = re.compile(r"[0-9]+\.[0-9]+")


class UnreadableInput(ValueError):
    """Pasted text (or a dialect) the checker cannot work with; ``code`` names why, for the page's words."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Hint:
    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class SignatureCheck:
    dialect: str
    message: str  # which signed message's rule applied: "request", "notification", "create_order", "close_order"
    params: dict[str, str]
    canonical: str  # the string exactly as signed, the key replaced by ****
    expected: str  # our signature with the merchant's key
    received: str  # the signature they sent ("" when none)
    matches: bool
    hints: tuple[Hint, ...]


def check_signature(dialect: str, text: str, key: str) -> SignatureCheck:
    """Check the signature in ``text`` by ``dialect``'s rule with ``key``; ``UnreadableInput`` when it cannot."""
    rule = _RULES.get(dialect)
    if rule is None:
        raise UnreadableInput("unknown_dialect")
    params = parse_pasted(text)
    message, canonical, expected, received, matches, retry = rule(params, key)
    hints: tuple[Hint, ...] = ()
    if not matches:
        hints = _explain(params, key, received, retry)
    return SignatureCheck(dialect, message, params, canonical, expected, received, matches, hints)


def parse_pasted(text: str) -> dict[str, str]:
    """The parameters of a query string, form body, URL (its query) or JSON object, read as PHP reads them."""
    text = text.strip()
    if not text:
        raise UnreadableInput("empty")
    if text.startswith("{"):
        return _json_params(text)
    if "://" in text or text.startswith(("/", "?")):
        text = text.partition("?")[2]
    text = text.partition("#")[0]
    # A form body copied from a log or a browser's developer tools often comes one field a line.
    text = "&".join(line.strip() for line in text.splitlines() if line.strip())
    try:
        params = parse_query(text.encode("utf-8"))
    except UnreadableParameter:
        raise UnreadableInput("unreadable") from None
    if not params:
        raise UnreadableInput("no_params")
    return params


def _json_params(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except ValueError:
        raise UnreadableInput("bad_json") from None
    if not isinstance(data, dict) or not data:
        raise UnreadableInput("bad_json")
    params = {}
    for name, value in data.items():
        if isinstance(value, bool):  # what PHP's string conversion makes of them
            params[name] = "1" if value else ""
        elif isinstance(value, str | int | float):
            params[name] = str(value)
    return params


# --- the rules: (message, canonical with the key masked, expected, received, matches, re-sign) ---------

Resign = Callable[[Mapping[str, str], str], str]
Checked = tuple[str, str, str, str, bool, Resign]


def _epay_family(params: dict[str, str], key: str) -> Checked:
    """Epay V1, ``/pay/`` and epay V2's MD5: Rainbow's rule, by ``epay.signing``."""
    received = params.get("sign", "")
    content = epay_signing.signed_content(params, key)
    matches = content is not None
    canonical = (content if content is not None else epay_signing.sign_content(params)) + MASK
    message = "request" if "trade_status" not in params else "notification"
    return message, canonical, epay_signing.make_sign(params, key), received, matches, epay_signing.make_sign


def _vmq_notification(p: Mapping[str, str], key: str) -> str:
    get = p.get
    return vmq_signing.notify_sign(
        get("payId", ""), get("param", ""), get("type", ""), get("price", ""), get("reallyPrice", ""), key
    )


def _vmq_create(p: Mapping[str, str], key: str) -> str:
    return vmq_signing.create_sign(p.get("payId", ""), p.get("param", ""), p.get("type", ""), p.get("price", ""), key)


def _vmq_close(p: Mapping[str, str], key: str) -> str:
    return vmq_signing.close_sign(p.get("orderId", ""), key)


def _vmq(params: dict[str, str], key: str) -> Checked:
    """V免签: which message it is follows from its fields (a notification has ``reallyPrice``)."""
    get = params.get
    if "reallyPrice" in params:
        message, resign = "notification", _vmq_notification
        content = vmq_signing.notify_content(
            get("payId", ""), get("param", ""), get("type", ""), get("price", ""), get("reallyPrice", "")
        )
    elif "payId" in params:
        message, resign = "create_order", _vmq_create
        content = vmq_signing.create_content(get("payId", ""), get("param", ""), get("type", ""), get("price", ""))
    else:
        message, resign = "close_order", _vmq_close
        content = vmq_signing.close_content(get("orderId", ""))
    expected, received = resign(params, key), get("sign", "")
    return message, content + MASK, expected, received, vmq_signing.matches(expected, received), resign


def _payfor(params: dict[str, str], key: str) -> Checked:
    if "sign" in params:  # a notification: md5(order_id + price + token)
        order_id, price = params.get("order_id", ""), params.get("price", "")
        expected = payfor_signing.notify_sign(order_id, price, key)
        received = params["sign"]
        matches = received.isascii() and hmac.compare_digest(expected.encode(), received.lower().encode())
        return (
            "notification",
            payfor_signing.notify_content(order_id, price) + MASK,
            expected,
            received,
            matches,
            lambda p, k: payfor_signing.notify_sign(p.get("order_id", ""), p.get("price", ""), k),
        )
    signed = {name: value for name, value in params.items() if name not in payfor_signing.REQUEST_EXCLUDED}
    received = params.get("key", "")
    return (
        "request",
        payfor_signing.value_content(signed, MASK),
        payfor_signing.request_key(params, key),
        received,
        payfor_signing.verify_request(params, key),
        payfor_signing.request_key,
    )


_RULES: dict[str, Callable[[dict[str, str], str], Checked]] = {
    epay.DIALECT: _epay_family,
    pay_mapi.DIALECT: _epay_family,
    epay_v2.DIALECT: _epay_family,
    payfor.DIALECT: _payfor,
    vmq.DIALECT: _vmq,
}


# --- why it does not match ----------------------------------------------------------------------------

_HINTS = {
    "no_sign": (
        "没有找到对方发送的签名字段（sign，payFor 请求为 key）。",
        "No signature was found in the text (sign; key for payFor requests).",
    ),
    "rsa": (
        "这是 RSA 签名（sign_type=RSA）：检查器只核对 MD5；RSA 签名须用商户私钥生成，网关用商户公钥验证。",
        "This is an RSA signature (sign_type=RSA): the checker checks MD5 only; RSA signatures are made with "
        "the merchant's private key and checked with the public key on file.",
    ),
    "not_md5": (
        "对方的签名不是 32 位十六进制 MD5 值。",
        "Their signature is not a 32-digit hexadecimal MD5 digest.",
    ),
    "mixed_case": (
        "签名大小写混用：MD5 值须全部小写（或全部大写）。",
        "The signature mixes upper and lower case: an MD5 digest is all lower case (or all upper case).",
    ),
    "empty_included": (
        "对方把空值参数也加入了签名：空值参数不参与签名。",
        "They signed the empty parameters too: empty values take no part in the signature.",
    ),
    "sign_type_included": (
        "对方把 sign_type 加入了签名：sign 和 sign_type 都不参与签名。",
        "They signed sign_type too: neither sign nor sign_type takes part.",
    ),
    "key_joined_with_ampersand": (
        "对方以 “&key=密钥” 的方式拼接密钥：本协议直接把密钥接在字符串末尾，不加 &key=。",
        'They appended the key as "&key=<key>": this protocol appends the key directly, without "&key=".',
    ),
    "decoded_twice": (
        "参数被 URL 解码了两次：签名应针对解码一次后的原始值。",
        "The values were URL-decoded twice: sign the raw values, decoded exactly once.",
    ),
    "signed_encoded": (
        "对方对 URL 编码后的值签名：签名应针对未编码的原始值。",
        "They signed the URL-encoded values: sign the raw values, not their encoded form.",
    ),
    "price_spelling": (
        "金额写法不同：签名按收到的原样字符串计算，“9.9” 和 “9.90” 的签名不同。",
        'The amount is spelled differently: it is signed exactly as sent, so "9.9" and "9.90" sign differently.',
    ),
    "unexplained": (
        "常见错误都不能解释这个差异：请确认使用的是该商户当前的密钥（复制时是否带了空格或换行、是否已更换密钥），"
        "以及粘贴的参数与签名时完全一致。",
        "None of the usual mistakes explains it: check that the merchant's current key is used (copied with a "
        "space or line break? rotated since?) and that the pasted values are exactly those that were signed.",
    ),
}


def _hint(code: str) -> Hint:
    zh, en = _HINTS[code]
    return Hint(code, zh, en)


def _same(digest: str, received: str) -> bool:
    return received.isascii() and hmac.compare_digest(digest.encode(), received.lower().encode())


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _explain(params: dict[str, str], key: str, received: str, resign: Resign) -> tuple[Hint, ...]:
    if received == "":
        return (_hint("no_sign"),)
    if params.get("sign_type", "").upper() == "RSA":
        return (_hint("rsa"),)
    if not _HEX32.fullmatch(received):
        return (_hint("not_md5"),)
    if received not in (received.lower(), received.upper()):
        return (_hint("mixed_case"),)
    found = [code for code, variant in _variants(params, key, resign) if _same(variant, received)]
    return tuple(_hint(code) for code in found[:1]) or (_hint("unexplained"),)


def _variants(params: dict[str, str], key: str, resign: Resign) -> list[tuple[str, str]]:
    """What a client that made one of the usual mistakes would have sent, signed by the dialect's own code."""
    out = [
        ("decoded_twice", resign({name: unquote_plus(value) for name, value in params.items()}, key)),
        ("signed_encoded", resign({name: quote_plus(value) for name, value in params.items()}, key)),
    ]
    price = params.get("price") or params.get("money")
    if price and _DECIMAL.fullmatch(price):
        for spelling in {price.rstrip("0").rstrip("."), f"{float(price):.2f}"} - {price}:
            changed = {**params, **{name: spelling for name in ("price", "money") if name in params}}
            out.append(("price_spelling", resign(changed, key)))
    if resign is epay_signing.make_sign:
        out.extend(_epay_variants(params, key))
    return out


def _epay_variants(params: dict[str, str], key: str) -> list[tuple[str, str]]:
    """Rainbow's rule with one exclusion forgotten, or the key joined the WeChat way.

    The content is still made by ``epay.signing.sign_content``: a forgotten pair is smuggled past
    its exclusions under a stand-in (a NUL, which no parsed value can hold) and put back after.
    """
    out = []
    blanks = {name: NUL for name, value in params.items() if value == ""}
    if blanks:
        content = epay_signing.sign_content({**params, **blanks}).replace("=" + NUL, "=")
        out.append(("empty_included", _md5(content + key)))
    if "sign_type" in params:
        renamed = {name: value for name, value in params.items() if name != "sign_type"}
        renamed["sign_type" + NUL] = params["sign_type"]
        content = epay_signing.sign_content(renamed).replace("sign_type" + NUL + "=", "sign_type=")
        out.append(("sign_type_included", _md5(content + key)))
    out.append(("key_joined_with_ampersand", _md5(epay_signing.sign_content(params) + "&key=" + key)))
    return out
