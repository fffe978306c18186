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
    # Byte order of the names' UTF-8 is their code points' order, which ``sorted`` gives without
    # encoding each name (request text never holds a lone surrogate: ``openepay.protocols.params``).
    for name in sorted(params):
        value = params[name]
        if name in EXCLUDED or value == "" or (skip_blank and not value.strip()):
            continue
        pairs.append(f"{name}={value}")
    return "&".join(pairs)


def make_sign(params: Mapping[str, str], key: str) -> str:
    return hashlib.md5((sign_content(params) + key).encode()).hexdigest()


def signed_content(params: Mapping[str, str], key: str) -> str | None:
    """The content ``params["sign"]`` is the key holder's signature of, or None (constant-time compare).

    That content, not the spelling of the request, is what the merchant signed: requests with
    the same signed content are the same request, whatever else differs (a blank field more or
    less, the sign in capitals). Refusing a replay must go by it.

    The sign is hex in one case: lowercase (PHP's ``md5``) or uppercase (Java and C# clients
    often print digests that way). A mix of cases is refused: no client writes one, and every
    mix would be another spelling of the same signature.
    """
    received = params.get("sign", "")
    lower = received.lower()
    if not received.isascii() or (received != lower and received != received.upper()):
        return None
    # Both ASCII text, which ``compare_digest`` compares as it compares bytes.
    content = sign_content(params)
    if hmac.compare_digest(hashlib.md5((content + key).encode()).hexdigest(), lower):
        return content
    # A value of whitespace only (``isspace``: what ``strip`` would leave empty, and not empty already).
    if any(map(str.isspace, params.values())):
        lenient = sign_content(params, skip_blank=True)
        if hmac.compare_digest(hashlib.md5((lenient + key).encode()).hexdigest(), lower):
            return lenient
    return None


def verify(params: Mapping[str, str], key: str) -> bool:
    """Whether ``params["sign"]`` is the key holder's signature (see ``signed_content``)."""
    return signed_content(params, key) is not None
