"""The channel contract: everything a channel implements and everything that crosses it, in one place.

A channel talks to one upstream that actually collects the money (another epay gateway, Alipay,
WeChat Pay, a pool of personal QR codes, the sandbox). The core owns orders and every state
change; a channel only starts, queries, closes and refunds upstream payments, reads the
upstream's callbacks (including exactly what to answer it: ``success``, an empty 200,
``{"code":1}``), and checks an account's credentials.

**A channel is one folder** ``openepay/channels/<name>/`` with the same files in each:

- ``config.py``: the account schema, a ``ChannelConfig`` subclass whose fields are made with
  ``config_field`` (a Chinese and an English label, and whether the value is a secret). The
  operator console builds its forms from ``describe_config``; secrets are sealed at rest and
  never shown again.
- ``client.py``: the upstream's wire format (requests, signatures, answers).
- ``channel.py``: the ``Channel`` subclass below.
- ``callbacks.py``: verifying a callback (signature, then the order's account, number and exact
  amount) and deciding what to answer upstream.
- ``routes.py``: only if the channel serves pages or endpoints of its own.

**It registers itself by name** in the ``openepay.channels`` entry-point group
(``pyproject.toml``), so the gateway finds it without importing it:
``epay_upstream = "openepay.channels.epay_upstream.channel:EpayUpstreamChannel"``.

**Accounts.** A channel has any number of accounts (``openepay channel add CHANNEL NAME``), each
with its own validated configuration; every call receives the ``ChannelAccount`` it is for. A
channel with ``implicit_account`` (the sandbox, qrpool) is switched on by a setting and has one
built-in account, used while no account of it is stored.

**What it receives, never imports.** A channel is built with ``ChannelServices`` (database,
secret box, settings, an HTTP client for upstreams). Each payment gets a ``PayContext`` with
the absolute URLs it needs: where this account's upstream must send callbacks and where the
buyer returns. Routes it hands over with ``router()`` reach the gateway through
``channel_host(request)`` and render pages with ``render_page``. A channel never imports
``openepay.web`` or the gateway.

**What it declares.** ``pay_types`` it can serve; ``config_schema``; ``offers_before_order``
(its offer needs only our number, amount and name and places nothing outside the gateway, so
it can be made before the order row is written: the sandbox. A channel that places an order
upstream says False, so a merchant's repeated ``out_trade_no`` is caught by the order's INSERT
before anything is placed there; qrpool says False because it reserves amounts against the
stored order); ``queries_upstream``
(reconciliation asks it about orders still paying); ``implicit_account`` and ``enabled_by``.

**Failures.** ``create`` raises ``ChannelRefused`` only when surely nothing was created upstream
(the upstream said no, or the request never left); routing then tries the next account. Any
other exception means the outcome is unknown, and routing stops there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from openepay.core.buyer_links import BuyerLinks

if TYPE_CHECKING:
    import httpx
    from fastapi import APIRouter
    from starlette.requests import Request
    from starlette.responses import Response

    from openepay.config import Settings
    from openepay.db import Database
    from openepay.secretbox import SecretBox


PAY_TYPE_NAMES = {
    "alipay": "支付宝",
    "wxpay": "微信支付",
    "qqpay": "QQ钱包",
    "bank": "网银支付",
    "jdpay": "京东支付",
    "paypal": "PayPal",
}
# The buyer's devices as the epay dialects name them.
DEVICES = ("pc", "mobile", "qq", "wechat", "alipay", "jump")


# --- account configuration ---------------------------------------------------------------------


def config_field(zh: str, en: str, *, secret: bool = False, default: Any = ..., help: str = "") -> Any:  # noqa: A002
    """A field of an account schema: its labels in both languages and whether it is a secret.

    Secret fields must be typed ``SecretStr``: pydantic then never prints them, and the store
    seals them with ``OPENEPAY_SECRET_KEY``.
    """
    return Field(default, description=help or None, json_schema_extra={"label": {"zh": zh, "en": en}, "secret": secret})


class ChannelConfig(BaseModel):
    """Base of every channel's account schema: unknown fields are refused, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        return tuple(name for name, info in cls.model_fields.items() if _extra(info).get("secret"))

    def public_values(self) -> dict[str, Any]:
        """The values that may be stored in the clear and shown back to the operator."""
        return self.model_dump(mode="json", exclude=set(self.secret_fields()))

    def secret_values(self) -> dict[str, str]:
        values = {}
        for name in self.secret_fields():
            value = getattr(self, name)
            if value is not None:
                values[name] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return values


class NoConfig(ChannelConfig):
    """The schema of channels whose accounts need no settings (the sandbox, qrpool)."""


