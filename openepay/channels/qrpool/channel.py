"""The ``qrpool`` channel: personal receive codes, payments told apart by a unique amount.

There is no upstream to call. Creating a payment reserves an amount on a receiving account
whose phone is online and hands out the code to scan; the phones report what they received
on their own endpoints (``monitor.router``), where payments are matched to reservations.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from openepay.channels.base import (
    PAY_TYPE_NAMES,
    CallbackOutcome,
    CallbackRequest,
    Channel,
    ChannelAccount,
    ChannelOrder,
    ChannelRefused,
    CredentialCheck,
    PayContext,
    PaymentOffer,
    RefundOutcome,
    RefusalReason,
    Reply,
    RoutingRules,
    UpstreamState,
    UpstreamStatus,
)
from openepay.channels.qrpool.accounts import PAY_TYPES, live_accounts
from openepay.channels.qrpool.config import QrPoolConfig
from openepay.channels.qrpool.reservations import HELD, release_expired, reserve
from openepay.core.states import SETTLED_PAID, OrderStatus
from openepay.db.models import AmountReservation, Order

if TYPE_CHECKING:
    from fastapi import APIRouter

    from openepay.config import Settings
    from openepay.db import Database

REFUND_UNSUPPORTED = "个人收款码通道无法自动退款：请从收款账户把钱退还买家"


class QrPoolChannel(Channel):
    name = "qrpool"
    display_name = "Personal QR codes"
    pay_types = frozenset(PAY_TYPES)
    config_schema = QrPoolConfig
    # Amounts are reserved against the stored order.
    offers_before_order = False
    implicit_account = True
    # Real money, but before the sandbox only; a stored account's rules rank it among the others.
    implicit_rules = RoutingRules(priority=-1)

    @classmethod
    def enabled_by(cls, settings: Settings) -> bool:
        return settings.qrpool

    @property
    def _db(self) -> Database:
        return self.services.db

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def create(self, account: ChannelAccount, order: ChannelOrder, ctx: PayContext) -> PaymentOffer:
        accounts = await live_accounts(
            self._db, order.pay_type, timedelta(seconds=self.settings.qrpool_heartbeat_timeout)
        )
        if not accounts:
            raise ChannelRefused(
                RefusalReason.PAUSED,
                f"qrpool: no {PAY_TYPE_NAMES.get(order.pay_type, order.pay_type)} receiving account has a phone online",
            )
        async with self._db.session() as session:
            stored = await session.scalar(select(Order).where(Order.trade_no == order.trade_no))
        if stored is None:
            raise LookupError(f"order {order.trade_no} is not stored")
        # The merchant's amount, not ``order.pay_amount_fen``: an earlier offer may have moved that.
        reservation, code = await reserve(
            self._db,
            stored.id,
            accounts,
            stored.amount_fen,
            hold_until=stored.expires_at + timedelta(seconds=self.settings.qrpool_late_grace_seconds),
            settings=self.settings,
        )
        return PaymentOffer(
            qrcode=code.content,
            pay_url=ctx.cashier_url(order.trade_no),
            pay_amount_fen=reservation.amount_fen,
            any_amount=code.amount_fen is None,
        )

    async def query(self, account: ChannelAccount, order: ChannelOrder) -> UpstreamStatus:
        """Only our own records exist: paid when the order is, closed once no payment can match it any more."""
        async with self._db.session() as session:
            stored = await session.scalar(select(Order).where(Order.trade_no == order.trade_no))
            if stored is None:
                return UpstreamStatus(UpstreamState.UNKNOWN)
            if stored.status in SETTLED_PAID:
                return UpstreamStatus(UpstreamState.PAID, paid_fen=stored.paid_fen, buyer=stored.buyer)
            held = await session.scalar(
                select(AmountReservation.id).where(
                    AmountReservation.order_id == stored.id, AmountReservation.state == HELD
                )
            )
        if stored.status == OrderStatus.CLOSED and held is None:
            return UpstreamStatus(UpstreamState.CLOSED)
        return UpstreamStatus(UpstreamState.PENDING)

    async def close(self, account: ChannelAccount, order: ChannelOrder) -> None:
        """Nothing upstream to stop: the amount stays held through the late-payment grace, then the sweeper frees it."""

    async def refund(
        self, account: ChannelAccount, order: ChannelOrder, amount_fen: int, refund_no: str
    ) -> RefundOutcome:
        return RefundOutcome(succeeded=False, message=REFUND_UNSUPPORTED, unsupported=True)

    async def check_credentials(self, account: ChannelAccount) -> CredentialCheck:
        """No upstream credentials: what can fail is a phone, so say which pay types have one online."""
        timeout = timedelta(seconds=self.settings.qrpool_heartbeat_timeout)
        online = [pay_type for pay_type in PAY_TYPES if await live_accounts(self._db, pay_type, timeout)]
        if not online:
            return CredentialCheck(False, "no receiving account has a phone online (openepay qrpool device list)")
        return CredentialCheck(True, "phones online for " + ", ".join(online))

    async def handle_callback(self, account: ChannelAccount, request: CallbackRequest) -> CallbackOutcome:
        """Phones report on their own endpoints; nothing may confirm a payment through ``/callback/qrpool``."""
        refused = Reply("not used", status_code=404)
        return CallbackOutcome(False, refused, refused, note="qrpool takes no upstream callbacks")

    async def housekeep(self, now: datetime) -> int:
        """Free the amounts whose hold (expiry plus the late-payment grace, or the paid cooldown) has passed."""
        return await release_expired(self._db, now)

    def router(self) -> APIRouter:
        from openepay.channels.qrpool.monitor import router

        return router
