"""Epay V2 notifications and return redirects, signed with the platform key.

GET ``notify_url?pid&trade_no&out_trade_no&type&name&money&trade_status[&api_trade_no][&buyer][&param]``
``&timestamp&sign_type=RSA&sign``.
V2 SDKs refuse anything whose ``timestamp`` is more than 300 s off their clock, so every
attempt, and the buyer's return, is signed afresh when it is sent.
"""

from __future__ import annotations

from openepay.db import Database
from openepay.db.models import Order
from openepay.notify.http import OutboundMessage
from openepay.protocols.epay.messages import ACK_WORDS, probe_params, trade_success_fields
from openepay.protocols.epay_v2.platform_key import platform_key
from openepay.protocols.epay_v2.signing import EXCLUDED
from openepay.protocols.urls import append_query, http_build_query
from openepay.secretbox import SecretBox


def notification_fields(order: Order) -> dict[str, str]:
    fields = {
        **trade_success_fields(order),
        "api_trade_no": order.channel_trade_no or "",
        "buyer": order.buyer or "",
        # Rainbow leaves param out when PHP's empty() is true, which includes "0".
        "param": order.param if order.param not in (None, "0") else "",
    }
    return {name: value for name, value in fields.items() if value != ""}


class EpayV2Messages:
    return_after_notify: float | None = None

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def _signed_query(self, fields: dict[str, str]) -> str:
        signed = (await platform_key(self.db, self.box)).signed(fields)
        return http_build_query({name: str(value) for name, value in signed.items()})

    async def notification(self, order: Order, key: str) -> OutboundMessage:
        query = await self._signed_query(notification_fields(order))
        return OutboundMessage("GET", append_query(order.notify_url, query))

    def acknowledged(self, body: bytes) -> bool:
        return any(word in body for word in ACK_WORDS)

    async def test_notification(self, pid: int, key: str, url: str, stamp: str) -> OutboundMessage:
        """V1's marked test message (``trade_status=TEST_NOTIFY``, no real order numbers), signed the V2 way."""
        fields = {name: value for name, value in probe_params(pid, key, stamp).items() if name not in EXCLUDED}
        return OutboundMessage("GET", append_query(url, await self._signed_query(fields)))

    async def return_url(self, order: Order, key: str) -> str | None:
        if not order.return_url:
            return None
        return append_query(order.return_url, await self._signed_query(notification_fields(order)))
