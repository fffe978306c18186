"""V免签's signatures: MD5 over field values concatenated with nothing between them, then the key.

createOrder ``md5(payId + param + type + price + key)``, closeOrder ``md5(orderId + key)``,
notification and return ``md5(payId + param + type + price + reallyPrice + key)``. Values are
hashed exactly as received (``9.9`` and ``9.90`` sign differently), raw and as UTF-8; a missing
``param`` is the empty string. Lowercase hex out, either case accepted in.
"""

from __future__ import annotations

import hashlib
import hmac


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def create_content(pay_id: str, param: str, type_code: str, price: str) -> str:
    """What createOrder's sign covers, before the key is appended."""
    return pay_id + param + type_code + price


def close_content(order_id: str) -> str:
    return order_id


def notify_content(pay_id: str, param: str, type_code: str, price: str, really_price: str) -> str:
    """What a notification's (and the return's) sign covers, before the key is appended."""
    return pay_id + param + type_code + price + really_price


def create_sign(pay_id: str, param: str, type_code: str, price: str, key: str) -> str:
    return md5_hex(create_content(pay_id, param, type_code, price) + key)


def close_sign(order_id: str, key: str) -> str:
    return md5_hex(close_content(order_id) + key)


def notify_sign(pay_id: str, param: str, type_code: str, price: str, really_price: str, key: str) -> str:
    return md5_hex(notify_content(pay_id, param, type_code, price, really_price) + key)


def matches(expected: str, received: str) -> bool:
    """Constant-time comparison of hex digests, either case."""
    if not received.isascii():
        return False
    return hmac.compare_digest(expected.encode(), received.lower().encode())
