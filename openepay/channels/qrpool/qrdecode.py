"""Reading a receive code from the image an operator uploads (a screenshot of the wallet's "收款码").

Wallets show their receive codes as pictures; we store only what the code says. zxing-cpp
finds and decodes QR codes anywhere in a photo or screenshot, at any angle.
"""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError

from openepay.channels.qrpool.accounts import QrPoolError


def decode_qr_image(path: Path) -> str:
    """The content of the one QR code in the image; anything else is refused with the reason."""
    try:
        with Image.open(path) as image:
            image.load()
            found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    except FileNotFoundError:
        raise QrPoolError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise QrPoolError(f"{path}: not an image we can read ({exc})") from None
    contents = {code.text for code in found if code.valid and code.text}
    if not contents:
        raise QrPoolError(f"{path}: no QR code found in the image")
    if len(contents) > 1:
        raise QrPoolError(
            f"{path}: the image holds {len(contents)} different QR codes; crop it to the one receive code"
        )
    return contents.pop()
