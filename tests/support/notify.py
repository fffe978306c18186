"""Paid orders that owe a notification, and reading the delivery log consistently.

``Answer`` and ``ScriptedShop`` (from ``shop`` and ``merchant``) are imported from here too, by ``tests/conftest.py``
and the notification tests.
"""

from __future__ import annotations

from sqlalchemy import select

from openepay.core.merchants import MerchantCredentials
from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyTask, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify import outbox
from tests.support.epay import order_params, signed
from tests.support.merchant import ScriptedShop as ScriptedShop
from tests.support.shop import Answer as Answer


def answered(delivered: bool) -> outbox.AttemptRecord:
    """An attempt the shop answered: ``success``, or a 500."""
    return outbox.AttemptRecord(
        started_at=utcnow(),
        target_host="shop.example",
        latency_ms=7,
        delivered=delivered,
        http_status=200 if delivered else 500,
        body_head="success" if delivered else "oops",
        error_class=None if delivered else "http_status",
    )


async def paid_order(server, merchant: MerchantCredentials, notify_url: str, out_trade_no: str, **extra: str) -> str:
    params = order_params(
        merchant.pid, "http://unused.example", out_trade_no, notify_url=notify_url, clientip="203.0.113.9", **extra
    )
    async with server.client() as client:
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
        assert answer["code"] == 1, answer
        paid = await client.post(f"/sandbox/pay/{server.gateway.links.handle(answer['trade_no'])}")
        assert paid.status_code == 303
    return answer["trade_no"]


async def delivery_log(gateway: Gateway, trade_no: str) -> tuple[NotifyTask, list[NotifyAttempt]]:
    """The task and its attempts as one consistent picture.

    An attempt and its task update commit together, but under READ COMMITTED two SELECTs may
    see different moments; the task is read before and after the attempts until it did not move.
    """
    order_id = select(Order.id).where(Order.trade_no == trade_no).scalar_subquery()
    while True:
        async with gateway.db.session() as session:
            before = (await session.scalars(select(NotifyTask).where(NotifyTask.order_id == order_id))).one()
            seen = (before.attempts, before.status, before.next_attempt_at)
            attempts = list(
                (
                    await session.scalars(
                        select(NotifyAttempt).where(NotifyAttempt.task_id == before.id).order_by(NotifyAttempt.number)
                    )
                ).all()
            )
            after = (
                await session.scalars(
                    select(NotifyTask).where(NotifyTask.id == before.id).execution_options(populate_existing=True)
                )
            ).one()
            if (after.attempts, after.status, after.next_attempt_at) == seen:
                return after, attempts


def settled(gateway: Gateway, trade_no: str, status: NotifyStatus):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        task, attempts = await delivery_log(gateway, trade_no)
        return (task, attempts) if task.status == status else None

    return check


def attempted(gateway: Gateway, trade_no: str, times: int):  # type: ignore[no-untyped-def]
    """A check that the order's notification has ``times`` attempts recorded: the shop seeing a delivery
    comes before the worker writes down its answer, and a page loaded in between shows one fewer."""

    async def check() -> bool:
        _, attempts = await delivery_log(gateway, trade_no)
        return len(attempts) == times

    return check
