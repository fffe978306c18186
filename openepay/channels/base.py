"""The contract every channel implements, and the values that cross it.

A channel talks to one upstream (Alipay, WeChat Pay, a pool of personal QR codes, another
epay gateway, the sandbox). It is stateless: the core stores orders and decides state changes;
a channel only creates, queries, closes and refunds upstream payments and interprets the
upstream's callbacks, including exactly what to answer the upstream (Alipay wants ``success``,
WeChat Pay v3 an empty 200, V免签 phones ``{"code":1}``), so the core never needs to know.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from openepay.core.buyer_links import BuyerLinks

if TYPE_CHECKING:
    from fastapi import APIRouter


PAY_TYPE_NAMES = {
    "alipay": "支付宝",
    "wxpay": "微信支付",
    "qqpay": "QQ钱包",
    "bank": "网银支付",
    "jdpay": "京东支付",
    "paypal": "PayPal",
}


@dataclass(frozen=True)
class ChannelOrder:
    """What a channel may know about an order."""

    trade_no: str
    pay_type: str
    pay_amount_fen: int
    name: str
    created_at: datetime
    expires_at: datetime
    device: str | None = None
    clientip: str | None = None
    channel_trade_no: str | None = None


@dataclass(frozen=True)
class PayContext:
    """Where the gateway is reachable and how a buyer's link names an order, for links to our own pages."""

    base_url: str
    links: BuyerLinks

    def url(self, path: str) -> str:
        return self.base_url + path

    def handle(self, trade_no: str) -> str:
        """What a buyer-facing address names the order by (never the bare ``trade_no``)."""
        return self.links.handle(trade_no)

    def cashier_url(self, trade_no: str) -> str:
        return self.url(self.links.cashier_path(trade_no))


@dataclass(frozen=True)
class PaymentOffer:
    """How the buyer pays: a page to open, QR content to scan, or an app link.

    A channel fills what its upstream gave it; the merchant's dialect picks what to hand out
    (a ``mapi.php`` answer carries exactly one of them).
    """

    pay_url: str | None = None
    qrcode: str | None = None
    urlscheme: str | None = None
    # Set by channels that tell payments apart by amount: what the buyer must actually pay.
    pay_amount_fen: int | None = None

    def __post_init__(self) -> None:
        if not (self.pay_url or self.qrcode or self.urlscheme):
            raise ValueError("a payment offer needs a pay URL, QR content or a URL scheme")


class RefusalReason(StrEnum):
    PAUSED = "paused"
    NO_CODE_FOR_AMOUNT = "no_code_for_amount"
    UPSTREAM_ERROR = "upstream_error"


class ChannelRefused(Exception):
    """The channel cannot take this payment now; ``reason`` lets dialects pick their error code."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class UpstreamState(StrEnum):
    PAID = "paid"
    PENDING = "pending"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class UpstreamStatus:
    state: UpstreamState
    paid_fen: int | None = None
    channel_trade_no: str | None = None
    buyer: str | None = None


@dataclass(frozen=True)
class RefundOutcome:
    succeeded: bool
    # For the operator's log; merchants are told only whether asking again can help.
    message: str = ""
    channel_refund_no: str | None = None
    # The channel cannot refund at all (personal receive codes): a person must return the money.
    unsupported: bool = False


@dataclass(frozen=True)
class Reply:
    """Exactly what to send back to the upstream that called us."""

    body: str = ""
    status_code: int = 200
    media_type: str = "text/plain"


@dataclass(frozen=True)
class CallbackRequest:
    """An upstream's HTTP request as received, before anything is trusted."""

    method: str
    query: Mapping[str, str]
    form: Mapping[str, str]
    body: bytes
    headers: Mapping[str, str]
    client_ip: str | None = None


@dataclass(frozen=True)
class Confirmation:
    """A verified statement from upstream that money arrived for an order."""

    trade_no: str
    paid_fen: int
    channel_trade_no: str | None = None
    buyer: str | None = None


@dataclass(frozen=True)
class CallbackOutcome:
    """A channel's reading of one callback.

    ``verified`` is the signature check alone; the core still matches order, amount and
    channel before anything changes. ``ack`` is the answer once the core has dealt with the
    callback (whatever it decided), ``nack`` the answer when the callback failed verification
    or the core could not record it, which makes most upstreams retry.
    """

    verified: bool
    ack: Reply
    nack: Reply
    trade_no: str | None = None
    confirmation: Confirmation | None = None
    note: str = ""


class Channel(ABC):
    name: ClassVar[str]
    display_name: ClassVar[str]
    pay_types: ClassVar[frozenset[str]]

    @abstractmethod
    async def create(self, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
        """Start an upstream payment. Raise ``ChannelRefused`` when it cannot be taken."""

    @abstractmethod
    async def query(self, order: ChannelOrder) -> UpstreamStatus:
        """Ask upstream what became of a payment (reconciliation, cashier polling)."""

    @abstractmethod
    async def close(self, order: ChannelOrder) -> None:
        """Stop upstream from accepting money for an order that expired or was closed."""

    @abstractmethod
    async def refund(self, order: ChannelOrder, amount_fen: int, refund_no: str) -> RefundOutcome:
        """Return money to the buyer; ``refund_no`` is stable so retries are idempotent upstream."""

    @abstractmethod
    async def handle_callback(self, request: CallbackRequest) -> CallbackOutcome:
        """Verify and interpret one upstream callback."""

    def router(self) -> APIRouter | None:
        """Pages or endpoints of the channel's own (the sandbox's simulated upstream, device APIs)."""
        return None
