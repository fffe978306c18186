"""Yuan strings at the protocol edge, integer fen everywhere inside.

A merchant's ``money`` string is also kept verbatim: it is what they signed and what they
expect to see again in the notification, so it is never rebuilt from the parsed number.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_YUAN = re.compile(r"^[0-9]*\.?[0-9]*$")
MAX_MONEY_CHARS = 20
# What a fen column holds: BIGINT on PostgreSQL, SQLite's 64-bit INTEGER.
MAX_STORED_FEN = 2**63 - 1
# No one amount comes near it, so that sums of amounts (balances) cannot either: ten trillion
# yuan is past any payment, and 922 of them would still fit in a balance.
MAX_AMOUNT_FEN = 10**15


class MoneyError(ValueError):
    """Not an amount we can take: malformed, non-positive, finer than one fen, or absurdly large."""


def parse_yuan(text: str) -> int:
    """``"12.50"`` -> ``1250``. Accepts what epay merchants send (``10``, ``19.9``, ``1.00``, ``.5``).

    Digits and at most one dot only (no sign, exponent, spaces or separators), a positive
    value, no part of a fen (``1.005`` is refused, ``1.000`` is one yuan) and at most
    ``MAX_AMOUNT_FEN``. The text is checked before any arithmetic, so ``1e30`` or a thousand
    digits cost nothing.
    """
    if not text or len(text) > MAX_MONEY_CHARS or not _YUAN.fullmatch(text):
        raise MoneyError(f"not a yuan amount: {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise MoneyError(f"not a yuan amount: {text!r}") from exc
    fen = value * 100
    if fen != fen.to_integral_value():
        raise MoneyError(f"finer than one fen: {text!r}")
    if fen <= 0:
        raise MoneyError(f"not positive: {text!r}")
    if fen > MAX_AMOUNT_FEN:
        raise MoneyError(f"too large: {text!r}")
    return int(fen)


def format_yuan(fen: int) -> str:
    """``1250`` -> ``"12.50"``: always two decimals, as the epay docs show amounts."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def yuan_to_fen(value: Decimal) -> int:
    """A configured limit such as ``Decimal("0.01")`` in fen, rounding toward a whole fen."""
    return int((value * 100).to_integral_value())
