"""What the rest of the gateway needs from a dialect once an order exists: its messages.

The notification engine and the return redirect only ever call these three methods, so they
stay ignorant of every dialect's fields and signatures.
"""

from __future__ import annotations

from typing import Protocol

from openepay.db import Database
from openepay.db.models import Order
from openepay.notify.http import OutboundMessage
from openepay.protocols import epay, epay_v2, pay_mapi, payfor, vmq
from openepay.protocols.epay.messages import EpayMessages
from openepay.protocols.epay_v2.messages import EpayV2Messages
from openepay.protocols.pay_mapi.messages import PayMapiMessages
from openepay.protocols.payfor.messages import PayForMessages
from openepay.protocols.vmq.messages import VmqMessages
from openepay.secretbox import SecretBox


class DialectMessages(Protocol):
    # Seconds the buyer's return must wait after the notification was sent; None: no waiting.
    return_after_notify: float | None

    async def notification(self, order: Order, key: str) -> OutboundMessage:
        """The signed message telling the merchant the order is paid (signed at send time)."""

    def acknowledged(self, body: bytes) -> bool:
        """Whether the merchant's answer means "received, stop retrying"."""

    async def test_notification(self, pid: int, key: str, url: str, stamp: str) -> OutboundMessage:
        """A clearly marked, signed test message, so a merchant can check their endpoint."""

    async def return_url(self, order: Order, key: str) -> str | None:
        """Where to send the buyer's browser after payment, signed; None if the merchant gave none."""


class DialectRegistry:
    def __init__(self, dialects: dict[str, DialectMessages]) -> None:
        self._dialects = dialects

    def for_order(self, order: Order) -> DialectMessages:
        return self._dialects[order.dialect]

    def named(self, dialect: str) -> DialectMessages:
        return self._dialects[dialect]

    def names(self) -> list[str]:
        return sorted(self._dialects)


def build_dialects(db: Database, box: SecretBox) -> DialectRegistry:
    return DialectRegistry(
        {
            epay.DIALECT: EpayMessages(),
            pay_mapi.DIALECT: PayMapiMessages(),
            payfor.DIALECT: PayForMessages(db, box),
            epay_v2.DIALECT: EpayV2Messages(db, box),
            vmq.DIALECT: VmqMessages(),
        }
    )
