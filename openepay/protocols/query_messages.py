"""The messages of dialects that notify with a GET: the signed fields appended to ``notify_url``.

Epay V1, the ``/pay/`` dialect and V免签 differ only in their fields, their signature and what
counts as an acknowledgement; the buyer's return carries the same signed fields. Each says
what is its own, and the transport lives here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from openepay.db.models import Order
from openepay.notify.http import OutboundMessage
from openepay.protocols.urls import append_query, http_build_query


class QueryStringMessages(ABC):
    return_after_notify: float | None = None

    @abstractmethod
    def notification_params(self, order: Order, key: str) -> dict[str, str]:
        """The signed fields telling the merchant the order is paid."""

    @abstractmethod
    def probe_params(self, pid: int, key: str, stamp: str) -> dict[str, str]:
        """Signed fields shaped like a notification and marked as a test, matching no real order."""

    @abstractmethod
    def acknowledged(self, body: bytes) -> bool:
        """Whether the merchant's answer means "received, stop retrying"."""

    async def notification(self, order: Order, key: str) -> OutboundMessage:
        query = http_build_query(self.notification_params(order, key))
        return OutboundMessage("GET", append_query(order.notify_url, query))

    async def test_notification(self, pid: int, key: str, url: str, stamp: str) -> OutboundMessage:
        return OutboundMessage("GET", append_query(url, http_build_query(self.probe_params(pid, key, stamp))))

    async def return_url(self, order: Order, key: str) -> str | None:
        if not order.return_url:
            return None
        return append_query(order.return_url, http_build_query(self.notification_params(order, key)))
