"""The running gateway: settings, database, secrets, channels, their accounts and dialects, wired once.

The web app, the notification worker and the CLI each build one ``Gateway`` from settings
and hand it around explicitly. It learns its channels from the registry by name, never by
importing them, and it is the ``ChannelHost`` their routes reach. Before it seals or answers
anything, ``OPENEPAY_SECRET_KEY`` is proven against the database (``prove_secret_key``, or
``Gateway.open`` which does both).

The dialects and the metrics are built on first use: a CLI command that lists merchants
should not pay for importing every dialect's web code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from openepay.channels.base import (
    Channel,
    ChannelAccount,
    ChannelServices,
    CredentialCheck,
    PayContext,
    account_ref,
)
from openepay.channels.registry import ChannelRegistry, channel_classes
from openepay.config import Settings
from openepay.core import usage
from openepay.core.buyer_links import BuyerLinks
from openepay.core.channel_accounts import ChannelAccounts
from openepay.core.checkout import HealthPolicy, place_and_start_payment, start_payment
from openepay.core.gate import Gate
from openepay.core.lockout import Lockout, LockoutPolicy
from openepay.core.merchants import Merchants
from openepay.core.orders import NewOrder, channel_view
from openepay.core.routing import Router, Strategy
from openepay.db import Database
from openepay.db.models import Order
from openepay.key_check import prove
from openepay.secretbox import SecretBox

if TYPE_CHECKING:
    from openepay.metrics import Metrics
    from openepay.protocols.registry import DialectRegistry

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Settings
    db: Database
    box: SecretBox
    merchants: Merchants
    gate: Gate
    channels: ChannelRegistry
    accounts: ChannelAccounts
    router: Router
    services: ChannelServices
    links: BuyerLinks

    @classmethod
    async def open(cls, settings: Settings, **engine_kwargs) -> Gateway:  # type: ignore[no-untyped-def]
        """A gateway whose secret key is proven (raises ``key_check.WrongSecretKey`` otherwise)."""
        gateway = cls.from_settings(settings, **engine_kwargs)
        try:
            await gateway.prove_secret_key()
        except BaseException:
            await gateway.aclose()
            raise
        return gateway

    @classmethod
    def from_settings(cls, settings: Settings, **engine_kwargs) -> Gateway:  # type: ignore[no-untyped-def]
        master_key = settings.resolve_secret_key()
        if not settings.is_sqlite:
            engine_kwargs.setdefault("pool_size", settings.db_pool_size)
        db = Database(settings.database_url, **engine_kwargs)
        box = SecretBox(master_key)
        services = ChannelServices(db=db, box=box, settings=settings)
        channels = ChannelRegistry.load(services)
        if channels.get("sandbox") is not None:
            log.warning("the SANDBOX channel is enabled: payments on it are simulated, not real money")
        accounts = ChannelAccounts(db, box, channels, settings.routing_cache_seconds)
        merchants = Merchants(
            db,
            box,
            cache_check_interval=settings.merchant_cache_check_interval,
            cache_trust_seconds=settings.merchant_cache_trust_seconds,
        )
        policy = LockoutPolicy(
            window=settings.auth_failure_window,
            per_ip=settings.auth_failures_per_ip,
            per_merchant=settings.auth_failures_per_merchant,
            sync_interval=settings.auth_failure_sync_interval,
        )
        return cls(
            settings=settings,
            db=db,
            box=box,
            merchants=merchants,
            gate=Gate(merchants, Lockout(db, policy)),
            channels=channels,
            accounts=accounts,
            router=Router(
                db,
                channels,
                accounts,
                strategy=Strategy(settings.routing_strategy),
                cache_seconds=settings.routing_cache_seconds,
            ),
            services=services,
            links=BuyerLinks(master_key),
        )

    @cached_property
    def dialects(self) -> DialectRegistry:
        from openepay.protocols.registry import build_dialects

        return build_dialects(self.db, self.box)

    @cached_property
    def metrics(self) -> Metrics:
        from openepay.metrics import Metrics

        return Metrics()

    async def prove_secret_key(self) -> None:
        """Check ``OPENEPAY_SECRET_KEY`` against the database; until then the box seals nothing."""
        await prove(self.db, self.box)

    @cached_property
    def order_timeout(self) -> timedelta:
        """How long a new order may be paid, made once (a ``timedelta`` per create was work for nothing)."""
        return timedelta(seconds=self.settings.order_timeout_seconds)

    # --- what channels and their routes reach (``ChannelHost``) -----------------------------

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name)

    async def account(self, channel: str, ref: str) -> ChannelAccount | None:
        return await self.accounts.find(channel, ref)

    async def check_credentials(self, name: str) -> CredentialCheck:
        """A live call with the stored account ``name`` (``openepay channel test``, the console's test button).

        The channel is built here, so an account can be checked before its channel is switched on.
        """
        record = await self.accounts.record(name)
        channel = channel_classes()[record.channel](self.services)
        return await channel.check_credentials(self.accounts.open(record))

    # --- payments -------------------------------------------------------------------------------

    def pay_context(self, request_base_url: str, trade_no: str | None = None) -> PayContext:
        """Absolute URLs use ``OPENEPAY_PUBLIC_URL`` when set, else the address the request came to."""
        base = self.settings.public_url or request_base_url.rstrip("/")
        if trade_no is None:
            return PayContext(base, self.links)
        return PayContext(base, self.links, return_url=f"{base}{self.links.cashier_path(trade_no)}/return")

    async def start_payment(self, order: Order, *, pay_type: str, device: str | None, request_base_url: str) -> Order:
        """The order with a live offer (``core.checkout.start_payment``) from this gateway's channel accounts."""
        return await start_payment(
            self.db,
            self.router,
            order,
            pay_type=pay_type,
            device=device,
            ctx=self.pay_context(request_base_url, order.trade_no),
            zone=self.settings.zone,
            health=self._health_policy,
        )

    async def place_and_start_payment(
        self,
        new: NewOrder,
        *,
        pay_type: str,
        device: str | None,
        request_base_url: str,
        reopen_identical: bool,
        keep_unoffered: bool,
    ) -> Order:
        """A new order written once with its offer (``core.checkout.place_and_start_payment``)."""
        return await place_and_start_payment(
            self.db,
            self.router,
            new,
            timeout=self.order_timeout,
            reopen_identical=reopen_identical,
            keep_unoffered=keep_unoffered,
            pay_type=pay_type,
            device=device,
            ctx_for=lambda trade_no: self.pay_context(request_base_url, trade_no),
            zone=self.settings.zone,
            health=self._health_policy,
        )

    @cached_property
    def _health_policy(self) -> HealthPolicy:
        return HealthPolicy(
            self.settings.channel_failure_threshold, timedelta(seconds=self.settings.channel_pause_seconds)
        )

    async def after_close(self, order: Order) -> None:
        """An order closed unpaid: its account's caps get the amount back and its upstream stops taking money."""
        async with self.db.session() as session:
            await usage.release_order(session, order.id, only_closed=True)
        channel = self.channel(order.channel) if order.channel else None
        account = await self.accounts.find(order.channel, account_ref(order.channel_account_id)) if channel else None
        if channel is None or account is None:
            return
        try:
            await channel.close(account, channel_view(order))
        except Exception:
            log.exception("channel %s could not close %s upstream", order.channel, order.trade_no)

    async def aclose(self) -> None:
        await self.services.aclose()
        await self.db.dispose()
