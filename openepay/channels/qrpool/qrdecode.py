"""Reading a receive code from the image an operator uploads (a screenshot of the wallet's "收款码").

Wallets show their receive codes as pictures; we store only what the code says. zxing-cpp
finds and decodes QR codes anywhere in a photo or screenshot, at any angle.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import zxingcpp
from PIL import Image, UnidentifiedImageError

from openepay.channels.qrpool.accounts import QrPoolError


def decode_qr_image(path: Path) -> str:
    """The content of the one QR code in the image file; anything else is refused with the reason."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise QrPoolError(f"{path}: no such file") from None
    except OSError as exc:
        raise QrPoolError(f"{path}: not an image we can read ({exc})") from None
    with file:
        return _decode(file, str(path))


def decode_qr_bytes(data: bytes, label: str) -> str:
    """The same for an uploaded image; ``label`` (its file name) starts every refusal."""
    return _decode(io.BytesIO(data), label)


def _decode(source: IO[bytes], label: str) -> str:
    try:
        with Image.open(source) as image:
            image.load()
            found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    # A decompression bomb (a small file that claims a huge picture) is refused like any unreadable image.
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise QrPoolError(f"{label}: not an image we can read ({exc})") from None
    contents = {code.text for code in found if code.valid and code.text}
    if not contents:
        raise QrPoolError(f"{label}: no QR code found in the image")
    if len(contents) > 1:
        raise QrPoolError(
            f"{label}: the image holds {len(contents)} different QR codes; crop it to the one receive code"
        )
    return contents.pop()
