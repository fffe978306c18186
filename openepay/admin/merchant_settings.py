"""A merchant's settings as an operator types them (``openepay merchant set``, the console's form), read
into stored values, with one message for each mistake.

The CLI and the console both read through here, so a typo gets the same words in either.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from openepay.channels.base import PAY_TYPE_NAMES
from openepay.protocols import DIALECT_NAMES
from openepay.protocols.epay_v2.signing import KeyFormatError, load_public_key, public_pem, stored_public_key

if TYPE_CHECKING:
    from openepay.gateway import Gateway

ALL = "all"
DEFAULT = "default"
MAPI_ANSWERS = ("channel", "payurl")


class SettingRefused(ValueError):
    """A merchant setting that cannot be used; the message says why, in the words the CLI prints."""


def _parts(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def dialect_list(text: str) -> list[str] | None:
    """None for ``all``; else the named dialects, in the usual order."""
    names = set(_parts(text))
    if names == {ALL}:
        return None
    unknown = names - set(DIALECT_NAMES)
    if unknown:
        raise SettingRefused(
            f"unknown dialect {', '.join(sorted(unknown))}: choose from {', '.join(DIALECT_NAMES)}, or all"
        )
    if not names:
        raise SettingRefused(
            "--dialects needs at least one dialect (to stop a merchant altogether: openepay merchant disable)"
        )
    return [name for name in DIALECT_NAMES if name in names]


def pay_type_list(text: str) -> list[str] | None:
    """None for ``all``; else the named pay types, sorted."""
    if text.strip() == ALL:
        return None
    chosen = sorted(set(_parts(text)))
    unknown = [name for name in chosen if name not in PAY_TYPE_NAMES]
    if unknown or not chosen:
        raise SettingRefused(
            f"pay types are among {', '.join(PAY_TYPE_NAMES)} (or 'all'), not {', '.join(unknown) or 'nothing'}"
        )
    return chosen


async def account_ids(gateway: Gateway, text: str) -> list[int] | None:
    """None for ``all``; else the ids of the named channel accounts (``AccountError`` names one that is not)."""
    if text.strip() == ALL:
        return None
    return await gateway.accounts.ids_of(_parts(text))


def mapi_answer(text: str) -> str:
    if text not in MAPI_ANSWERS:
        raise SettingRefused("--mapi-answer is 'channel' or 'payurl'")
    return text


def retry_delays(text: str) -> list[float] | None:
    """Seconds between notification attempts; None (``default``) for the gateway's schedule."""
    if text.strip() == DEFAULT:
        return None
    try:
        delays = [float(part) for part in text.split(",")]
    except ValueError:
        raise SettingRefused("--notify-retry-delays takes numbers of seconds separated by commas") from None
    if not all(math.isfinite(delay) for delay in delays):
        raise SettingRefused("--notify-retry-delays takes numbers of seconds separated by commas")
    if any(delay < 0 for delay in delays):
        raise SettingRefused("delays cannot be negative")
    return delays


def delays_text(delays: list[float] | None) -> str:
    return ",".join(f"{delay:g}" for delay in delays) if delays else DEFAULT


def rsa_public_key(text: str) -> str:
    """The merchant's RSA public key (PEM, or the bare base64 Rainbow shows) as the PEM we store."""
    try:
        return public_pem(load_public_key(text))
    except KeyFormatError as exc:
        raise SettingRefused(f"key refused: {exc}") from None


def fingerprint(pem: str) -> str:
    """How a stored public key is shown: SHA-256 of its DER body (``openssl pkey -pubin -outform DER | sha256sum``)."""
    der = stored_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.sha256(der).hexdigest()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
