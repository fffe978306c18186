"""Per-merchant retry schedules, per-order ordering, and attempt-log retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyTask, Order
from openepay.db.types import utcnow
from openepay.notify.outbox import PAID_EVENT, enqueue
from openepay.notify.worker import NotifyWorker
from tests.support.notify import Answer, delivery_log, paid_order, settled
from tests.support.waiting import eventually


async def test_a_merchant_can_have_its_own_retry_schedule(server, gateway, merchant, scripted_shop, worker):
    """The default test schedule has three retries; this merchant asked for one, after 0.2 s."""
    await gateway.merchants.update(merchant.pid, notify_retry_delays=[0.2])
    shop = scripted_shop(Answer(200, b"fail"))
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "SCHED-1")

    task, attempts = await eventually(settled(server.gateway, trade_no, NotifyStatus.FAILED))
    assert [a.number for a in attempts] == [1, 2]
    assert attempts[1].started_at - attempts[0].started_at >= timedelta(seconds=0.2)
    assert task.failed_at is not None and task.failed_at >= attempts[1].started_at


async def test_a_later_notification_of_an_order_waits_for_the_earlier_one(
    server, gateway, merchant, scripted_shop, worker
):
    shop = scripted_shop(Answer(200, b"fail"), Answer(200, b"fail"), Answer(200, b"success"))
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "ORDERED-1")
    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
        await enqueue(session, order_id=order.id, merchant_pid=merchant.pid, event="later", now=utcnow())

    async def both_delivered():  # type: ignore[no-untyped-def]
        async with gateway.db.session() as session:
            tasks = (
                await session.scalars(select(NotifyTask).where(NotifyTask.order_id == order.id).order_by(NotifyTask.id))
            ).all()
            return tasks if all(t.status == NotifyStatus.SUCCEEDED for t in tasks) else None

    first, later = await eventually(both_delivered)
    assert (first.event, later.event) == (PAID_EVENT, "later")
    async with gateway.db.session() as session:
        first_attempts = (await session.scalars(select(NotifyAttempt).where(NotifyAttempt.task_id == first.id))).all()
        later_attempts = (await session.scalars(select(NotifyAttempt).where(NotifyAttempt.task_id == later.id))).all()
    assert len(first_attempts) == 3
    assert min(a.started_at for a in later_attempts) >= first.delivered_at


async def test_old_attempt_logs_are_pruned_and_recent_ones_kept(server, gateway, merchant, shop, worker):
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "PRUNE-1")
    await eventually(settled(server.gateway, trade_no, NotifyStatus.SUCCEEDED))
    async with gateway.db.session() as session:
        await session.execute(update(NotifyAttempt).values(started_at=utcnow() - timedelta(days=31)))
    recent = await paid_order(server, merchant, f"{shop.url}/notify", "PRUNE-2")
    await eventually(settled(server.gateway, recent, NotifyStatus.SUCCEEDED))

    await NotifyWorker(gateway, name="sweeper").sweep()
    old_task, old_attempts = await delivery_log(gateway, trade_no)
    new_task, new_attempts = await delivery_log(gateway, recent)
    assert old_attempts == [] and old_task.status == NotifyStatus.SUCCEEDED
    assert len(new_attempts) == 1


async def test_live_workers_are_counted_and_a_stopped_one_is_forgotten(server, gateway):
    async def live_workers() -> float:
        async with server.client() as client:
            text = (await client.get("/metrics")).text
        line = next(line for line in text.splitlines() if line.startswith("openepay_notify_workers "))
        return float(line.split()[1])

    async def one_live_worker() -> bool:
        return await live_workers() == 1

    assert await live_workers() == 0
    extra = NotifyWorker(gateway, name="counted")
    stop = asyncio.Event()
    running = asyncio.create_task(extra.run(stop))
    try:
        await eventually(one_live_worker)
    finally:
        stop.set()
        await running
        await extra.aclose()
    assert await live_workers() == 0


async def test_failed_count_backlog_and_oldest_age_on_metrics(server, gateway, merchant, scripted_shop):
    shop = scripted_shop(Answer(200, b"fail"))
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "METRIC-1")
    async with gateway.db.session() as session:
        await session.execute(update(NotifyTask).values(next_attempt_at=utcnow() - timedelta(seconds=90)))
        count = await session.scalar(select(func.count()).select_from(NotifyTask))
    assert count == 1

    async with server.client() as client:
        text = (await client.get("/metrics")).text
    values = {
        line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")
    }
    assert values["openepay_notify_backlog"] == 1
    assert 90 <= values["openepay_notify_oldest_due_age_seconds"] < 120
    assert values["openepay_notify_failed"] == 0
    assert values['openepay_http_requests_total{method="POST",route="/mapi.php",status="200"}'] >= 1
    assert trade_no not in text
