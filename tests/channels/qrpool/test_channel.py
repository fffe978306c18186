"""The qrpool channel through the core: when it takes an order, what it offers, what it reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from openepay.channels.base import CallbackRequest, ChannelRefused, RefusalReason, UpstreamState
from openepay.channels.qrpool import accounts
from openepay.channels.qrpool.channel import QrPoolChannel
from openepay.channels.qrpool.monitor import router as monitor_router
from openepay.core.orders import channel_view, close_expired, place_order
from openepay.core.states import OrderStatus
from openepay.db.models import AmountReservation, Order, QrDevice
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from tests.support.links import cashier_path
from tests.support.orders import new_order
from tests.support.qrpool import GENERIC, offered, qrpool_gateway, receiving_account


def qrpool_of(gateway: Gateway) -> QrPoolChannel:
    channel = gateway.channels.get("qrpool")
    assert isinstance(channel, QrPoolChannel)
    return channel


async def reservations_of(gateway: Gateway, order_id: int) -> list[AmountReservation]:
    async with gateway.db.session() as session:
        query = select(AmountReservation).where(AmountReservation.order_id == order_id).order_by(AmountReservation.id)
        return list((await session.scalars(query)).all())


async def refused(gateway: Gateway, pid: int, out_trade_no: str, **kwargs) -> ChannelRefused:  # type: ignore[no-untyped-def]
    with pytest.raises(ChannelRefused) as refusal:
        await offered(gateway, pid, out_trade_no, **kwargs)
    return refusal.value


async def test_the_offer_is_the_code_the_amount_and_our_cashier(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_late_grace_seconds=600) as qr:
        await receiving_account(qr, fixed={101: "wxp://fixed-1.01"})
        first = await offered(qr, merchant.pid, "O-1")
        second = await offered(qr, merchant.pid, "O-2")
    assert (first.channel, first.status, first.pay_type) == ("qrpool", OrderStatus.PAYING, "wxpay")
    assert (first.amount_fen, first.pay_amount_fen, first.qrcode) == (100, 100, GENERIC)
    assert (second.amount_fen, second.pay_amount_fen, second.qrcode) == (100, 101, "wxp://fixed-1.01")
    assert second.pay_url == f"http://gateway.test{cashier_path(second.trade_no)}"
    [reservation] = await reservations_of(gateway, second.id)
    assert (reservation.amount_fen, reservation.state) == (101, "held")
    assert reservation.hold_until == second.expires_at + timedelta(seconds=600)


async def test_paused_while_no_phone_of_the_pay_type_is_heard_from(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_heartbeat_timeout=90) as qr:
        refusal = await refused(qr, merchant.pid, "NO-ACCOUNT")
        assert refusal.reason == RefusalReason.PAUSED and "phone online" in refusal.message

        await receiving_account(qr, "never-heard", live=False)
        await receiving_account(qr, "alipay-only", "alipay")
        assert (await refused(qr, merchant.pid, "NOT-LIVE")).reason == RefusalReason.PAUSED

        account = await receiving_account(qr, "wx-live")
        async with qr.db.session() as session:
            await session.execute(
                update(QrDevice)
                .where(QrDevice.account_id == account.id)
                .values(last_heartbeat_at=utcnow() - timedelta(seconds=91))
            )
        assert (await refused(qr, merchant.pid, "STALE")).reason == RefusalReason.PAUSED

        [device] = await accounts.list_devices(qr.db, account.id)
        await accounts.record_heartbeat(qr.db, device.id, utcnow())
        assert (await offered(qr, merchant.pid, "LIVE")).pay_amount_fen == 100

        await accounts.set_device_enabled(qr.db, device.id, False)
        assert (await refused(qr, merchant.pid, "DEVICE-OFF")).reason == RefusalReason.PAUSED
        await accounts.set_device_enabled(qr.db, device.id, True)
        await accounts.set_account_enabled(qr.db, account.id, False)
        assert (await refused(qr, merchant.pid, "ACCOUNT-OFF")).reason == RefusalReason.PAUSED


async def test_no_code_for_amount_once_every_amount_is_held(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_max_offset_fen=1) as qr:
        await receiving_account(qr)
        assert [(await offered(qr, merchant.pid, f"O-{n}")).pay_amount_fen for n in range(2)] == [100, 101]
        refusal = await refused(qr, merchant.pid, "O-3")
    assert refusal.reason == RefusalReason.NO_CODE_FOR_AMOUNT
    assert "no amount free from 1.00 to 1.01" in refusal.message


async def test_a_reopened_order_keeps_its_amount_for_longer(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        await receiving_account(qr)
        await offered(qr, merchant.pid, "OTHER")
        order = await offered(qr, merchant.pid, "O-1")
        [before] = await reservations_of(qr, order.id)
        async with qr.db.session() as session:
            await session.execute(update(Order).where(Order.id == order.id).values(expires_at=utcnow()))
        await close_expired(qr.db)
        # The merchant's plugin posts the same order again: the gateway reopens it with a new expiry.
        reopened = (
            await place_order(
                qr.db,
                new_order(merchant.pid, "O-1", amount_fen=100, money="1.00"),
                timeout=timedelta(minutes=30),
                reopen_identical=True,
            )
        ).order
        again = await qrpool_of(qr).create(
            qrpool_of(qr).implicit(), channel_view(reopened), qr.pay_context("http://gateway.test", reopened.trade_no)
        )
        [after] = await reservations_of(qr, order.id)
    assert (again.pay_amount_fen, again.qrcode) == (101, GENERIC)
    assert after.id == before.id and after.hold_until > before.hold_until
    assert after.hold_until == reopened.expires_at + timedelta(seconds=qr.settings.qrpool_late_grace_seconds)


async def test_query_reports_what_the_database_knows(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        await receiving_account(qr)
        channel = qrpool_of(qr)
        order = await offered(qr, merchant.pid, "O-1")
        assert (await channel.query(channel.implicit(), channel_view(order))).state == UpstreamState.PENDING

        # Closed, but a late payment may still match its amount until the grace runs out.
        async with qr.db.session() as session:
            await session.execute(update(Order).where(Order.id == order.id).values(status=OrderStatus.CLOSED))
        assert (await channel.query(channel.implicit(), channel_view(order))).state == UpstreamState.PENDING
        async with qr.db.session() as session:
            await session.execute(update(AmountReservation).values(state="released"))
        assert (await channel.query(channel.implicit(), channel_view(order))).state == UpstreamState.CLOSED

        async with qr.db.session() as session:
            await session.execute(
                update(Order)
                .where(Order.id == order.id)
                .values(status=OrderStatus.PAID, paid_fen=100, paid_at=utcnow())
            )
        status = await channel.query(channel.implicit(), channel_view(order))
        assert (status.state, status.paid_fen) == (UpstreamState.PAID, 100)

        unknown = replace(channel_view(order), trade_no="0")
        assert (await channel.query(channel.implicit(), unknown)).state == UpstreamState.UNKNOWN


async def test_refunds_and_callbacks_are_not_for_this_channel(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        await receiving_account(qr)
        order = await offered(qr, merchant.pid, "O-1")
        channel = qrpool_of(qr)
        outcome = await channel.refund(channel.implicit(), channel_view(order), 100, "R1")
        assert not outcome.succeeded and "无法自动退款" in outcome.message
        callback = await channel.handle_callback(
            channel.implicit(), CallbackRequest("POST", {}, {"trade_no": order.trade_no, "money": "1.00"}, b"", {})
        )
        assert not callback.verified and callback.confirmation is None
        await channel.close(channel.implicit(), channel_view(order))
        assert [r.state for r in await reservations_of(qr, order.id)] == ["held"]


async def test_routing_prefers_personal_codes_over_the_sandbox(database_url):
    async with qrpool_gateway(database_url, sandbox=True) as both:
        installed = {channel.name for channel in both.channels.all()}
        assert installed == {"alipay", "epay_upstream", "qrpool", "sandbox", "wxpay"}
        candidates, _ = await both.router.candidates(1000, "wxpay", 100, "pc")
        assert [candidate.channel.name for candidate in candidates] == ["qrpool", "sandbox"]
        assert qrpool_of(both).router() is monitor_router
