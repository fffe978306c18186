"""The signatures phones put on what they report.

V免签's monitor app signs with MD5 over plain concatenations of the request's strings and the
device key: ``md5(t + key)`` for a heartbeat, ``md5(type + price + t + key)`` for a payment.
They are computed over the strings exactly as received, never over re-formatted numbers: the
app sends ``10.0`` for ten yuan, and ``10.0``, ``10.00`` and ``10`` are three different signed
strings. Our own device API signs the whole request body with HMAC-SHA256 instead.
"""

from __future__ import annotations

import hashlib
import hmac


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def heartbeat_sign(t: str, key: str) -> str:
    """``/appHeart``: ``md5(t + key)``."""
    return md5_hex(t + key)


def push_sign(pay_type: str, price: str, t: str, key: str) -> str:
    """``/appPush``: ``md5(type + price + t + key)``."""
    return md5_hex(pay_type + price + t + key)


def body_sign(body: bytes, key: str) -> str:
    """The device API: ``hex(HMAC-SHA256(device key, raw request body))``."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def same_sign(expected: str, received: str) -> bool:
    """Constant-time comparison; a signature in another case is the same hex value."""
    return hmac.compare_digest(expected.encode("ascii"), received.lower().encode("utf-8", "replace"))
