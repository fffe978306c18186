"""Epay V1 MD5 signatures, exactly as Rainbow computes them.

Every received parameter except ``sign`` and ``sign_type`` takes part, empty values excepted,
sorted by name (byte order), joined as raw ``k=v`` pairs with ``&`` (no URL encoding), the
merchant key appended with no separator, MD5 in lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

EXCLUDED = frozenset({"sign", "sign_type"})


def sign_content(params: Mapping[str, str], *, skip_blank: bool = False) -> str:
    """The string that is signed (without the key).

    ``skip_blank`` also leaves out whitespace-only values, as Rainbow builds from 2025 on do;
    older builds sign them. Both are accepted on input (see ``verify``).
    """
    pairs = []
    for name in sorted(params, key=lambda k: k.encode()):
        value = params[name]
        if name in EXCLUDED or value == "" or (skip_blank and not value.strip()):
            continue
        pairs.append(f"{name}={value}")
    return "&".join(pairs)


def make_sign(params: Mapping[str, str], key: str) -> str:
    return hashlib.md5((sign_content(params) + key).encode()).hexdigest()


def verify(params: Mapping[str, str], key: str) -> bool:
    """Constant-time check of ``params["sign"]``; upper-case hex is accepted."""
    received = params.get("sign", "")
    if not received.isascii():
        return False
    received_bytes = received.lower().encode()
    expected = hashlib.md5((sign_content(params) + key).encode()).hexdigest().encode()
    if hmac.compare_digest(expected, received_bytes):
        return True
    if any(value.strip() == "" and value != "" for value in params.values()):
        lenient = hashlib.md5((sign_content(params, skip_blank=True) + key).encode()).hexdigest()
        return hmac.compare_digest(lenient.encode(), received_bytes)
    return False