def _extra(info: Any) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def describe_config(schema: type[ChannelConfig]) -> list[dict[str, Any]]:
    """The form an operator console shows for an account: one entry per field, in schema order."""
    described = []
    properties = schema.model_json_schema().get("properties", {})
    for name, info in schema.model_fields.items():
        extra = _extra(info)
        described.append(
            {
                "name": name,
                "label": extra.get("label", {"zh": name, "en": name}),
                "secret": bool(extra.get("secret")),
                "required": info.is_required(),
                "default": None if info.is_required() else _json_default(info.default),
                "help": info.description or "",
                "schema": properties.get(name, {}),
            }
        )
    return described


def _json_default(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value


# --- routing properties and accounts ------------------------------------------------------------


@dataclass(frozen=True)
class RoutingRules:
    """Which orders an account may take and how it ranks; ``None`` means no limit."""

    pay_types: frozenset[str] | None = None
    devices: frozenset[str] | None = None
    min_fen: int | None = None
    max_fen: int | None = None
    daily_amount_fen: int | None = None
    daily_count: int | None = None
    priority: int = 0
    weight: int = 1

    @property
    def capped(self) -> bool:
        return self.daily_amount_fen is not None or self.daily_count is not None


@dataclass(frozen=True)
class ChannelAccount:
    """One account of a channel, with its configuration opened (secrets included) for the channel's use.

    ``id`` is None for a channel's built-in (implicit) account.
    """

    id: int | None
    channel: str
    name: str
    config: ChannelConfig
    rules: RoutingRules = field(default_factory=RoutingRules)
    enabled: bool = True

    @property
    def ref(self) -> str:
        """How callback URLs and logs name the account."""
        return account_ref(self.id)


# --- what crosses the contract ------------------------------------------------------------------


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
    # The buyer inside the merchant's official account or mini program, for an in-app (JSAPI)
    # payment: their openid there, and that app's id when the merchant named it.
    openid: str | None = None
    appid: str | None = None


@dataclass(frozen=True)
class PayContext:
    """Where the gateway is reachable, as seen by the buyer and by upstreams, and how a buyer's link names an order.

    ``callback_url`` is where this account's upstream sends payment callbacks and ``return_url``
    where the buyer comes back after paying upstream (the cashier's return page, which waits for
    the payment); both are filled in per payment.
    """

    base_url: str
    links: BuyerLinks
    callback_url: str = ""
    return_url: str = ""

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
    # The upstream's own number for the payment, when it gives one at creation.
    channel_trade_no: str | None = None
    # A code any amount can be paid on (a personal code the payer types the amount into). Handing
    # it out raw would let the buyer pay the shop's price rather than ``pay_amount_fen``, so the
    # dialects send such buyers to our cashier, which shows the exact amount.
    any_amount: bool = False
    # A JSON object the merchant's page in the buyer's app passes to the upstream's JS bridge
    # (WeChat's ``WeixinJSBridge`` ``getBrandWCPayRequest``): an in-app payment has no page or QR.
    pay_info: str | None = None

    def __post_init__(self) -> None:
        if not (self.pay_url or self.qrcode or self.urlscheme or self.pay_info):
            raise ValueError("a payment offer needs a pay URL, QR content, a URL scheme or in-app pay parameters")


class RefusalReason(StrEnum):
    PAUSED = "paused"
    NO_CODE_FOR_AMOUNT = "no_code_for_amount"
    UPSTREAM_ERROR = "upstream_error"
    # The account cannot serve the payment as asked (an in-app payment for another app's buyer).
    NOT_SERVED = "not_served"


class ChannelRefused(Exception):
    """Nothing was created upstream and this account cannot take the payment now.

    ``reason`` lets dialects pick their error code; routing tries the next account.
    """

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
    """What became of a refund upstream.

    ``succeeded`` False is a sure failure only without ``pending``: the money did not move
    and the amount may be refunded again. ``pending`` means the upstream may have refunded or
    may still do so (a timeout, an unreadable answer, "try again"); the refund stays in
    progress until ``Channel.query_refund`` settles it, because freeing the amount then could
    refund the buyer twice.
    """

    succeeded: bool
    # For the operator's log; merchants are told only whether asking again can help.
    message: str = ""
    channel_refund_no: str | None = None
    # The channel cannot refund at all (personal receive codes): a person must return the money.
    unsupported: bool = False
    pending: bool = False


@dataclass(frozen=True)
class CredentialCheck:
    """The answer of ``openepay channel test``: did the upstream accept these credentials."""

    ok: bool
    detail: str


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

    ``verified`` is the signature check alone; the core still matches the order's channel
    account and amount before anything changes. ``ack`` is the answer once the core has dealt
    with the callback (whatever it decided), ``nack`` the answer when the callback failed
    verification or the core could not record it, which makes most upstreams retry.
    """

    verified: bool
    ack: Reply
    nack: Reply
    trade_no: str | None = None
    confirmation: Confirmation | None = None
    note: str = ""


# --- what a channel receives ------------------------------------------------------------------


class ChannelServices:
    """What the gateway lends every channel when it builds it.

    The HTTP client for upstreams is made on first use: a CLI command that lists merchants
    should not pay for importing an HTTP stack.
    """

    def __init__(self, db: Database, box: SecretBox, settings: Settings) -> None:
        self.db = db
        self.box = box
        self.settings = settings

    @cached_property
    def http(self) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.upstream_timeout, connect=self.settings.upstream_connect_timeout),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        if "http" in self.__dict__:
            await self.http.aclose()


class ChannelDirectory(Protocol):
    """The running channels and their accounts, looked up by name and account reference."""

    def channel(self, name: str) -> Channel | None: ...

    async def account(self, channel: str, ref: str) -> ChannelAccount | None: ...


def account_ref(account_id: int | None) -> str:
    """How an order's ``channel_account_id`` names its account (``default``: the built-in one)."""
    return str(account_id) if account_id is not None else "default"


class ChannelHost(ChannelDirectory, Protocol):
    """What a channel's own routes reach through ``channel_host(request)``: the running gateway's parts."""

    db: Database
    box: SecretBox
    settings: Settings
    links: BuyerLinks


def callback_path(channel: str, account_ref: str) -> str:
    """Where an account's upstream sends callbacks; the account in the path says which key verifies them."""
    return f"/channels/{channel}/{account_ref}/notify"


HOST_STATE = "channel_host"
PAGES_STATE = "channel_pages"


def channel_host(request: Request) -> ChannelHost:
    """The gateway behind the app that mounted this channel's routes (set by ``create_app``)."""
    return getattr(request.app.state, HOST_STATE)


def render_page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """A page in the gateway's own look: the app lends its templates to channel routes."""
    pages = getattr(request.app.state, PAGES_STATE)
    return pages.TemplateResponse(request, template, context, status_code=status_code)


# --- the contract ----------------------------------------------------------------------------


class Channel(ABC):
    name: ClassVar[str]
    display_name: ClassVar[str]
    pay_types: ClassVar[frozenset[str]]
    config_schema: ClassVar[type[ChannelConfig]] = NoConfig
    # Whether the offer can be made before the order row exists: it needs only our number,
    # amount and name, and places nothing upstream that a repeated merchant number would
    # duplicate. A channel that places upstream orders or keeps state against the stored order
    # leaves it False.
    offers_before_order: ClassVar[bool] = False
    # The upstream keeps its own record of payments, worth asking about when no callback came.
    queries_upstream: ClassVar[bool] = False
    # Switched on by a setting, with one built-in account used while none is stored, routed by these rules.
    implicit_account: ClassVar[bool] = False
    implicit_rules: ClassVar[RoutingRules] = RoutingRules()

    def __init__(self, services: ChannelServices) -> None:
        self.services = services

    @classmethod
    def enabled_by(cls, settings: Settings) -> bool:
        """Whether this gateway runs the channel at all (the sandbox only when asked for)."""
        return True

    @abstractmethod
    async def create(self, account: ChannelAccount, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
        """Start an upstream payment. ``ChannelRefused`` only when surely nothing was created upstream."""

    @abstractmethod
    async def query(self, account: ChannelAccount, order: ChannelOrder) -> UpstreamStatus:
        """Ask upstream what became of a payment (reconciliation)."""

    @abstractmethod
    async def close(self, account: ChannelAccount, order: ChannelOrder) -> None:
        """Stop upstream from accepting money for an order that expired or was closed."""

    @abstractmethod
    async def refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        """Return money to the buyer; ``refund_no`` is stable so retries are idempotent upstream.

        Raising means the outcome is unknown and counts as ``pending``; a sure failure is a
        returned ``RefundOutcome(False)``.
        """

    async def query_refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        """What became of a refund whose first answer was uncertain (reconciliation asks).

        Succeeded, surely failed, or still ``pending``. A channel that cannot ask keeps it
        pending: an operator then settles it by hand, never the amount freed blindly.
        """
        return RefundOutcome(False, "this channel cannot ask its upstream about a refund", pending=True)

    @abstractmethod
    async def handle_callback(self, account: ChannelAccount, request: CallbackRequest) -> CallbackOutcome:
        """Verify and interpret one upstream callback that arrived at this account's callback URL."""

    @abstractmethod
    async def check_credentials(self, account: ChannelAccount) -> CredentialCheck:
        """A live call upstream that succeeds only with working credentials (``openepay channel test``)."""

    async def housekeep(self, now: datetime) -> int:
        """Periodic work of the channel's own, run by the notification worker's sweep; returns how much it did."""
        return 0

    def router(self) -> APIRouter | None:
        """Pages or endpoints of the channel's own (the sandbox's simulated upstream, the phones' APIs)."""
        return None

    def implicit(self) -> ChannelAccount:
        """The built-in account of an ``implicit_account`` channel."""
        return ChannelAccount(
            id=None, channel=self.name, name=self.name, config=self.config_schema(), rules=self.implicit_rules
        )


ChannelFactory = Callable[[ChannelServices], Channel]
