"""The outbox: leases that survive a dead worker, resending, and several workers sharing the work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest_asyncio
from sqlalchemy import func, select

from openepay.channels.sandbox.simulator import simulate_buyer_payment
from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyTask
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy
from openepay.notify.worker import NotifyWorker
from tests.support.epay import order_params, signed
from tests.support.merchant import plugin_sign
from tests.support.notify import delivery_log, paid_order, settled
from tests.support.settings import make_settings
from tests.support.waiting import eventually

FAIR = {"merchant_cap": 4, "breaker_threshold": 5}
BREAKER = BreakerPolicy(threshold=5, cooldown=30, max_cooldown=600)
# A lease the tests wait out: long enough that a loaded machine's next claim still finds it held,
# short enough to wait for.
SHORT_LEASE = timedelta(seconds=4)


@pytest_asyncio.fixture
async def gateway_factory(database_url: str) -> AsyncIterator[Callable[..., Gateway]]:
    """Other gateways on the same database, as other processes with their own settings would be."""
    made: list[Gateway] = []

    def make(**overrides: object) -> Gateway:
        other = Gateway.from_settings(make_settings(database_url, **overrides))
        made.append(other)
        return other

    yield make
    for other in made:
        await other.aclose()


class BackgroundWorker:
    def __init__(self, gateway: Gateway, name: str) -> None:
        self.worker = NotifyWorker(gateway, name=name)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.worker.run(self.stop))

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.worker.aclose()


async def test_a_worker_that_dies_after_claiming_leaves_the_lease_to_expire(server, gateway, merchant, shop):
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "LEASE-1")
    [claimed] = await outbox.claim(gateway.db, "dead-worker", limit=10, lease=SHORT_LEASE, **FAIR)
    held, _ = await delivery_log(gateway, trade_no)
    assert held.lease_owner == "dead-worker" and held.lease_expires_at is not None
    assert await outbox.claim(gateway.db, "rival", limit=10, lease=timedelta(seconds=60), **FAIR) == []

    survivor = BackgroundWorker(gateway, "survivor")
    try:
        task, [attempt] = await eventually(settled(gateway, trade_no, NotifyStatus.SUCCEEDED))
    finally:
        await survivor.close()
    assert attempt.started_at >= held.lease_expires_at
    assert attempt.delivered is True
    [notification] = shop.notifications()
    assert notification.signature_ok is True
    assert notification.params["trade_no"] == trade_no
    assert task.lease_owner is None and task.attempts == 1

    # The dead worker comes back to life and reports a failure: the task it no longer holds stays delivered.
    late = outbox.AttemptRecord(
        started_at=utcnow(),
        target_host="127.0.0.1",
        latency_ms=5000,
        delivered=False,
        error_class="timeout",
        error_detail="no complete answer within 5s",
    )
    await outbox.record_attempt(gateway.db, claimed, "dead-worker", late, (0.3, 0.6, 1.0), BREAKER)
    task, attempts = await delivery_log(gateway, trade_no)
    assert task.status == NotifyStatus.SUCCEEDED and task.attempts == 1 and task.last_error is None
    assert [a.number for a in attempts] == [1, 2]  # the late attempt is still on the record


async def test_a_lease_hides_a_task_only_until_it_expires(server, gateway, merchant, shop):
    await paid_order(server, merchant, f"{shop.url}/notify", "LEASE-2")
    [first] = await outbox.claim(gateway.db, "a", limit=10, lease=SHORT_LEASE, **FAIR)
    assert await outbox.claim(gateway.db, "b", limit=10, lease=timedelta(seconds=60), **FAIR) == []
    [again] = await eventually(lambda: outbox.claim(gateway.db, "b", limit=10, lease=timedelta(seconds=60), **FAIR))
    assert again.id == first.id and again.attempts == 0


async def test_resend_requeues_a_failed_notification_with_a_fresh_schedule(
    server, gateway, merchant, shop, gateway_factory
):
    short = gateway_factory(notify_retry_delays=(0.2,))
    manual = NotifyWorker(short, name="manual")
    shop.reply = b"fail"
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "RESEND-1")
    try:
        assert await manual.run_once() == 1
        await eventually(manual.run_once)
        task, attempts = await delivery_log(gateway, trade_no)
        assert task.status == NotifyStatus.FAILED and task.attempts == 2 and len(attempts) == 2
        assert task.last_error is not None
        assert await manual.run_once() == 0

        assert await outbox.resend(gateway.db, trade_no) == 1
        task, _ = await delivery_log(gateway, trade_no)
        assert task.status == NotifyStatus.PENDING and task.attempts == 0
        assert task.next_attempt_at <= utcnow()

        # First attempt of the new round fails too: a fresh schedule retries it rather than giving up.
        assert await manual.run_once() == 1
        task, _ = await delivery_log(gateway, trade_no)
        assert task.status == NotifyStatus.PENDING and task.attempts == 1

        shop.reply = b"success"
        await eventually(manual.run_once)
    finally:
        await manual.aclose()
    task, attempts = await delivery_log(gateway, trade_no)
    assert task.status == NotifyStatus.SUCCEEDED and task.attempts == 2 and task.last_error is None
    assert [a.number for a in attempts] == [1, 2, 3, 4]
    assert [a.delivered for a in attempts] == [False, False, False, True]
    notifications = shop.notifications()
    assert len(notifications) == 4
    assert all(n.signature_ok for n in notifications)


async def test_resend_delivers_a_succeeded_notification_again(server, gateway, merchant, shop, worker):
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "RESEND-2")
    await eventually(settled(gateway, trade_no, NotifyStatus.SUCCEEDED))
    assert len(shop.notifications()) == 1

    assert await outbox.resend(gateway.db, trade_no) == 1
    await eventually(lambda: len(shop.notifications()) == 2)
    task, attempts = await eventually(settled(gateway, trade_no, NotifyStatus.SUCCEEDED))
    first, second = shop.notifications()
    assert second.signature_ok is True
    assert second.params == first.params
    assert second.params["sign"] == plugin_sign(second.params, merchant.key)
    assert task.attempts == 1
    assert [a.delivered for a in attempts] == [True, True]


async def test_resend_takes_the_notification_back_from_whoever_holds_it(server, gateway, merchant, shop):
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "RESEND-3")
    [stale] = await outbox.claim(gateway.db, "stuck-worker", limit=10, lease=timedelta(seconds=60), **FAIR)

    assert await outbox.resend(gateway.db, trade_no) == 1
    # The old holder reports its last, failed attempt: it no longer decides the task's fate.
    failed = outbox.AttemptRecord(
        started_at=utcnow(),
        target_host="127.0.0.1",
        latency_ms=3,
        delivered=False,
        error_class="non_success_body",
        http_status=200,
        body_head="fail",
    )
    await outbox.record_attempt(gateway.db, stale, "stuck-worker", failed, (), BREAKER)
    task, _ = await delivery_log(gateway, trade_no)
    assert task.status == NotifyStatus.PENDING and task.attempts == 0 and task.lease_owner is None

    manual = NotifyWorker(gateway, name="operator-request")
    try:
        assert await manual.run_once() == 1  # now, not after the 60 s lease
    finally:
        await manual.aclose()
    task, _ = await delivery_log(gateway, trade_no)
    assert task.status == NotifyStatus.SUCCEEDED
    [notification] = shop.notifications()
    assert notification.signature_ok is True


async def test_resend_of_an_unknown_or_unpaid_order_queues_nothing(server, gateway, merchant, shop):
    assert await outbox.resend(gateway.db, "20990101000000000000") == 0
    params = order_params(merchant.pid, shop.url, "UNPAID-1", clientip="203.0.113.9")
    async with server.client() as client:
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert await outbox.resend(gateway.db, answer["trade_no"]) == 0
    async with gateway.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(NotifyTask)) == 0


async def test_two_workers_deliver_each_notification_exactly_once(server, gateway, merchant, shop, gateway_factory):
    async with server.client() as client:

        async def place(n: int) -> str:
            params = order_params(merchant.pid, shop.url, f"PAIR-{n:02d}", clientip="203.0.113.9")
            return (await client.post("/mapi.php", data=signed(params, merchant.key))).json()["trade_no"]

        trade_nos = await asyncio.gather(*(place(n) for n in range(30)))
    for trade_no in trade_nos:  # what `openepay order pay` does: the sandbox upstream's signed callback
        await simulate_buyer_payment(gateway, trade_no)

    # A loaded machine may take seconds to let the shop's thread connect and answer: that is not a
    # failed delivery here.
    patient = {"notify_batch_size": 4, "notify_connect_timeout": 60, "notify_timeout": 60}
    workers = [
        BackgroundWorker(gateway_factory(**patient), "worker-a"),
        BackgroundWorker(gateway_factory(**patient), "worker-b"),
    ]
    try:
        await eventually(lambda: len(shop.notifications()) >= 30)

        async def all_delivered() -> bool:
            async with gateway.db.session() as session:
                rows = (await session.scalars(select(NotifyTask))).all()
            return len(rows) == 30 and all(row.status == NotifyStatus.SUCCEEDED for row in rows)

        await eventually(all_delivered)
    finally:
        for background in workers:
            await background.close()

    received = [n.params["trade_no"] for n in shop.notifications()]
    assert sorted(received) == sorted(trade_nos)
    assert all(n.signature_ok for n in shop.notifications())
    async with gateway.db.session() as session:
        failed = (await session.scalars(select(NotifyAttempt).where(NotifyAttempt.delivered.is_(False)))).all()
        assert [(attempt.error_class, attempt.error_detail) for attempt in failed] == []
        assert set((await session.scalars(select(NotifyTask.attempts))).all()) == {1}
        assert await session.scalar(select(func.count()).select_from(NotifyAttempt)) == 30
