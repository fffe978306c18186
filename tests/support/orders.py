"""Placing orders straight through the core, for tests about what happens after creation."""

from __future__ import annotations

from datetime import timedelta

from openepay.channels.base import PayContext
from openepay.core.checkout import start_payment
from openepay.core.orders import NewOrder, place_order
from openepay.db.models import Order
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
    return await start_payment(
        gateway.db,
        gateway.channels,
        placed.order,
        pay_type="alipay",
        device="pc",
        ctx=PayContext("http://gateway.test"),
    )
