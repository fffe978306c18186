"""Pictures an operator uploads: a real receive code drawn by segno, and a picture with no code in it."""

from __future__ import annotations

import io

import segno
from PIL import Image


def code_png(content: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(content, error="m").save(out, kind="png", scale=8)
    return out.getvalue()


def plain_png() -> bytes:
    """A screenshot of something else: a coloured square, no code anywhere."""
    out = io.BytesIO()
    Image.new("RGB", (240, 240), (200, 220, 255)).save(out, format="PNG")
    return out.getvalue()
