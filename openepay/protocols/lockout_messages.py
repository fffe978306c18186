"""How the dialects word a lockout (``openepay.core.lockout``): what failed too often, and how long to wait."""

from __future__ import annotations

import math

DEFAULT_WAIT = 60.0


def _seconds(retry_after: float | None) -> int:
    return math.ceil(retry_after if retry_after is not None else DEFAULT_WAIT)


def too_many(what: str, retry_after: float | None) -> str:
    """``签名校验失败次数过多，请1分钟后再试`` for ``what="签名校验失败"`` and a 60 second lockout."""
    seconds = _seconds(retry_after)
    wait = f"{seconds // 60}分钟" if seconds >= 60 and seconds % 60 == 0 else f"{seconds}秒"
    return f"{what}次数过多，请{wait}后再试"


def too_many_en(retry_after: float | None) -> str:
    seconds = _seconds(retry_after)
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        wait = f"{minutes} minute" + ("s" if minutes > 1 else "")
    else:
        wait = f"{seconds} seconds"
    return f"too many failed signature checks; try again in {wait}"
