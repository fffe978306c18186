"""The simulated upstream's wire format: the callback it posts when the buyer pays, HMAC-signed.

The key is derived from ``OPENEPAY_SECRET_KEY``, so only this gateway can make a callback the
sandbox channel accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SIGNED_FIELDS = ("amount_fen", "paid_at", "sandbox_trade_no", "trade_no")


class SandboxUpstream:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, fields: Mapping[str, str]) -> str:
        content = "&".join(f"{name}={fields[name]}" for name in SIGNED_FIELDS)
        return hmac.new(self._key, content.encode(), hashlib.sha256).hexdigest()

    def signature_valid(self, fields: Mapping[str, str]) -> bool:
        return hmac.compare_digest(self.sign(fields).encode(), fields.get("sign", "").encode("utf-8", "replace"))

    def payment_callback(self, trade_no: str, amount_fen: int) -> dict[str, str]:
        """The form the simulated upstream posts when the buyer pays."""
        fields = {
            "trade_no": trade_no,
            "amount_fen": str(amount_fen),
            "sandbox_trade_no": "SB" + secrets.token_hex(10).upper(),
            "paid_at": str(int(time.time())),
        }
        return {**fields, "sign": self.sign(fields)}
