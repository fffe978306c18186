"""Jinja2 templates shared by every page, and the QR code renderer."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import segno
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from openepay.channels.base import PAY_TYPE_NAMES
from openepay.core.money import format_yuan

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["yuan"] = format_yuan
templates.env.filters["pay_type_name"] = lambda pay_type: PAY_TYPE_NAMES.get(pay_type or "", pay_type or "")

_MOBILE_UA = re.compile(r"Android|iPhone|iPad|iPod|Mobile|MicroMessenger|AlipayClient|QQ/", re.IGNORECASE)


def is_mobile(user_agent: str | None) -> bool:
    return bool(_MOBILE_UA.search(user_agent or ""))


@lru_cache(maxsize=1024)
def qr_svg(content: str) -> Markup:
    """An inline SVG QR code; cached because an order's QR content never changes.

    Always a full QR code: segno would pick a Micro QR for short content, which payment apps
    cannot scan. The SVG carries a viewBox instead of a fixed size so that CSS can scale it.
    """
    qr = segno.make(content, error="m", micro=False)
    svg = qr.svg_inline(scale=5, border=2, dark="#111", light="#fff", omitsize=True)
    return Markup(svg)


templates.env.filters["qr"] = qr_svg
