"""Routing rules as an operator types them (``openepay channel set``, the console's account form), read into
values for ``ChannelAccounts.set_rules``, with one message for each mistake in either place."""

from __future__ import annotations

import re

from openepay.core.channel_accounts import AccountError
from openepay.core.money import MoneyError, parse_yuan

ALL = "all"
NO_LIMIT = "none"
_WHOLE = re.compile(r"-?[0-9]+")


def names(text: str) -> list[str] | None:
    """None for ``all``; else the names listed, separated by commas."""
    if text.strip() == ALL:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def yuan_or_none(text: str, field: str) -> int | None:
    """An amount in yuan as fen, or None for ``none`` (no limit)."""
    if text.strip() == NO_LIMIT:
        return None
    try:
        return parse_yuan(text.strip())
    except MoneyError:
        raise AccountError(f"{field.removesuffix('_fen')}: {text!r} is not an amount in yuan such as 100.00") from None


def whole(text: str, *, signed: bool = False) -> int:
    text = text.strip()
    if not (_WHOLE.fullmatch(text) if signed else text.isdigit()):
        raise AccountError(f"{text!r} is not a whole number")
    return int(text)


def count_or_none(text: str) -> int | None:
    return None if text.strip() == NO_LIMIT else whole(text)


def listed(values: list[str] | None) -> str:
    return ",".join(values) if values is not None else ALL
