"""The handles in a buyer's links: an order's number plus a MAC only this gateway can make.

Order numbers are time-sortable digits and can be walked, so a buyer's pages (cashier, status
poll, return, the sandbox's pay page) are never found by ``trade_no`` alone. Their address carries
``{trade_no}-{mac}``, the MAC an HMAC-SHA256 of the number under a key derived from
``OPENEPAY_SECRET_KEY``. It is checked before the order is looked up, so a guess costs no
database query and a bare or forged handle gets the same answer as an order that does not exist.
The handle is the same every time for the same order: a merchant re-sending an order gets the
link it already handed out.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from openepay.secretbox import derive_key

_MAC_HEX_CHARS = 32  # 128 bits: guessing online is hopeless, and the link stays short enough for a QR code
_HANDLE = re.compile(rf"([0-9]{{1,32}})-([0-9a-f]{{{_MAC_HEX_CHARS}}})")
# Handles made lately, kept: a create names its order in up to three links (the offer's page, the
# cashier, its return page), one MAC each otherwise.
_RECENT_HANDLES = 256


class BuyerLinks:
    def __init__(self, master_key: str) -> None:
        # The HMAC with its key already absorbed: each MAC copies it rather than hashing the key again.
        self._keyed = hmac.new(derive_key(master_key, "openepay buyer links v1"), digestmod=hashlib.sha256)
        self._recent: dict[str, str] = {}

    def _mac(self, trade_no: str) -> str:
        mac = self._keyed.copy()
        mac.update(trade_no.encode())
        return mac.hexdigest()[:_MAC_HEX_CHARS]

    def handle(self, trade_no: str) -> str:
        handle = self._recent.get(trade_no)
        if handle is None:
            if len(self._recent) >= _RECENT_HANDLES:
                self._recent.clear()
            handle = self._recent[trade_no] = f"{trade_no}-{self._mac(trade_no)}"
        return handle

    def trade_no_of(self, handle: str) -> str | None:
        """The order number a genuine handle names; None for anything this gateway did not make."""
        match = _HANDLE.fullmatch(handle)
        if match is None:
            return None
        trade_no, mac = match.groups()
        return trade_no if hmac.compare_digest(self._mac(trade_no), mac) else None

    def cashier_path(self, trade_no: str) -> str:
        return f"/cashier/{self.handle(trade_no)}"
