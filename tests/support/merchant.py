"""A merchant's shop on loopback: receives notifications and checks them as merchant plugins do.

Its signature check is written here from the protocol description, independently of the
gateway's signing code, the way the Rainbow SDK's ``verifyNotify`` does it: every GET
parameter except ``sign``/``sign_type`` and empty values, ``ksort``, raw ``k=v&``, key
appended, MD5, strict comparison, then ``trade_status == TRADE_SUCCESS``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from tests.support.shop import Answer, RecordingShop


def plugin_sign(params: dict[str, str], key: str) -> str:
    content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k] != "")
    return hashlib.md5((content + key).encode("utf-8")).hexdigest()


def plugin_verifies(params: dict[str, str], key: str) -> bool:
    """A plugin's check of what arrived: a ``sign`` that is its own signature with ``key``."""
    return "sign" in params and plugin_sign(params, key) == params["sign"]


class ScriptedShop(RecordingShop):
    """A merchant endpoint answering from a script (its last answer repeats), checking signatures with ``key``."""

    def __init__(self, key: str | None, script: Sequence[Answer] = (), delay: float = 0.0) -> None:
        super().__init__(script, delay=delay)
        self.key = key  # None: no check; a test rotating the merchant's key changes it

    def signature_ok(self, params: dict[str, str]) -> bool | None:
        return None if self.key is None else plugin_verifies(params, self.key)


class FakeMerchant(ScriptedShop):
    """Answers ``reply`` with ``status``, which a test may change as it goes."""

    def __init__(self, key: str | None = None, reply: bytes = b"success", status: int = 200, delay: float = 0.0):
        super().__init__(key, delay=delay)
        self.reply = reply
        self.status = status

    def next_answer(self) -> Answer:
        return Answer(self.status, self.reply, (("Content-Type", "text/plain"),))
