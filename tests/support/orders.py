"""Orders made straight through the core, or never stored at all, for tests about what comes after creation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from openepay.core.orders import NewOrder, place_order
from openepay.core.states import OrderStatus
from openepay.db.models import BalanceEntry, ChannelCallback, NotifyTask, Order
from openepay.gateway import Gateway


def new_order(pid: int, out_trade_no: str = "O-1", **overrides: object) -> NewOrder:
    values: dict[str, object] = {
        "merchant_pid": pid,
        "dialect": "epay",
        "out_trade_no": out_trade_no,
        "amount_fen": 100,
        "money": "1.00",
        "name": "VIP会员",
        "notify_url": "http://127.0.0.1:9/notify",
        "return_url": "http://127.0.0.1:9/return",
    }
    values.update(overrides)
    return NewOrder(**values)  # type: ignore[arg-type]


async def sandbox_order(gateway: Gateway, pid: int, out_trade_no: str = "O-1", **overrides: object) -> Order:
    """An order with a live sandbox payment, as mapi.php would leave it."""
    placed = await place_order(
        gateway.db, new_order(pid, out_trade_no, **overrides), timeout=timedelta(minutes=30), reopen_identical=True
    )
    return await gateway.start_payment(
        placed.order, pay_type="alipay", device="pc", request_base_url="http://gateway.test"
    )


def unsaved_order(dialect: str, **values: object) -> Order:
    """A paid order that was never stored, all a dialect's messages need: vector C (§2.3) but for ``values``."""
    vector_c: dict[str, object] = {
        "merchant_pid": 1000,
        "trade_no": "2024010112000012345",
        "out_trade_no": "20240101120000123",
        "pay_type": "alipay",
        "name": "VIP会员",
        "money": "1",
        "param": None,
        "notify_url": "http://127.0.0.1/SDK/notify_url.php",
        "return_url": "http://127.0.0.1/SDK/return_url.php",
        "status": OrderStatus.PAID,
    }
    return Order(**{**vector_c, "dialect": dialect, **values})


async def stored_order(gateway: Gateway, trade_no: str) -> Order:
    """The order as the database holds it now."""
    async with gateway.db.session() as session:
        return (await session.scalars(select(Order).where(Order.trade_no == trade_no))).one()


async def channel_callbacks(gateway: Gateway, trade_no: str) -> list[ChannelCallback]:
    """Every upstream callback kept for an order, oldest first, with what was decided."""
    async with gateway.db.session() as session:
        rows = await session.scalars(
            select(ChannelCallback).where(ChannelCallback.trade_no == trade_no).order_by(ChannelCallback.id)
        )
        return list(rows.all())


async def payments_and_notifications(gateway: Gateway) -> tuple[int, int]:
    """How many payments were credited, and how many notifications queued, on the whole gateway: a callback
    counted twice (or one that should not count, counted) shows as more than one of each."""
    async with gateway.db.session() as session:
        payments = await session.scalar(
            select(func.count()).select_from(BalanceEntry).where(BalanceEntry.kind == "payment")
        )
        notifications = await session.scalar(select(func.count()).select_from(NotifyTask))
    return payments or 0, notifications or 0
