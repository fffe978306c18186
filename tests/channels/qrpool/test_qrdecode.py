"""Reading receive codes from the pictures operators upload."""

from __future__ import annotations

import pytest
import segno
from PIL import Image

from openepay.channels.qrpool.accounts import QrPoolError
from openepay.channels.qrpool.qrdecode import decode_qr_image

WECHAT = "wxp://f2f0hXkQ9bA3cD4eF5gH6iJ7kL8mN9oP0qR"
ALIPAY = "https://qr.alipay.com/fkx19876543210abcdef"


def code_png(tmp_path, content: str, name: str = "code.png", **kwargs):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    segno.make_qr(content, error="m").save(path, kind="png", scale=8, **kwargs)
    return path


def side_by_side(tmp_path, *paths):  # type: ignore[no-untyped-def]
    """A screenshot with several codes on it."""
    images = [Image.open(path).convert("RGB") for path in paths]
    canvas = Image.new(
        "RGB", (sum(image.width for image in images) + 40, max(image.height for image in images)), "white"
    )
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width + 40
    path = tmp_path / "screenshot.png"
    canvas.save(path)
    return path


def test_decodes_a_generated_code(tmp_path):
    assert decode_qr_image(code_png(tmp_path, WECHAT)) == WECHAT


def test_decodes_a_code_inside_a_larger_picture_and_rotated(tmp_path):
    code = Image.open(code_png(tmp_path, ALIPAY)).convert("RGB").rotate(90, expand=True)
    canvas = Image.new("RGB", (code.width + 300, code.height + 500), (230, 240, 255))
    canvas.paste(code, (150, 260))
    path = tmp_path / "phone-screenshot.jpg"
    canvas.save(path, quality=90)
    assert decode_qr_image(path) == ALIPAY


def test_an_image_without_a_code_is_refused(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("RGB", (400, 400), "white").save(path)
    with pytest.raises(QrPoolError, match="no QR code found"):
        decode_qr_image(path)


def test_several_different_codes_are_refused_the_same_code_twice_is_fine(tmp_path):
    wechat = code_png(tmp_path, WECHAT, "wechat.png")
    alipay = code_png(tmp_path, ALIPAY, "alipay.png")
    with pytest.raises(QrPoolError, match="2 different QR codes"):
        decode_qr_image(side_by_side(tmp_path, wechat, alipay))
    assert decode_qr_image(side_by_side(tmp_path, wechat, wechat)) == WECHAT


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "code.png"
    path.write_text(WECHAT)
    with pytest.raises(QrPoolError, match="not an image"):
        decode_qr_image(path)
    with pytest.raises(QrPoolError, match="no such file"):
        decode_qr_image(tmp_path / "missing.png")
