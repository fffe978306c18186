"""Value-concatenation MD5 keys: the PaysApi family's rule, which payFor inherited.

"把使用到的所有参数，连 Token 一起，按参数名字母升序排序。把参数值拼接在一起。做 md5-32 位加密，
取字符串小写。" Names only decide the order: the token joins the sort under the name ``token``,
empty values are left out, the values are joined with nothing between them, raw (no URL
encoding) and as UTF-8. Prices are hashed exactly as sent, so ``9.90`` and ``9.9`` differ.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TOKEN_NAME = "token"
# Not signed: the key itself, and ``format``, which picks the answer's shape (see ``verify_request``).
REQUEST_EXCLUDED = frozenset({"key", "format"})


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def value_content(params: Mapping[str, str], token: str) -> str:
    """The concatenated values, token included (a sent ``token`` parameter is replaced by the real one)."""
    values = {name: value for name, value in params.items() if value != ""}
    values[TOKEN_NAME] = token
    return "".join(values[name] for name in sorted(values, key=lambda name: name.encode("utf-8", "replace")))


def value_key(params: Mapping[str, str], token: str) -> str:
    return md5_hex(value_content(params, token))


def request_key(params: Mapping[str, str], token: str, *, include_format: bool = False) -> str:
    """The ``key`` a merchant computes for a payFor request from the parameters it sends."""
    excluded = REQUEST_EXCLUDED - {"format"} if include_format else REQUEST_EXCLUDED
    return value_key({name: value for name, value in params.items() if name not in excluded}, token)


def verify_request(params: Mapping[str, str], token: str) -> bool:
    """Constant-time check of ``params["key"]``; upper-case hex is accepted.

    ``format=json`` only chooses the answer's shape, so it is not signed; a client that put it
    into its key anyway (it is, after all, a sent parameter) is accepted too.
    """
    received = params.get("key", "")
    if not received.isascii():
        return False
    received_bytes = received.lower().encode()
    if hmac.compare_digest(request_key(params, token).encode(), received_bytes):
        return True
    if params.get("format"):
        return hmac.compare_digest(request_key(params, token, include_format=True).encode(), received_bytes)
    return False


def notify_content(order_id: str, price: str) -> str:
    """What a notification's ``sign`` covers, before the token is appended."""
    return order_id + price


def notify_sign(order_id: str, price: str, token: str) -> str:
    """``sign`` of a notification: md5(order_id + price + token), the price as the merchant sent it."""
    return md5_hex(notify_content(order_id, price) + token)
