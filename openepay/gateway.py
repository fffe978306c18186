"""The running gateway: settings, database, secrets, channels and dialects, wired once.

The web app, the notification worker and the CLI each build one ``Gateway`` from settings
and hand it around explicitly. Before it seals or answers anything, ``OPENEPAY_SECRET_KEY``
is proven against the database (``prove_secret_key``, or ``Gateway.open`` which does both).

The dialects and the metrics are built on first use: a CLI command that lists merchants
should not pay for importing every dialect's web code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from openepay.channels.base import Channel, PayContext
from openepay.channels.qrpool.channel import QrPoolChannel
from openepay.channels.registry import ChannelRegistry
from openepay.channels.sandbox import SandboxChannel
from openepay.config import Settings
from openepay.core.buyer_links import BuyerLinks
from openepay.core.checkout import start_payment
from openepay.core.gate import Gate
from openepay.core.lockout import Lockout, LockoutPolicy
from openepay.core.merchants import Merchants
from openepay.db import Database
from openepay.db.models import Order
from openepay.key_check import prove
from openepay.secretbox import SecretBox, derive_key

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
        enabled: list[Channel] = []
        # Routing takes the first channel serving a pay type: real money before the sandbox.
        if settings.qrpool:
            enabled.append(QrPoolChannel(db, box, settings))
        if settings.sandbox:
            log.warning("the SANDBOX channel is enabled: payments on it are simulated, not real money")
            enabled.append(SandboxChannel(db, derive_key(master_key, "sandbox upstream")))
        merchants = Merchants(db, box)
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
            channels=ChannelRegistry(enabled),
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

    @property
    def order_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.order_timeout_seconds)

    def pay_context(self, request_base_url: str) -> PayContext:
        """Absolute URLs use ``OPENEPAY_PUBLIC_URL`` when set, else the address the request came to."""
        return PayContext(self.settings.public_url or request_base_url.rstrip("/"), self.links)

    async def start_payment(self, order: Order, *, pay_type: str, device: str | None, request_base_url: str) -> Order:
        """The order with a live offer (``core.checkout.start_payment``) from this gateway's channels."""
        ctx = self.pay_context(request_base_url)
        return await start_payment(self.db, self.channels, order, pay_type=pay_type, device=device, ctx=ctx)

    async def aclose(self) -> None:
        await self.db.dispose()
